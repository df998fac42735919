//! What every fault test shares: how often a fault repeats, the seeded
//! random moments, the tally that runs every iteration and then fails
//! listing each failed one, and the time bounds.

use crate::pythons::{self, Python};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How many times each fault is injected.
pub(super) fn iterations() -> usize {
    std::env::var("PYSAMPLER_FAULT_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(10)
}

/// Runs of the multi-second faults (thread churn, code reuse): one per ten
/// iterations, at least one. Each run injects its fault thousands of times.
pub(super) fn long_runs() -> usize {
    iterations().div_ceil(10)
}

/// The interpreters an iteration runs on, in turn: 3.12 every other time.
pub(super) const ROTATION: &[&str] = &["3.12", "2.7", "3.12", "3.9", "3.12", "3.14"];

pub(super) fn python_for(iteration: usize) -> Python {
    pythons::find(ROTATION[iteration % ROTATION.len()])
}

/// splitmix64: small, seedable, good enough for random moments.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub(super) fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

pub(super) fn base_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        std::env::var("PYSAMPLER_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    % 1_000_000_007
            })
    })
}

/// Results of one test's iterations, by case ("record/kill/3.12").
pub(super) struct Tally {
    pub(super) test: &'static str,
    pub(super) seed: u64,
    pub(super) started: Instant,
    pub(super) cases: BTreeMap<String, (usize, usize)>,
    pub(super) failures: Vec<String>,
    pub(super) notes: Vec<String>,
    /// Output folders, removed when every iteration passed.
    pub(super) dirs: Vec<PathBuf>,
}

impl Tally {
    pub(super) fn new(test: &'static str) -> (Tally, Rng) {
        let seed = base_seed();
        let mixed = test.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        eprintln!(
            "{test}: {} iterations, seed {seed} (PYSAMPLER_FAULT_SEED={seed} repeats the random moments)",
            iterations()
        );
        let tally = Tally {
            test,
            seed,
            started: Instant::now(),
            cases: BTreeMap::new(),
            failures: Vec::new(),
            notes: Vec::new(),
            dirs: Vec::new(),
        };
        (tally, Rng(mixed))
    }

    /// A fresh output folder for this test, kept only if something failed.
    pub(super) fn dir(&mut self, name: &str) -> PathBuf {
        let dir = out_dir(name);
        self.dirs.push(dir.clone());
        dir
    }

    pub(super) fn add(&mut self, case: &str, what: &str, result: Result<String, String>) {
        let entry = self.cases.entry(case.to_string()).or_insert((0, 0));
        entry.0 += 1;
        match result {
            Ok(note) => {
                entry.1 += 1;
                if !note.is_empty() {
                    self.notes.push(format!("{case} {what}: {note}"));
                }
            }
            Err(e) => {
                eprintln!("FAILED {case} {what}: {e}");
                self.failures.push(format!("{case} {what}: {e}"));
            }
        }
    }

    pub(super) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub(super) fn finish(self) {
        let (runs, passed) = self
            .cases
            .values()
            .fold((0, 0), |(r, p), (cr, cp)| (r + cr, p + cp));
        let mut summary = format!(
            "{}: {passed}/{runs} passed in {:.1} s (seed {})",
            self.test,
            self.started.elapsed().as_secs_f64(),
            self.seed
        );
        for (case, (r, p)) in &self.cases {
            summary.push_str(&format!("\n  {case}: {p}/{r}"));
        }
        for note in self.notes.iter().take(40) {
            summary.push_str(&format!("\n  note: {note}"));
        }
        eprintln!("{summary}");
        if self.failures.is_empty() {
            for dir in &self.dirs {
                let _ = std::fs::remove_dir_all(dir);
            }
        } else {
            let shown: Vec<&String> = self.failures.iter().take(25).collect();
            panic!(
                "{summary}\n{} of {runs} failed (PYSAMPLER_FAULT_SEED={} repeats):\n{}",
                self.failures.len(),
                self.seed,
                shown
                    .iter()
                    .map(|f| format!("- {f}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// Output folder of one test in this test process (another test process may
/// be running the same tests in the same build folder).
pub(super) fn out_dir(test: &str) -> PathBuf {
    let dir = pythons::scratch_dir()
        .join("reliability")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// Time bounds

// None of these is a speed test. The events they bound happen in
// milliseconds, but on a loaded 2-core machine (other tests, other builds)
// a step that takes 5 ms can take a second when the scheduler says so, and
// the former limits (1 s, 500 ms, 250 ms, 200 ms) could be missed there
// with nothing wrong in pysampler. What they
// exist to catch is a step that never happens: pysampler waiting for a
// target that is gone, a thread left stopped, a Ctrl-C that is ignored.
// So each is at least ten times what the step takes on a busy machine, and
// the time measured is printed (`measured`), for a slow-down to show in
// the log without failing a run. Where a result can show what happened
// without a clock (an exit status, a fixture's line), the tests use that.

/// pysampler ends this soon after the target did. It notices within a tick
/// or two; one that went on sampling a dead process would run until killed.
pub(super) const EXIT_LIMIT: Duration = Duration::from_secs(10);
/// A graceful stop (SIGINT, SIGTERM, SIGHUP) finishes the output within this.
pub(super) const GRACEFUL_LIMIT: Duration = Duration::from_secs(30);
/// pysampler exits this soon after a second Ctrl-C. Where the first one's
/// clean stop cannot have ended it (a launched program that ignores SIGINT
/// keeps it waiting 5 s), exit status 130, from the signal handler, shows
/// that the second did; this bound only catches a hang.
pub(super) const AT_ONCE: Duration = Duration::from_secs(10);
/// The target is neither stopped nor traced this soon after pysampler is
/// gone. The kernel ends a dead tracer's stops and detaches its tracees as
/// the tracer exits, so this is at once; a target that pysampler left in a
/// group stop (`T`) would stay stopped for ever.
pub(super) const FREE_LIMIT: Duration = Duration::from_secs(10);
/// The longest stretch a target inside long system calls may be seen
/// stopped while recorded. A sample holds a thread for well under a
/// millisecond, and a late stopper is let go on the next tick; a thread
/// pysampler failed to let go would stay stopped until the recording ends
/// (seconds: `long_syscall` records for 4 s).
pub(super) const HELD_LIMIT: Duration = Duration::from_millis(2500);

/// Prints a time a bound above applies to (`--nocapture` shows it).
pub(super) fn measured(what: &str, took: Duration, limit: Duration) {
    eprintln!("measured: {what}: {took:.1?} (bound {limit:?})");
}
