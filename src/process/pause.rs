//! Pausing a process's threads while a sample is read, so the stacks are
//! consistent. Uses PTRACE_SEIZE + PTRACE_INTERRUPT, never SIGSTOP: if
//! pysampler dies, even by SIGKILL, the kernel detaches and the threads simply
//! continue. The guard detaches in `Drop`, so errors and panics resume them too.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Threads stopped by us; dropping it resumes them.
pub struct PausedThreads {
    /// Each stopped thread and the signal to hand back to it on detach (one
    /// that arrived while we held it, which must not be lost).
    stopped: Vec<(Pid, Option<Signal>)>,
}

/// Lists the thread ids of `pid` (`/proc/PID/task`).
pub fn thread_ids(pid: i32) -> Result<Vec<i32>> {
    let dir =
        std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|_| Error::ProcessExited(pid))?;
    let mut tids: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// Stops the given threads of `pid`. Threads that exit meanwhile are skipped.
pub fn pause(pid: i32, tids: &[i32]) -> Result<PausedThreads> {
    let mut paused = PausedThreads {
        stopped: Vec::with_capacity(tids.len()),
    };
    for &tid in tids {
        let thread = Pid::from_raw(tid);
        match ptrace::seize(thread, ptrace::Options::empty()) {
            Ok(()) => {}
            Err(Errno::ESRCH) => continue,
            Err(Errno::EPERM) => return Err(crate::process::permissions::explain(pid)),
            Err(e) => {
                return Err(Error::BadData(format!(
                    "could not pause thread {tid} of process {pid}: {e}"
                )))
            }
        }
        if ptrace::interrupt(thread).is_err() {
            let _ = ptrace::detach(thread, None);
            continue;
        }
        match wait_for_stop(thread) {
            Some(signal) => paused.stopped.push((thread, signal)),
            None => continue, // the thread exited
        }
    }
    if paused.stopped.is_empty() && !crate::process::is_alive(pid) {
        return Err(Error::ProcessExited(pid));
    }
    Ok(paused)
}

/// Waits until `thread` is in a ptrace stop. Returns the signal to re-inject
/// (None for our own interrupt stop), or None-of-None if the thread is gone.
fn wait_for_stop(thread: Pid) -> Option<Option<Signal>> {
    // Bounded: each iteration consumes one wait status of this thread.
    for _ in 0..64 {
        match waitpid(thread, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::PtraceEvent(_, _, _)) => return Some(None),
            Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => return Some(None),
            Ok(WaitStatus::Stopped(_, sig)) => return Some(Some(sig)),
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => return None,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
    let _ = ptrace::detach(thread, None);
    None
}

impl PausedThreads {
    pub fn len(&self) -> usize {
        self.stopped.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stopped.is_empty()
    }
}

impl Drop for PausedThreads {
    fn drop(&mut self) {
        for (thread, signal) in self.stopped.drain(..) {
            // ESRCH here means the thread died while stopped: nothing to resume.
            let _ = ptrace::detach(thread, signal);
        }
    }
}
