//! Launching the program to profile as a child, with the terminal's stdin,
//! stdout and stderr, as the invoking user when run under sudo.

use crate::error::{Error, Result};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Starts `argv` as a child process.
pub fn launch(argv: &[String]) -> Result<Child> {
    let (program, args) = argv.split_first().ok_or(Error::NothingToProfile)?;
    let mut cmd = Command::new(program);
    cmd.args(args);
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

/// The exit code a shell would report for `status`.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
