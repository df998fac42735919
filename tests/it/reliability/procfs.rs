//! The target as /proc shows it (alive, stopped, traced), signals, and
//! bounded waits on the fixture's and the target's state.

use super::harness::measured;
use crate::target::Target;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

pub(super) fn stat_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Gone, or a zombie: exited.
pub(super) fn alive(pid: i32) -> bool {
    matches!(stat_state(pid), Some(c) if c != 'Z' && c != 'X')
}

pub(super) fn status_field(path: &str, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

pub(super) fn tracer_of(pid: i32) -> Option<i32> {
    status_field(&format!("/proc/{pid}/status"), "TracerPid")?
        .parse()
        .ok()
}

pub(super) fn exe_name(pid: i32) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// Every thread of `pid` that is stopped (`t`/`T`) or traced, described.
pub(super) fn stopped_or_traced(pid: i32) -> Vec<String> {
    let mut bad = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return bad;
    };
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let dir = format!("/proc/{pid}/task/{tid}");
        let state = std::fs::read_to_string(format!("{dir}/stat"))
            .ok()
            .and_then(|s| s[s.rfind(')')? + 1..].trim_start().chars().next());
        let tracer = status_field(&format!("{dir}/status"), "TracerPid");
        if matches!(state, Some('t') | Some('T')) || tracer.as_deref().is_some_and(|t| t != "0") {
            bad.push(format!("thread {tid} state {state:?} TracerPid {tracer:?}"));
        }
    }
    bad
}

/// Polls `f` every millisecond until it holds or `limit` passes.
pub(super) fn poll(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The target is neither stopped nor traced, within `limit`.
pub(super) fn target_free(pid: i32, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    if poll(limit, || stopped_or_traced(pid).is_empty()) {
        measured(
            &format!("target {pid} free after pysampler ended"),
            started.elapsed(),
            limit,
        );
        Ok(())
    } else {
        Err(format!(
            "target {pid} still stopped or traced {limit:?} after pysampler ended: {:?}",
            stopped_or_traced(pid)
        ))
    }
}

pub(super) fn signal(pid: i32, sig: i32) {
    unsafe { libc::kill(pid, sig) };
}

/// A process that is not our child, held by a pidfd: signals reach it and
/// no later process that gets its pid.
pub(super) struct ProcessHandle(std::os::fd::OwnedFd);

impl ProcessHandle {
    pub(super) fn open(pid: i32) -> Result<ProcessHandle, String> {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open returns a new descriptor (or -1), which we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(format!(
                "pidfd_open({pid}): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(ProcessHandle(unsafe {
            std::os::fd::OwnedFd::from_raw_fd(fd as i32)
        }))
    }

    /// Sends `sig`; a process already gone is left alone.
    pub(super) fn signal(&self, sig: i32) {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid pidfd, no siginfo, no flags.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }
}

/// Signal numbers pending for the whole process (`ShdPnd`).
pub(super) fn shared_pending(pid: i32) -> u64 {
    status_field(&format!("/proc/{pid}/status"), "ShdPnd")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0)
}

/// The next line from the fixture starting with `prefix`, within `limit`.
pub(super) fn target_line(
    target: &Target,
    prefix: &str,
    limit: Duration,
) -> Result<String, String> {
    target
        .wait_for_line(prefix, limit)
        .map_err(|e| format!("the fixture never printed {prefix:?} ({e})"))
}

pub(super) fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
