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
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Longest wait for one thread to stop before it is let go unsampled.
const STOP_TIMEOUT: Duration = Duration::from_millis(250);

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

/// Threads we interrupted that did not stop in time (e.g. in uninterruptible
/// I/O). The kernel refuses to detach a thread that is not stopped, so they
/// stay attached until their stop arrives; every `pause` and every resume
/// looks for it and detaches them then. Never left stopped: if pysampler
/// exits first, the kernel detaches them.
static LATE_STOPPERS: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

/// Detaches the late stoppers that have stopped by now.
fn release_late_stoppers() {
    let mut late = LATE_STOPPERS.lock();
    late.retain(|thread| {
        match waitpid(*thread, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => true,
            Ok(WaitStatus::Stopped(_, sig)) if sig != Signal::SIGTRAP => {
                let _ = ptrace::detach(*thread, sig);
                false
            }
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) | Err(_) => false,
            Ok(_) => {
                let _ = ptrace::detach(*thread, None);
                false
            }
        }
    });
}

/// Stops the given threads of `pid`. Threads that exit meanwhile are skipped.
pub fn pause(pid: i32, tids: &[i32]) -> Result<PausedThreads> {
    release_late_stoppers();
    let mut paused = PausedThreads {
        stopped: Vec::with_capacity(tids.len()),
    };
    for &tid in tids {
        let thread = Pid::from_raw(tid);
        if LATE_STOPPERS.lock().contains(&thread) {
            continue; // still ours from an earlier pause; not stopped yet
        }
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
/// (None for our own interrupt stop), or None-of-None if the thread is gone or
/// did not stop in time (then it is detached, so it is never left stopped).
fn wait_for_stop(thread: Pid) -> Option<Option<Signal>> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut polls = 0u32;
    loop {
        match waitpid(thread, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(WaitStatus::PtraceEvent(_, _, _)) => return Some(None),
            Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => return Some(None),
            Ok(WaitStatus::Stopped(_, sig)) => return Some(Some(sig)),
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => return None,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break,
        }
        if Instant::now() >= deadline {
            // Detaching now would fail (the thread is not stopped yet) and
            // leave the interrupt pending: let it stop, then detach it.
            LATE_STOPPERS.lock().push(thread);
            return None;
        }
        // A thread stops within microseconds; spin briefly, then back off.
        polls += 1;
        if polls < 64 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
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
        release_late_stoppers();
    }
}
