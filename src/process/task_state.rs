//! Whether an OS thread is running on a CPU right now (`R` in its stat line),
//! which is what "active" means in a dump.

/// `Some(true)` when the thread is running or runnable, `None` when it is gone.
pub fn is_running(pid: i32, tid: i32) -> Option<bool> {
    let stat = crate::process::stat::read_thread(pid, tid)?;
    Some(crate::process::stat::StatLine::parse(&stat)?.state()? == 'R')
}
