//! Threads that come and go by the thousand, hundreds of threads at once,
//! and threads inside long system calls while they are paused.

use super::harness::*;
use super::judge::*;
use super::procfs::*;
use super::spawn::*;
use crate::pythons::{self, Python};
use crate::target::{marker_line, Target};
use std::path::Path;
use std::time::{Duration, Instant};

/// Errors allowed per sample under thread churn: 1%. pysampler pauses every
/// thread it reads, and `pause` already knows which threads exited before
/// they could be stopped; such a thread has no stack to report and should
/// simply be left out of the sample. So the only failures left are reads
/// that race a thread's exit in some way pause cannot see, which at ~1000
/// exits a second should be rare. Each error loses a whole sample, live
/// threads included, so a few percent would already under-represent the
/// busiest moments of the program; an error storm (one dead thread
/// poisoning every walk) is near 100%.
const MAX_ERROR_SHARE: f64 = 0.01;

fn thread_faults(py: &Python, mode: &str, dir: &Path, i: usize) -> Result<String, String> {
    let target = Target::start(py, "faults_threads.py", &[mode]);
    let pid = target.pid();
    let out = dir.join(format!("{}-{mode}-{i}.txt", py.label));
    let seconds = 3.0;
    let started = Instant::now();
    let mut rec = spawn_pysampler(&record_args(pid, &out, &["-r", "500", "-d", "3"]));
    let ctx = format!("(pid {pid}, pysampler {})", rec.pid());
    let limit = Duration::from_secs_f64(seconds + 20.0);
    let Some((status, _)) = rec.wait_exit(limit) else {
        return Err(format!(
            "record -d 3 still running after {limit:?} (hang) {ctx}; stderr: {}",
            rec.stderr_text()
        ));
    };
    let took = started.elapsed();
    rec.drain();
    let stderr = rec.stderr_text();
    no_panic(&stderr, Some(status))?;
    if !status.success() {
        return Err(format!("record exited with {status} {ctx}: {stderr}"));
    }
    // How many threads the fixture started meanwhile (lines every ~0.5 s).
    let counts: Vec<u64> = target
        .lines
        .try_iter()
        .filter_map(|l| l.strip_prefix("STARTED ").and_then(|n| n.parse().ok()))
        .collect();
    let rate = match (counts.first(), counts.last()) {
        (Some(a), Some(b)) if counts.len() > 1 => {
            format!(
                "{:.0} threads started/s",
                (b - a) as f64 / ((counts.len() - 1) as f64 * 0.5)
            )
        }
        _ => "no thread churn".into(),
    };
    let ctx = format!("({rate}, pid {pid})");
    covered_whole_duration(&stderr, pid, seconds)
        .map_err(|e| format!("{e} {ctx}; stderr: {stderr}"))?;
    let (samples, late, errors) =
        summary(&stderr).ok_or_else(|| format!("no summary line {ctx}: {stderr}"))?;
    let stacks = read_raw(py, &out).map_err(|e| format!("{e} {ctx}"))?;
    // Each sample reads every thread's state (/proc stat, thread state),
    // so 500 threads cost ~10 ms a sample on this machine (more with other
    // tests running): far fewer than 1500 samples, but never a standstill.
    if samples < 10 {
        return Err(format!(
            "only {samples} samples in {seconds} s at 500 Hz {ctx}: {stderr}"
        ));
    }
    if errors as f64 > MAX_ERROR_SHARE * samples as f64 {
        return Err(format!(
            "{errors} errors in {samples} samples (limit {:.0}%) {ctx}: {stderr}",
            MAX_ERROR_SHARE * 100.0
        ));
    }
    // The long-lived thread: always under main() under <module>.
    let want = ["<module>", "main", "long_lived_marker"];
    let mut long_lived = 0;
    for (frames, count) in &stacks {
        let names: Vec<&str> = frames.iter().map(|f| name_of(f)).collect();
        if names.contains(&"long_lived_marker") {
            // Below it only say(), which prints the progress lines.
            let below_ok = names.len() == 3 || (names.len() == 4 && names[3] == "say");
            if names[..names.len().min(3)] != want || !below_ok {
                return Err(format!(
                    "wrong stack for the long-lived thread: {frames:?} {ctx}"
                ));
            }
            long_lived += count;
        }
    }
    // The main thread spins, so it is running in most samples; with many
    // threads contending for the GIL it waits for it in some.
    if (long_lived as f64) < 0.2 * samples as f64 {
        return Err(format!(
            "long_lived_marker in only {long_lived} of {samples} samples {ctx}"
        ));
    }
    let line = marker_line("faults_threads.py", "LINE_LONG_LIVED");
    if !stacks.iter().any(|(fs, _)| {
        fs.last()
            .is_some_and(|f| f.ends_with(&format!("faults_threads.py:{line})")))
    }) {
        return Err(format!(
            "long_lived_marker never seen at its loop line {line} {ctx}"
        ));
    }
    target_free(pid, FREE_LIMIT)?;
    if !alive(pid) {
        return Err(format!("the target died {ctx}"));
    }
    Ok(format!(
        "{samples} samples, {late:.1}% late, {errors} errors, long-lived in {long_lived}, {rate}, took {:.1} s",
        took.as_secs_f64()
    ))
}

#[test]
fn thread_churn_and_many_threads() {
    let (mut tally, _) = Tally::new("thread_churn_and_many_threads");
    let dir = tally.dir("threads");
    for i in 0..long_runs() {
        for label in ["3.12", "2.7", "3.9", "3.14"] {
            let py = pythons::find(label);
            for mode in ["churn", "many"] {
                let result = thread_faults(&py, mode, &dir, i);
                tally.add(&format!("{mode}/{label}"), &format!("#{i}"), result);
            }
        }
    }
    tally.finish();
}

/// A thread that spends a few hundred milliseconds inside one system call
/// (running in the kernel, where a PTRACE_INTERRUPT waits until the call
/// returns) while it is being paused: pysampler gives up waiting for the
/// stop after a bounded time, and must then never leave the thread seized
/// (held stopped once the call returns, or refused on the next pause).
fn long_syscall(py: &Python, extra: &[&str], dir: &Path, i: usize) -> Result<String, String> {
    let target = Target::start(py, "faults_long_syscall.py", &[]);
    let pid = target.pid();
    let tag = if extra.is_empty() { "default" } else { "idle" };
    let out = dir.join(format!("{}-{tag}-{i}.txt", py.label));
    let seconds = 4.0;
    let mut args = vec!["-r", "1000", "-d", "4"];
    args.extend_from_slice(extra);
    let mut rec = spawn_pysampler(&record_args(pid, &out, &args));
    let ctx = format!("(pid {pid}, pysampler {})", rec.pid());
    rec.wait_line("pysampler: recording", Duration::from_secs(30))?;
    // Watch the target while it is recorded: the longest stretch in a
    // ptrace stop. A sample holds it for well under a millisecond; a call
    // (~100 ms) outlasts pysampler's bounded wait for the stop (25 ms), so
    // every cycle leaves a late stopper that the next tick must release.
    let mut longest = Duration::ZERO;
    let mut stopped_since: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds + 20.0);
    let status = loop {
        if let Ok(Some(status)) = rec.child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            return Err(format!("record -d 4 still running after 24 s {ctx}"));
        }
        let stopped = matches!(stat_state(pid), Some('t') | Some('T'));
        match (stopped, stopped_since) {
            (true, None) => stopped_since = Some(Instant::now()),
            (false, Some(since)) => {
                longest = longest.max(since.elapsed());
                stopped_since = None;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if let Some(since) = stopped_since {
        longest = longest.max(since.elapsed());
    }
    rec.drain();
    let stderr = rec.stderr_text();
    no_panic(&stderr, Some(status))?;
    let cycles: Vec<f64> = target
        .lines
        .try_iter()
        .filter_map(|l| l.split(' ').nth(2).and_then(|t| t.parse().ok()))
        .collect();
    let slowest = cycles.iter().cloned().fold(0.0, f64::max);
    let ctx = format!(
        "{ctx}, longest stop {longest:?}, slowest call {slowest:.3} s of {}",
        cycles.len()
    );
    measured(
        &format!("longest stop of target {pid} inside long system calls"),
        longest,
        HELD_LIMIT,
    );
    if longest > HELD_LIMIT {
        return Err(format!(
            "the target was held stopped for {longest:?} while recorded (limit {HELD_LIMIT:?}) {ctx}; stderr: {stderr}"
        ));
    }
    if !status.success() {
        return Err(format!("record exited with {status} {ctx}: {stderr}"));
    }
    covered_whole_duration(&stderr, pid, seconds)
        .map_err(|e| format!("{e} {ctx}; stderr: {stderr}"))?;
    target_free(pid, FREE_LIMIT)?;
    let stacks = read_raw(py, &out).map_err(|e| format!("{e} {ctx}"))?;
    if samples_with(&stacks, "busy_work") == 0 {
        return Err(format!("no sample of busy_work {ctx}"));
    }
    Ok(if i == 0 { ctx } else { String::new() })
}

#[test]
fn long_system_calls_never_leave_the_target_stopped() {
    let (mut tally, _) = Tally::new("long_system_calls_never_leave_the_target_stopped");
    let dir = tally.dir("long-syscall");
    for i in 0..long_runs() {
        for label in ["3.12", "2.7", "3.9", "3.14"] {
            let py = pythons::find(label);
            for (tag, extra) in [("default", &[][..]), ("idle", &["--idle"][..])] {
                let result = long_syscall(&py, extra, &dir, i);
                tally.add(&format!("{tag}/{label}"), &format!("#{i}"), result);
            }
        }
    }
    tally.finish();
}
