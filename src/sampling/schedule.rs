//! A drift-free schedule: tick n is due at start + n × interval, however long
//! each sample took. A tick that starts late is counted; ticks missed
//! entirely are skipped rather than taken in a burst.
//!
//! A sleeping thread wakes some time after its timer is due: 20–50 µs on a
//! VM, more than the tenth of an interval a tick may be late by at 2,000 Hz
//! and above. At those rates the schedule learns how late its wake-ups are
//! and sleeps that much less, then waits out the rest on the CPU: punctual
//! ticks for a few microseconds of spinning each. Slower rates just sleep,
//! where a late wake-up is rare and spinning would cost more than it buys.

use std::time::{Duration, Instant};

/// Shortest interval (highest rate) that only sleeps.
const SLEEP_ONLY_FROM: Duration = Duration::from_micros(501);

pub struct Schedule {
    start: Instant,
    interval: Duration,
    next: u64,
    /// How late wake-ups come (ns): an estimate of their 95th percentile,
    /// which is how much before a tick the schedule wakes (see `early`).
    oversleep_ns: f64,
}

/// What the schedule says about one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// When it was due, relative to the start.
    pub due: Duration,
    /// It started more than a tenth of an interval after it was due.
    pub late: bool,
}

impl Schedule {
    /// Ticks fall on `start` + n × interval (samplers of one session share
    /// a timeline); the first is the first one not yet late, so the time
    /// spent attaching is not counted as a late tick.
    pub fn new(start: Instant, interval: Duration) -> Schedule {
        Schedule::made_at(start, interval, Instant::now())
    }

    /// `new`, as if made at `now`.
    fn made_at(start: Instant, interval: Duration, now: Instant) -> Schedule {
        let mut schedule = Schedule {
            start,
            interval,
            next: 0,
            oversleep_ns: 0.0,
        };
        let interval_ns = interval.as_nanos().max(1);
        let since = now.saturating_duration_since(start).as_nanos();
        let first = since
            .saturating_sub(schedule.late_after().as_nanos())
            .div_ceil(interval_ns);
        schedule.next = u64::try_from(first).unwrap_or(u64::MAX);
        schedule
    }

    /// When the next tick is due, relative to the start.
    fn next_due(&self) -> Duration {
        // In u128 nanoseconds: tick counts pass u32 in days at high rates.
        let due_ns = self.interval.as_nanos() * u128::from(self.next);
        Duration::from_nanos(u64::try_from(due_ns).unwrap_or(u64::MAX))
    }

    /// How long after it is due a tick may start and not count as late.
    fn late_after(&self) -> Duration {
        self.interval / 10
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Sleeps until the next tick is due (or returns at once if it is
    /// overdue), then reports it.
    pub fn wait(&mut self) -> Tick {
        let due = self.next_due();
        let due_at = self.start + due;
        let now = Instant::now();
        let wake_at = due_at.checked_sub(self.early()).unwrap_or(due_at);
        if wake_at > now {
            std::thread::sleep(wake_at - now);
            self.learn(Some(wake_at.elapsed()));
        } else if self.interval < SLEEP_ONLY_FROM {
            self.learn(None);
        }
        let mut started = Instant::now();
        while started < due_at {
            std::hint::spin_loop();
            started = Instant::now();
        }
        let lateness = started.saturating_duration_since(due_at);
        // Skip the ticks that passed while we were busy.
        let elapsed = started.duration_since(self.start);
        let behind = (elapsed.as_nanos() / self.interval.as_nanos().max(1)) as u64;
        self.next = self.next.saturating_add(1).max(behind.saturating_add(1));
        Tick {
            due,
            late: lateness > self.late_after(),
        }
    }
}

/// Asks the scheduler to run this (sampler) thread promptly when its timer
/// fires. It runs for microseconds per tick, so this costs others nothing
/// measurable; without it, on a busy machine a sampler sharing a CPU with
/// the thread it just resumed waited out that thread's whole time slice
/// (~4 ms) before the next tick (measured: 300 of 1000 samples a second in
/// pausing mode). Needs privileges (as ptrace does); ignored without them.
/// Also asks for timers without slack: by default a sleeping thread is woken
/// up to 50 µs late, a tenth of the interval at 2000 Hz.
pub fn prefer_this_thread() {
    const SAMPLER_NICE: libc::c_int = -5;
    // SAFETY: plain syscalls on this thread's own id and attributes.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid, SAMPLER_NICE);
        let _ = libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
}

impl Schedule {
    /// How much before a tick to wake up (zero at rates that only sleep;
    /// the whole interval, i.e. no sleep, when wake-ups come too late to help).
    fn early(&self) -> Duration {
        if self.interval >= SLEEP_ONLY_FROM {
            return Duration::ZERO;
        }
        let expected = Duration::from_nanos(self.oversleep_ns as u64);
        if expected > self.interval / 2 {
            return self.interval;
        }
        expected
    }

    /// Tracks the 95th percentile of oversleep: each wake-up moves the
    /// estimate a step up if it came later, a twentieth of a step down if
    /// not, so one stray wake-up (a VM descheduled for milliseconds) barely
    /// moves it. Ticks taken without sleeping step it down, so the schedule
    /// tries sleeping again now and then.
    fn learn(&mut self, oversleep: Option<Duration>) {
        const STEP_NS: f64 = 2_000.0;
        const QUANTILE: f64 = 0.95;
        let later = oversleep.is_some_and(|o| o.as_nanos() as f64 > self.oversleep_ns);
        self.oversleep_ns += match later {
            true => STEP_NS * QUANTILE,
            false => -STEP_NS * (1.0 - QUANTILE),
        };
        self.oversleep_ns = self.oversleep_ns.max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_due_on_multiples_of_the_interval() {
        // Which ticks come first depends on when this thread runs (a loaded
        // machine can hold it past tick 0 or 1, which are then skipped), so
        // what is checked is what holds whatever the load: each tick is due
        // on a multiple of the interval, later than the one before, and is
        // not taken before it is due.
        let interval = Duration::from_millis(2);
        let start = Instant::now();
        let mut s = Schedule::new(start, interval);
        let mut last = None;
        for _ in 0..5 {
            let tick = s.wait();
            let taken = start.elapsed();
            eprintln!("tick due at {:?}, taken at {taken:?}", tick.due);
            assert_eq!(tick.due.as_nanos() % interval.as_nanos(), 0, "{tick:?}");
            if let Some(last) = last {
                assert!(tick.due > last, "{tick:?} after a tick due at {last:?}");
            }
            assert!(taken >= tick.due, "{tick:?} taken at {taken:?}");
            last = Some(tick.due);
        }
    }

    #[test]
    fn fast_ticks_are_never_taken_before_they_are_due() {
        let start = Instant::now();
        let interval = Duration::from_micros(200);
        let mut s = Schedule::new(start, interval);
        for _ in 0..200 {
            let tick = s.wait();
            assert!(
                start.elapsed() >= tick.due,
                "tick at {:?} taken early",
                tick.due
            );
        }
    }

    #[test]
    fn slow_rates_only_sleep() {
        let mut s = Schedule::new(Instant::now(), Duration::from_millis(1));
        for _ in 0..1000 {
            s.learn(Some(Duration::from_micros(300)));
        }
        assert_eq!(s.early(), Duration::ZERO);
    }

    #[test]
    fn a_stall_skips_missed_ticks_and_is_late() {
        let mut s = Schedule::new(Instant::now(), Duration::from_millis(10));
        s.wait();
        std::thread::sleep(Duration::from_millis(50));
        let t = s.wait();
        assert!(t.late);
        let next = s.wait();
        assert!(next.due >= Duration::from_millis(50), "{:?}", next.due);
    }

    #[test]
    fn time_before_the_schedule_is_made_is_not_late() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let interval = Duration::from_millis(100);
        // Made 5.5 intervals in: the first tick is the next one, not the
        // five that passed before the schedule existed.
        assert_eq!(
            Schedule::made_at(start, interval, at(550)).next_due(),
            Duration::from_millis(600)
        );
        // Within a tenth of an interval after a tick, that tick is not late yet.
        assert_eq!(
            Schedule::made_at(start, interval, at(605)).next_due(),
            Duration::from_millis(600)
        );
        assert_eq!(
            Schedule::made_at(start, interval, at(611)).next_due(),
            Duration::from_millis(700)
        );
    }
}
