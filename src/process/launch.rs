//! Launching the program to profile as a child, with the standard streams the
//! session asks for (pysampler's own, or a log file for the full-screen
//! `top`), as the invoking user when run under sudo.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

/// Where a launched program's stdin, stdout and stderr go.
#[derive(Debug, Clone, Default)]
pub enum ChildStreams {
    /// pysampler's own (usually the terminal).
    #[default]
    Inherit,
    /// stdin from /dev/null, stdout and stderr into `file`: the program must
    /// neither draw over a full-screen view nor read the keys meant for it.
    Log { file: Arc<File>, path: PathBuf },
}

impl ChildStreams {
    /// Sets the streams on `cmd`.
    fn apply(&self, cmd: &mut Command) -> Result<()> {
        if let ChildStreams::Log { file, path } = self {
            // Each stream needs its own descriptor; both point at the same
            // open file, so the program's writes land in order.
            let copy = || {
                file.try_clone().map_err(|source| Error::File {
                    path: path.clone(),
                    source,
                })
            };
            cmd.stdin(Stdio::null())
                .stdout(Stdio::from(copy()?))
                .stderr(Stdio::from(copy()?));
        }
        Ok(())
    }
}

/// Starts `argv` as a child process with `streams`.
pub fn launch(argv: &[String], streams: &ChildStreams) -> Result<Child> {
    let (program, args) = argv.split_first().ok_or(Error::NothingToProfile)?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    streams.apply(&mut cmd)?;
    if let Some((uid, gid)) = sudo_user() {
        // Under sudo, profile the program as the user who ran sudo, not as
        // root. All three in this order, here: std's own `uid()` switches
        // user before `pre_exec` closures run, after which `setgroups` is
        // refused (the launch failed with "permission denied").
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgroups(1, &gid) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::CommandNotFound {
            program: program.clone(),
        },
        std::io::ErrorKind::PermissionDenied => Error::CannotRun {
            program: program.clone(),
            reason: "permission denied".into(),
        },
        _ => Error::CannotRun {
            program: program.clone(),
            reason: e.to_string(),
        },
    })
}

/// (uid, gid) of the user behind sudo, when we are root through sudo.
pub fn sudo_user() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let uid = std::env::var("SUDO_UID").ok()?.parse().ok()?;
    let gid = std::env::var("SUDO_GID").ok()?.parse().ok()?;
    (uid != 0).then_some((uid, gid))
}
