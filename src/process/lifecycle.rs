//! Whether the process we attached to is still the same program. A read that
//! fails is most often the target ending: it exited, or it replaced itself
//! by `exec` (same pid, new memory: old addresses fault, or the kernel
//! refuses access while the old memory is torn down). Those are events to
//! report in plain words, not errors to retry or blame on permissions.

use crate::error::Error;
use std::os::unix::fs::MetadataExt;

/// What identifies one program run in one pid: the start time survives
/// `exec`, the rest does not (a new stack and argument block, usually at
/// randomised addresses, and usually another executable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    start_time: u64,
    start_stack: u64,
    arg_start: u64,
    exe: (u64, u64),
}

/// What became of a process since `Identity::of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Still the program we attached to.
    Same,
    /// Gone, or a zombie.
    Exited,
    /// Same pid, another program (`exec`); its executable now.
    Replaced(String),
}

impl Identity {
    /// The identity of `pid` now; None when it is gone or unreadable.
    pub fn of(pid: i32) -> Option<Identity> {
        let text = crate::process::stat::read_process(pid)?;
        let stat = crate::process::stat::StatLine::parse(&text)?;
        if matches!(stat.state(), Some('Z') | Some('X')) {
            return None;
        }
        let exe = std::fs::metadata(format!("/proc/{pid}/exe"))
            .map(|m| (m.dev(), m.ino()))
            .unwrap_or((0, 0));
        Some(Identity {
            start_time: stat.start_time()?,
            start_stack: stat.start_stack().unwrap_or(0),
            arg_start: stat.arg_start().unwrap_or(0),
            exe,
        })
    }

    /// What became of `pid`, which had this identity.
    pub fn fate(&self, pid: i32) -> Fate {
        match Identity::of(pid) {
            None => Fate::Exited,
            Some(now) if now.start_time != self.start_time => Fate::Exited, // pid reused
            Some(now) if now == *self => Fate::Same,
            // While a process exits, its memory (and with it the stack and
            // argument addresses and the executable link) is gone before it
            // turns into a zombie: that is an exit, not an exec.
            Some(now)
                if crate::process::is_exiting(pid)
                    || now.exe == (0, 0)
                    || (now.start_stack == 0 && now.arg_start == 0) =>
            {
                Fate::Exited
            }
            Some(_) => Fate::Replaced(
                std::fs::read_link(format!("/proc/{pid}/exe"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "?".into()),
            ),
        }
    }

    /// `error` as the user should see it: the process's end when it ended
    /// (whatever the failed read said), else `error` itself.
    pub fn explain(&self, pid: i32, error: Error) -> Error {
        match self.fate(pid) {
            Fate::Same => error,
            Fate::Exited => Error::ProcessExited(pid),
            Fate::Replaced(exe) => Error::ProcessReplaced { pid, exe },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_identity_is_stable() {
        let pid = std::process::id() as i32;
        let me = Identity::of(pid).expect("own stat");
        assert_eq!(me.fate(pid), Fate::Same);
        assert!(matches!(
            me.explain(pid, Error::NothingToProfile),
            Error::NothingToProfile
        ));
    }

    #[test]
    fn a_child_that_exits_has_exited_zombie_or_reaped() {
        use std::io::{BufRead, Write};
        // `cat` runs until its stdin closes: its identity is read while it
        // surely runs (a child that may already have exited could only be
        // checked when it had not, which let the check be skipped).
        let mut child = std::process::Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn cat");
        let pid = child.id() as i32;
        // Handshake: a line echoed back. `spawn` can return while the exec
        // is still setting up the new program (its stack and argument
        // addresses, its executable), which would look like another exec.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"ready\n").unwrap();
        let mut echoed = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut echoed)
            .unwrap();
        assert_eq!(echoed, "ready\n");
        let id = Identity::of(pid).expect("a running child has an identity");
        assert_eq!(id.fate(pid), Fate::Same);
        // End of input: cat exits. Not reaped yet, it is a zombie, which
        // has exited too.
        drop(stdin);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let zombie = || {
            crate::process::stat::read_process(pid).is_some_and(|text| {
                crate::process::stat::StatLine::parse(&text).and_then(|s| s.state()) == Some('Z')
            })
        };
        while !zombie() {
            assert!(std::time::Instant::now() < deadline, "cat never exited");
            std::thread::yield_now();
        }
        assert_eq!(id.fate(pid), Fate::Exited, "a zombie");
        child.wait().expect("wait");
        assert_eq!(id.fate(pid), Fate::Exited, "reaped");
        assert!(Identity::of(pid).is_none());
    }
}
