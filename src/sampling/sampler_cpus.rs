//! In pausing mode, the sampler keeps off the CPU of the thread it pauses.
//!
//! A sampler sharing a CPU with the thread it pauses cannot see it stop
//! without handing it the CPU, and when it resumes the thread (PTRACE_DETACH
//! wakes it), the thread, owed the time it spent stopped, preempts the
//! sampler and runs until the next scheduler tick (4 ms here) before the
//! sampler gets its CPU back. On an idle machine the scheduler keeps them
//! apart by itself; on a busy one it often puts the sampler beside the
//! thread. Measured on 3.12, 100-deep busy stack, `record -r 1000 -d 5`, the
//! other CPU busy with a spinning process: 1,350–1,370 of 5,000 ticks taken
//! (94–97 % late); kept off the thread's CPU, and polling for its stop
//! instead of yielding (`pause::StopWait::Spin`), 4,964–4,970 (1.1–1.4 %).
//!
//! So before pausing, the sampler binds itself to the CPUs it may use
//! except the one the thread last ran on (field 39 of the stat line that
//! `sampling::activity` reads anyway). A thread that moves every few samples
//! would make the sampler rebind as often: after more than `MAX_MOVES` in
//! `WINDOW` samples it stops choosing for `rest` samples (doubling each
//! time, up to `MAX_REST`), then tries again.
//!
//! Not without pausing: there the thread is never stopped or resumed.

use crate::process::pause::StopWait;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Samples over which the moves are counted.
const WINDOW: u32 = 64;
/// Moves in a window above which choosing stops for a while.
const MAX_MOVES: u32 = 6;
/// Samples of the first rest, and of the longest.
const FIRST_REST: u32 = 1024;
const MAX_REST: u32 = 1 << 16;

/// The sampler thread's CPU affinity.
pub struct SamplerCpus {
    /// The CPUs this thread may use as it started (the user's `taskset`,
    /// the container's cpuset): it never goes outside them, and returns to
    /// all of them when there is nothing to keep off.
    allowed: Option<CpuSet>,
    /// The CPU it keeps off now (None: it may use all of `allowed`).
    avoided: Option<usize>,
    rule: MoveRule,
}

impl SamplerCpus {
    /// For the calling thread; it avoids nothing until `keep_off` is called.
    pub fn new() -> SamplerCpus {
        SamplerCpus {
            allowed: sched_getaffinity(Pid::from_raw(0)).ok(),
            avoided: None,
            rule: MoveRule::default(),
        }
    }

    /// Once per sample: keeps the calling thread off `cpu` (the CPU the
    /// thread about to be paused last ran on), or lets it use all its CPUs
    /// for None. Nothing changes when `cpu` is not one of ours, when it is
    /// our only one, or while resting (see the module's notes).
    pub fn keep_off(&mut self, cpu: Option<usize>) {
        if self.rule.resting() {
            return;
        }
        let Some(allowed) = self.allowed else {
            return;
        };
        let mut others = allowed;
        let cpu = cpu.filter(|&c| {
            allowed.is_set(c).unwrap_or(false)
                && others.unset(c).is_ok()
                && (0..CpuSet::count()).any(|o| others.is_set(o).unwrap_or(false))
        });
        let moved = cpu.is_some() && self.avoided.is_some() && cpu != self.avoided;
        if cpu != self.avoided {
            self.set(cpu.map_or(allowed, |_| others), cpu);
        }
        if self.rule.stop_after(moved) {
            self.set(allowed, None);
        }
    }

    fn set(&mut self, cpus: CpuSet, avoided: Option<usize>) {
        self.avoided = match sched_setaffinity(Pid::from_raw(0), &cpus) {
            Ok(()) => avoided,
            Err(_) => {
                if let Some(allowed) = self.allowed {
                    let _ = sched_setaffinity(Pid::from_raw(0), &allowed);
                }
                None
            }
        };
    }
}

/// The CPU the calling thread runs on.
pub fn current_cpu() -> Option<usize> {
    // SAFETY: no arguments; returns the calling thread's CPU, or -1.
    usize::try_from(unsafe { libc::sched_getcpu() }).ok()
}

/// How to wait for the stop of a thread that last ran on `thread_cpu`: a
/// thread on our own CPU cannot stop until we let it run, so yield; one
/// elsewhere stops within microseconds, so poll.
pub fn stop_wait_for(thread_cpu: Option<usize>) -> StopWait {
    let ours = current_cpu();
    match ours.is_some() && ours == thread_cpu {
        true => StopWait::Yield,
        false => StopWait::Spin,
    }
}

impl Default for SamplerCpus {
    fn default() -> Self {
        SamplerCpus::new()
    }
}

/// When to stop choosing (see the module's notes).
struct MoveRule {
    /// Samples and moves in the current window.
    samples: u32,
    moves: u32,
    /// Samples left before choosing again, and the next rest's length.
    resting: u32,
    rest: u32,
}

impl Default for MoveRule {
    fn default() -> Self {
        MoveRule {
            samples: 0,
            moves: 0,
            resting: 0,
            rest: FIRST_REST,
        }
    }
}

impl MoveRule {
    /// Whether this sample falls in a rest (and counts it off).
    fn resting(&mut self) -> bool {
        let resting = self.resting > 0;
        self.resting = self.resting.saturating_sub(1);
        resting
    }

    /// Counts a sample that chose, moving or not; true when choosing
    /// should stop now, for a rest.
    fn stop_after(&mut self, moved: bool) -> bool {
        self.samples += 1;
        self.moves += moved as u32;
        if self.samples < WINDOW {
            return false;
        }
        let stop = self.moves > MAX_MOVES;
        if stop {
            self.resting = self.rest;
            self.rest = (self.rest * 2).min(MAX_REST);
        } else if self.moves == 0 {
            self.rest = FIRST_REST;
        }
        self.samples = 0;
        self.moves = 0;
        stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Vec<usize> {
        let allowed = sched_getaffinity(Pid::from_raw(0)).expect("an affinity mask");
        (0..CpuSet::count())
            .filter(|&c| allowed.is_set(c).unwrap_or(false))
            .collect()
    }

    #[test]
    fn keeps_off_the_cpu_given_and_returns_to_all_of_them() {
        std::thread::spawn(|| {
            let cpus = ours();
            assert!(
                cpus.len() >= 2,
                "this test needs two CPUs; the machine has {cpus:?}"
            );
            let mut cpu = SamplerCpus::new();
            for &c in &cpus {
                cpu.keep_off(Some(c));
                assert_eq!(cpu.avoided, Some(c));
                assert_ne!(current_cpu(), Some(c));
            }
            cpu.keep_off(None);
            assert_eq!(cpu.avoided, None);
            assert_eq!(ours(), cpus);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_cpu_not_ours_is_not_avoided() {
        std::thread::spawn(|| {
            let cpus = ours();
            let outside = (0..CpuSet::count())
                .find(|c| !cpus.contains(c))
                .expect("a CPU outside the mask");
            let mut cpu = SamplerCpus::new();
            cpu.keep_off(Some(outside));
            assert_eq!(cpu.avoided, None);
            cpu.keep_off(Some(CpuSet::count() + 5));
            assert_eq!(cpu.avoided, None);
            assert_eq!(ours(), cpus);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_that_keeps_moving_is_left_alone_for_ever_longer_rests() {
        let mut rule = MoveRule::default();
        let mut rests = Vec::new();
        for _ in 0..3 {
            let stopped_at = (1..=WINDOW).find(|_| rule.stop_after(true));
            assert_eq!(stopped_at, Some(WINDOW));
            let rest = (0..).take_while(|_| rule.resting()).count();
            rests.push(rest as u32);
        }
        assert_eq!(rests, [FIRST_REST, 2 * FIRST_REST, 4 * FIRST_REST]);
    }

    #[test]
    fn a_thread_that_stays_is_avoided_and_a_calm_window_resets_the_rest() {
        let mut rule = MoveRule::default();
        let few = |i: u32| i < MAX_MOVES; // moves on MAX_MOVES samples only
        assert!(!(0..100 * WINDOW).any(|i| rule.stop_after(few(i % WINDOW))));
        assert!(!rule.resting());
        // A rest, then a window without moves: the next rest is short again.
        assert!((0..WINDOW).any(|_| rule.stop_after(true)));
        while rule.resting() {}
        assert!(!(0..WINDOW).any(|_| rule.stop_after(false)));
        assert!((0..WINDOW).any(|_| rule.stop_after(true)));
        assert_eq!(
            (0..).take_while(|_| rule.resting()).count(),
            FIRST_REST as usize
        );
    }
}
