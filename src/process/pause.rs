//! Pausing a process's threads while a sample is read, so the stacks are
//! consistent. Uses PTRACE_SEIZE + PTRACE_INTERRUPT, never SIGSTOP: if
//! pysampler dies, even by SIGKILL, the kernel detaches and the threads simply
//! continue. The guard detaches in `Drop`, so errors and panics resume them too.
//!
//! Samplers and `dump` pause one thread at a time (`pause_thread`), and
//! never while another thread is still attached to them. The reason is a
//! kernel deadlock: `exec` in the target holds the process's
//! `cred_guard_mutex` while it waits for its other threads to be gone, and
//! PTRACE_SEIZE waits for that mutex. A thread that dies while attached to
//! us stays a zombie until we reap it, so if we held one and then blocked in
//! PTRACE_SEIZE on another, the target's `exec` and pysampler would wait on
//! each other forever (seen: a `record` of a program calling `os.execv`).
//! One thread at a time, with every earlier one detached or reaped first,
//! leaves nothing for `exec` to wait on.
//!
//! `pause` (all threads at once, interrupted first and collected after) is
//! for memory snapshots of test programs, which do not exec.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Longest wait for the threads to stop; a thread still running then (in a
/// long system call, or not scheduled on a busy machine) is left out of this
/// sample. A stop normally arrives within microseconds.
const STOP_TIMEOUT: Duration = Duration::from_millis(25);

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

thread_local! {
    /// Threads still attached to us that we do not hold:
    /// - late stoppers, interrupted but not stopped in time. The kernel
    ///   refuses to detach a thread that is not stopped, so they stay
    ///   attached until their stop arrives; then they are detached.
    /// - threads that died while attached (killed by an `exec` or exit of
    ///   another thread). A traced thread stays a zombie until its tracer
    ///   waits for it, and `exec` waits for every other thread to be gone:
    ///   not reaping them would hang the target's `exec`.
    /// `release_late_stoppers` deals with both. Per thread because ptrace
    /// is: only the thread that seized a tracee can wait for it and detach
    /// it. If that thread (or pysampler) exits first, the kernel releases
    /// them; they are never left stopped.
    static STILL_ATTACHED: RefCell<Vec<Pid>> = const { RefCell::new(Vec::new()) };
}

/// Exit statuses that a sampler's ptrace wait collected: when pysampler
/// launched the program it is also its parent, and the wait for a stop of
/// the main thread can reap the whole process. The session looks its
/// program's status up here (`take_reaped`), since its own wait then finds
/// nothing. Bounded: statuses nobody asks for (threads) are dropped oldest first.
static REAPED: parking_lot::Mutex<Vec<(i32, i32)>> = parking_lot::Mutex::new(Vec::new());
const MAX_REAPED: usize = 256;

fn note_reaped(status: WaitStatus) {
    let (pid, raw) = match status {
        WaitStatus::Exited(pid, code) => (pid, (code & 0xff) << 8),
        WaitStatus::Signaled(pid, signal, core) => {
            (pid, signal as i32 | if core { 0x80 } else { 0 })
        }
        _ => return,
    };
    let mut reaped = REAPED.lock();
    if reaped.len() >= MAX_REAPED {
        reaped.remove(0);
    }
    reaped.push((pid.as_raw(), raw));
}

/// The raw wait status of `pid` if a sampler reaped it (see `REAPED`).
pub fn take_reaped(pid: i32) -> Option<i32> {
    let mut reaped = REAPED.lock();
    let at = reaped.iter().position(|(p, _)| *p == pid)?;
    Some(reaped.remove(at).1)
}

/// Detaches this thread's late stoppers that have stopped by now and reaps
/// the dead ones (see `STILL_ATTACHED`). Samplers
/// call it every tick, also when they pause nothing (a late stopper held in
/// its stop looks idle, so it may be the only reason to come here).
pub fn release_late_stoppers() {
    STILL_ATTACHED.with(|late| {
        late.borrow_mut().retain(|thread| {
            match waitpid(*thread, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => true,
                // A detach that fails means the thread died just now: kept,
                // to be reaped by the next call.
                Ok(WaitStatus::Stopped(_, sig)) if sig != Signal::SIGTRAP => {
                    ptrace::detach(*thread, sig).is_err()
                }
                Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                    note_reaped(status);
                    false
                }
                Err(_) => false,
                Ok(_) => ptrace::detach(*thread, None).is_err(),
            }
        })
    });
}

/// Whether this thread holds `thread` as a late stopper, not yet stopped.
fn is_late(thread: Pid) -> bool {
    STILL_ATTACHED.with(|late| late.borrow().contains(&thread))
}

/// How to wait for an interrupted thread to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopWait {
    /// Poll without giving up the CPU: for a thread on another CPU, which
    /// stops within microseconds. Yielding instead can hand our CPU to
    /// another program on it for the rest of its time slice.
    Spin,
    /// Yield between polls: for a thread on our own CPU, which cannot stop
    /// until it runs (see sampling::sampler_cpus).
    Yield,
}

/// How long to poll before sleeping between polls (a thread in a long
/// system call or not scheduled may take milliseconds).
const POLL_FOR: Duration = Duration::from_micros(200);

/// One thread stopped by us; dropping it resumes it.
pub struct PausedThread {
    thread: Pid,
    signal: Option<Signal>,
}

impl Drop for PausedThread {
    fn drop(&mut self) {
        detach_or_keep(self.thread, self.signal);
    }
}

/// Whether any thread is still attached to this (tracer) thread.
fn any_still_attached() -> bool {
    STILL_ATTACHED.with(|list| !list.borrow().is_empty())
}

/// What PTRACE_SEIZE + PTRACE_INTERRUPT of one thread did.
enum Seize {
    /// Attached and asked to stop: collect its stop next.
    Interrupted,
    /// It exited (or could not be interrupted, and was let go).
    Gone,
    /// EPERM: no permission, or the thread is exiting; callers judge.
    Denied,
    Failed(Errno),
}

fn seize_and_interrupt(thread: Pid) -> Seize {
    match ptrace::seize(thread, ptrace::Options::empty()) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return Seize::Gone,
        Err(Errno::EPERM) => return Seize::Denied,
        Err(e) => return Seize::Failed(e),
    }
    if ptrace::interrupt(thread).is_err() {
        detach_or_keep(thread, None);
        return Seize::Gone;
    }
    Seize::Interrupted
}

/// What `pause_thread` did.
pub enum Held {
    /// The thread is stopped until this is dropped.
    Paused(PausedThread),
    /// It could not be paused now (it did not stop within `STOP_TIMEOUT`,
    /// or an earlier thread is still attached; see the module's notes):
    /// read it without pausing.
    Running,
    /// It exited or is exiting: skip it.
    Gone,
}

/// Stops thread `tid` of `pid` (see `Held`).
pub fn pause_thread(pid: i32, tid: i32, wait: StopWait) -> Result<Held> {
    release_late_stoppers();
    if any_still_attached() {
        return Ok(Held::Running);
    }
    let thread = Pid::from_raw(tid);
    match seize_and_interrupt(thread) {
        Seize::Interrupted => {}
        Seize::Gone => return Ok(Held::Gone),
        Seize::Denied => {
            // An exiting thread answers EPERM too.
            if crate::process::thread_is_exiting(pid, tid) {
                return Ok(Held::Gone);
            }
            return Err(crate::process::permissions::explain(pid));
        }
        Seize::Failed(e) => return Err(seize_error(pid, tid, e)),
    }
    let mut interrupted = vec![thread];
    let mut paused = PausedThreads {
        stopped: Vec::with_capacity(1),
    };
    collect_stops(&mut interrupted, &mut paused, wait);
    Ok(match paused.stopped.pop() {
        Some((thread, signal)) => Held::Paused(PausedThread { thread, signal }),
        None if is_late(thread) => Held::Running,
        None => Held::Gone,
    })
}

/// Stops the given threads of `pid` together (for snapshots; see the
/// module's notes). Threads that exit meanwhile, and those that do not stop
/// within `STOP_TIMEOUT`, are left out.
pub fn pause(pid: i32, tids: &[i32]) -> Result<PausedThreads> {
    release_late_stoppers();
    let mut interrupted = Vec::with_capacity(tids.len());
    let mut denied = false;
    let mut paused = PausedThreads {
        stopped: Vec::with_capacity(tids.len()),
    };
    for &tid in tids {
        let thread = Pid::from_raw(tid);
        if is_late(thread) {
            continue; // still ours from an earlier pause; not stopped yet
        }
        match seize_and_interrupt(thread) {
            Seize::Interrupted => interrupted.push(thread),
            Seize::Gone => {}
            // Also what an exiting thread answers: judged after the loop.
            Seize::Denied => denied = true,
            Seize::Failed(e) => {
                // `paused` resumes the threads already stopped; the ones only
                // interrupted are collected first so none is left behind.
                collect_stops(&mut interrupted, &mut paused, StopWait::Yield);
                return Err(seize_error(pid, tid, e));
            }
        }
    }
    collect_stops(&mut interrupted, &mut paused, StopWait::Yield);
    if paused.stopped.is_empty() {
        if !crate::process::is_alive(pid) {
            return Err(Error::ProcessExited(pid));
        }
        if denied {
            return Err(crate::process::permissions::explain(pid));
        }
    }
    Ok(paused)
}

fn seize_error(pid: i32, tid: i32, e: Errno) -> Error {
    Error::PauseFailed {
        pid,
        tid,
        reason: e.to_string(),
    }
}

/// Waits until every interrupted thread is in a ptrace stop (moved to
/// `paused`), has exited (dropped), or the deadline passed (kept as a late
/// stopper, detached once its stop arrives).
fn collect_stops(interrupted: &mut Vec<Pid>, paused: &mut PausedThreads, wait: StopWait) {
    let started = Instant::now();
    let deadline = started + STOP_TIMEOUT;
    loop {
        interrupted.retain(|thread| match poll_stop(*thread) {
            Poll::Running => true,
            Poll::Stopped(signal) => {
                paused.stopped.push((*thread, signal));
                false
            }
            Poll::Gone => false,
        });
        if interrupted.is_empty() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            // Detaching now would fail (the thread is not stopped yet) and
            // leave the interrupt pending: let it stop, then detach it.
            STILL_ATTACHED.with(|late| late.borrow_mut().append(interrupted));
            break;
        }
        match wait {
            _ if now - started >= POLL_FOR => std::thread::sleep(Duration::from_micros(50)),
            StopWait::Spin => std::hint::spin_loop(),
            StopWait::Yield => std::thread::yield_now(),
        }
    }
}

enum Poll {
    Running,
    /// In a ptrace stop, with the signal to re-inject on detach (None for
    /// our own interrupt stop).
    Stopped(Option<Signal>),
    Gone,
}

fn poll_stop(thread: Pid) -> Poll {
    match waitpid(thread, Some(WaitPidFlag::__WALL | WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => Poll::Running,
        Ok(WaitStatus::PtraceEvent(..)) | Ok(WaitStatus::Stopped(_, Signal::SIGTRAP)) => {
            Poll::Stopped(None)
        }
        Ok(WaitStatus::Stopped(_, sig)) => Poll::Stopped(Some(sig)),
        Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
            note_reaped(status);
            Poll::Gone
        }
        Ok(_) => Poll::Running,
        Err(_) => {
            detach_or_keep(thread, None);
            Poll::Gone
        }
    }
}

/// Detaches `thread`; one that cannot be detached (it died, or is not
/// stopped) stays on the list to be reaped or detached later.
fn detach_or_keep(thread: Pid, signal: Option<Signal>) {
    if ptrace::detach(thread, signal).is_err() {
        STILL_ATTACHED.with(|list| list.borrow_mut().push(thread));
    }
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
            // Failing means the thread died while stopped: it must be reaped.
            detach_or_keep(thread, signal);
        }
        release_late_stoppers();
    }
}
