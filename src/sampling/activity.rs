//! Whether a thread is running: what `--idle` filters on. The answer is the
//! state in `/proc/PID/task/TID/stat` ('R': running or runnable), read with
//! one pread of a file kept open. That file is costly for the kernel to
//! format (52 fields), and most threads of a web server sleep sample after
//! sample, so a thread found asleep is checked more cheaply afterwards: its
//! `schedstat` counts the times it was switched onto a CPU, and while that
//! count stands still it has not run since, so it is still asleep.
//!
//! The one difference from reading the state each time: a thread woken but
//! still waiting for a CPU counts as idle until it gets one.
//!
//! The same count lets a pausing sampler read a sleeping thread without
//! pausing it (`still_asleep`): a thread that was not switched onto a CPU
//! between the count before the read and the count after cannot have
//! changed its own stack meanwhile.

use foldhash::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Threads remembered before the table starts over (thread churn).
const MAX_THREADS: usize = 1 << 16;

#[derive(Default)]
pub struct Activity {
    threads: HashMap<i32, Thread>,
}

struct Thread {
    stat: File,
    schedstat: Option<File>,
    verdict: Verdict,
    /// The CPU it last ran on, as of the last stat read.
    cpu: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Running,
    /// Asleep, with the switch count read just before the state said so
    /// (None: not read yet).
    Asleep(Option<u64>),
}

impl Activity {
    /// Whether thread `tid` of `pid` is running or runnable; false for one
    /// that cannot be read (gone).
    pub fn is_running(&mut self, pid: i32, tid: i32) -> bool {
        let Some(thread) = self.thread(pid, tid) else {
            return false;
        };
        let switches = match thread.verdict {
            Verdict::Running => None,
            Verdict::Asleep(before) => {
                let now = thread.schedstat.as_ref().and_then(switch_count);
                // 0: the kernel keeps no such count; ask the state.
                if now.is_some() && now == before && now != Some(0) {
                    return false;
                }
                now
            }
        };
        let (state, cpu) = state_and_cpu(&thread.stat);
        thread.cpu = cpu;
        match state {
            Some('R') => {
                thread.verdict = Verdict::Running;
                true
            }
            Some(_) => {
                thread.verdict = Verdict::Asleep(switches);
                false
            }
            None => {
                self.threads.remove(&tid);
                false
            }
        }
    }

    /// Records that thread `tid` runs on `cpu`, known without its stat file
    /// (process::rseq): what `last_cpu` answers until the next read.
    pub fn running_on(&mut self, pid: i32, tid: i32, cpu: usize) {
        if let Some(thread) = self.thread(pid, tid) {
            thread.verdict = Verdict::Running;
            thread.cpu = Some(cpu);
        }
    }

    /// Thread `tid`'s files, opened the first time it is asked about.
    fn thread(&mut self, pid: i32, tid: i32) -> Option<&mut Thread> {
        if !self.threads.contains_key(&tid) {
            let stat = File::open(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
            if self.threads.len() >= MAX_THREADS {
                self.threads.clear();
            }
            let schedstat = File::open(format!("/proc/{pid}/task/{tid}/schedstat")).ok();
            let verdict = Verdict::Running;
            self.threads.insert(
                tid,
                Thread {
                    stat,
                    schedstat,
                    verdict,
                    cpu: None,
                },
            );
        }
        self.threads.get_mut(&tid)
    }
}

impl Activity {
    /// The switch count of thread `tid` as read by this sample's
    /// `is_running`, if that found it asleep and the kernel keeps the count.
    pub fn asleep_count(&self, tid: i32) -> Option<u64> {
        match self.threads.get(&tid)?.verdict {
            Verdict::Asleep(Some(count)) if count != 0 => Some(count),
            _ => None,
        }
    }

    /// The CPU thread `tid` last ran on, as of `is_running`'s last read of
    /// its stat file (a thread answered as still asleep has not run since).
    pub fn last_cpu(&self, tid: i32) -> Option<usize> {
        self.threads.get(&tid)?.cpu
    }

    /// Whether thread `tid` has not been switched onto a CPU since its
    /// switch count was `count`: it has not run, so its memory is as it was.
    pub fn still_asleep(&self, tid: i32, count: u64) -> bool {
        let now = self
            .threads
            .get(&tid)
            .and_then(|t| t.schedstat.as_ref())
            .and_then(switch_count);
        now == Some(count)
    }
}

/// The state letter of a stat file, and the CPU it last ran on (field 39).
fn state_and_cpu(stat: &File) -> (Option<char>, Option<usize>) {
    let mut buf = [0u8; 512];
    let Some(text) = stat
        .read_at(&mut buf, 0)
        .ok()
        .and_then(|n| std::str::from_utf8(buf.get(..n)?).ok())
    else {
        return (None, None);
    };
    match crate::process::stat::StatLine::parse(text) {
        Some(line) => (line.state(), line.last_cpu()),
        None => (None, None),
    }
}

/// The third field of a schedstat file: times switched onto a CPU.
fn switch_count(schedstat: &File) -> Option<u64> {
    let mut buf = [0u8; 96];
    let n = schedstat.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(buf.get(..n)?).ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn own_tid() -> i32 {
        // SAFETY: gettid has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_gettid) as i32 }
    }

    #[test]
    fn a_cpu_known_from_elsewhere_is_the_last_cpu_until_the_next_read() {
        let pid = std::process::id() as i32;
        let tid = own_tid();
        let mut activity = Activity::default();
        activity.running_on(pid, tid, 12345);
        assert_eq!(activity.last_cpu(tid), Some(12345));
        assert_eq!(activity.asleep_count(tid), None, "it runs");
        // The next read of its stat file answers instead: where it runs.
        assert!(activity.is_running(pid, tid));
        let here = nix::sched::sched_getcpu().unwrap_or(usize::MAX);
        assert!(activity.last_cpu(tid).is_some_and(|cpu| cpu < 4096));
        assert_ne!(activity.last_cpu(tid), Some(12345), "now {here}");
        // A thread that does not exist is not remembered.
        activity.running_on(pid, i32::MAX, 1);
        assert_eq!(activity.last_cpu(i32::MAX), None);
    }

    #[test]
    fn a_spinning_thread_runs_and_a_sleeping_one_stays_asleep() {
        let pid = std::process::id() as i32;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let spin_stop = stop.clone();
        let spinner = std::thread::spawn(move || {
            tx.send(own_tid()).unwrap();
            while !spin_stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let busy = rx.recv().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let wake_stop = stop.clone();
        let sleeper = std::thread::spawn(move || {
            tid_tx.send(own_tid()).unwrap();
            let _ = rx.recv(); // blocks until woken, then spins
            while !wake_stop.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let asleep = tid_rx.recv().unwrap();
        let mut activity = Activity::default();
        // A spinning thread never sleeps. Preempted on a busy machine, it
        // waits for a CPU in state R, which means running *or runnable*, and
        // R is what `is_running` answers: so every check says running, however
        // loaded the machine (a share such as "150 of 200" would only hide a
        // check that got it wrong). The sleeper blocks in recv, and once seen
        // asleep is answered from its switch count.
        let running = (0..200).filter(|_| activity.is_running(pid, busy)).count();
        eprintln!("spinner seen running in {running} of 200 checks");
        assert_eq!(running, 200, "spinner running in {running} of 200 checks");
        // Wait until the sleeper is in its blocking receive.
        while activity.is_running(pid, asleep) {
            std::thread::yield_now();
        }
        assert!((0..200).all(|_| !activity.is_running(pid, asleep)));
        let count = activity.asleep_count(asleep).expect("a switch count");
        assert!(activity.still_asleep(asleep, count));
        // Woken, it is seen running again, and no longer still asleep.
        tx.send(()).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !activity.is_running(pid, asleep) {
            assert!(
                std::time::Instant::now() < deadline,
                "woken thread never seen running"
            );
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        sleeper.join().unwrap();
        // `join` returns once the thread cleared its tid, which the kernel
        // does early in the thread's exit: it may look running a moment more.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while activity.is_running(pid, busy) {
            assert!(
                std::time::Instant::now() < deadline,
                "a finished thread is not running"
            );
            std::thread::yield_now();
        }
    }
}
