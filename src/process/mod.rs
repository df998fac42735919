//! The operating-system side: which process, its memory, its maps and binaries.

pub mod asyncio;
pub mod binary;
pub mod capture;
pub mod core_file;
pub mod launch;
pub mod lifecycle;
pub mod locate;
pub mod maps;
pub mod memory;
pub mod pause;
pub mod permissions;
pub mod rseq;
pub mod signals;
pub mod stat;
pub mod task_state;

use crate::error::{Error, Result};
use stat::StatLine;
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
            return Err(Error::InvalidPid(pid));
        }
        if pid as u32 == std::process::id() {
            return Err(Error::OwnProcess(pid));
        }
        let stat = stat::read_process(pid).ok_or(Error::NoSuchProcess(pid))?;
        if StatLine::parse(&stat).and_then(|s| s.state()) == Some('Z') {
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

/// Whether a process is still there (and not a zombie).
pub fn is_alive(pid: i32) -> bool {
    stat::read_process(pid)
        .is_some_and(|text| StatLine::parse(&text).is_some_and(|s| s.state() != Some('Z')))
}

/// Whether `pid` is on its way out: its main thread has begun to exit
/// (`PF_EXITING` in the flags of `/proc/PID/stat`), as after `exit_group`
/// or a fatal signal, before it becomes a zombie.
pub fn is_exiting(pid: i32) -> bool {
    gone_or_exiting(stat::read_process(pid))
}

/// Whether thread `tid` of `pid` is gone or has begun to exit.
pub fn thread_is_exiting(pid: i32, tid: i32) -> bool {
    gone_or_exiting(stat::read_thread(pid, tid))
}

fn gone_or_exiting(text: Option<String>) -> bool {
    match text {
        None => true,
        Some(text) => StatLine::parse(&text).is_some_and(|s| s.is_exiting()),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_running_process_is_not_exiting() {
        assert!(!super::is_exiting(std::process::id() as i32));
    }
}
