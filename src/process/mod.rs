//! The operating-system side: which process, its memory, its maps and binaries.

pub mod binary;
pub mod capture;
pub mod launch;
pub mod lifecycle;
pub mod locate;
pub mod maps;
pub mod memory;
pub mod pause;
pub mod permissions;
pub mod rseq;
pub mod signals;
pub mod task_state;

use crate::error::{Error, Result};
use std::path::PathBuf;

/// What the OS tells us about a process, gathered once.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub pid: i32,
    /// Path of the executable as the process sees it (inside its own root).
    pub exe: String,
    pub cmdline: Vec<String>,
    /// `/proc/PID/root`: prefix for opening the process's files, which works
    /// for processes in containers and chroots too.
    pub root: PathBuf,
    pub cwd: Option<String>,
    /// Who the process was when opened, to tell later failures apart from
    /// its exit or `exec` (None if it could not be read).
    pub identity: Option<lifecycle::Identity>,
}

impl ProcessInfo {
    /// Checks that `pid` names a live process other than ourselves.
    pub fn open(pid: i32) -> Result<ProcessInfo> {
        if pid <= 0 {
            return Err(Error::Usage(format!("invalid pid {pid}")));
        }
        if pid as u32 == std::process::id() {
            return Err(Error::OwnProcess(pid));
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|_| Error::NoSuchProcess(pid))?;
        if process_state(&stat) == Some('Z') {
            return Err(Error::Zombie { pid });
        }
        let exe = match std::fs::read_link(format!("/proc/{pid}/exe")) {
            Ok(p) => p.to_string_lossy().into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(permissions::explain(pid))
            }
            Err(_) if !PathBuf::from(format!("/proc/{pid}")).exists() => {
                return Err(Error::NoSuchProcess(pid))
            }
            Err(_) => String::from("?"),
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        // In a chroot or container, the kernel shows the working directory
        // from our root; file names in the target are relative to its root.
        let root_link = std::fs::read_link(format!("/proc/{pid}/root")).ok();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
            .ok()
            .map(|cwd| {
                let inside = root_link
                    .as_ref()
                    .filter(|r| r.as_os_str() != "/")
                    .and_then(|r| cwd.strip_prefix(r).ok())
                    .map(|rest| std::path::Path::new("/").join(rest));
                inside.unwrap_or(cwd).to_string_lossy().into_owned()
            });
        Ok(ProcessInfo {
            pid,
            exe: exe.trim_end_matches(" (deleted)").to_string(),
            cmdline,
            root: PathBuf::from(format!("/proc/{pid}/root")),
            cwd,
            identity: lifecycle::Identity::of(pid),
        })
    }

    /// A path inside the process's filesystem, reachable from ours.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// `error` as the user should see it: "exited" or "replaced by exec"
    /// when that is what happened to the process, else `error` itself.
    pub fn explain(&self, error: Error) -> Error {
        if error.is_process_gone() {
            return error;
        }
        match &self.identity {
            Some(id) => id.explain(self.pid, error),
            None if !is_alive(self.pid) => Error::ProcessExited(self.pid),
            None => error,
        }
    }

    pub fn command_line(&self) -> String {
        if self.cmdline.is_empty() {
            self.exe.clone()
        } else {
            self.cmdline.join(" ")
        }
    }
}

/// The one-letter state from `/proc/PID/stat` (the field after the command,
/// which may itself contain spaces and parentheses).
pub fn process_state(stat: &str) -> Option<char> {
    stat_field(stat, 3)?.chars().next()
}

/// Field `n` (numbered from 1, as in proc(5); 3 or more) of a stat line. The
/// fields are counted after the command, which may hold spaces and
/// parentheses of its own.
pub fn stat_field(stat: &str, n: usize) -> Option<&str> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(n.checked_sub(3)?)
}

/// Whether a process is still there (and not a zombie).
pub fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| process_state(&s) != Some('Z'))
        .unwrap_or(false)
}

/// Whether `pid` is on its way out: its main thread has begun to exit
/// (`PF_EXITING` in the flags of `/proc/PID/stat`), as after `exit_group`
/// or a fatal signal, before it becomes a zombie.
pub fn is_exiting(pid: i32) -> bool {
    stat_is_exiting(&format!("/proc/{pid}/stat"))
}

/// Whether the process or thread whose stat file is at `path` is gone or
/// has begun to exit.
pub fn stat_is_exiting(path: &str) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = std::fs::read_to_string(path) else {
        return true;
    };
    stat_field(&stat, 9)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_EXITING != 0)
}

#[cfg(test)]
mod tests {
    use super::process_state;

    #[test]
    fn a_running_process_is_not_exiting() {
        assert!(!super::is_exiting(std::process::id() as i32));
    }

    #[test]
    fn state_survives_odd_command_names() {
        assert_eq!(process_state("12 (a) b) (c) S 1 2"), Some('S'));
        assert_eq!(process_state("12 (python) Z 1"), Some('Z'));
        assert_eq!(process_state("garbage"), None);
        assert_eq!(super::stat_field("12 (a) b) S 1 2", 5), Some("2"));
        assert_eq!(super::stat_field("12 (a) S 1", 2), None);
    }
}
