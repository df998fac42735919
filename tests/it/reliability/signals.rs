//! pysampler is signalled (SIGINT, SIGTERM, SIGHUP, two SIGINTs) or killed
//! while it records: the target keeps running, unstopped, and computes
//! the right results.

use super::harness::*;
use super::judge::*;
use super::procfs::*;
use super::spawn::*;
use crate::pythons::Python;
use crate::target::{python_command, Target, PYSAMPLER};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const MUL: u64 = 6364136223846793005;
const ADD: u64 = 1442695040888963407;

fn chain(seed: u64, n: u64) -> u64 {
    let mut x = seed;
    for i in 0..n {
        x = x.wrapping_mul(MUL).wrapping_add(ADD).wrapping_add(i);
    }
    x
}

/// Lets the checksum fixture finish and checks what it computed.
fn finish_checksums(target: &mut Target) -> Result<(), String> {
    let pid = target.pid();
    signal(pid, libc::SIGUSR1);
    let mut results = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = target.lines.recv_timeout(left).map_err(|_| {
            format!(
                "the target never finished its work after SIGUSR1 (state {:?}, {:?})",
                stat_state(pid),
                stopped_or_traced(pid)
            )
        })?;
        if line == "DONE" {
            break;
        }
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            if parts.len() == 3 {
                results.insert(
                    parts[0].to_string(),
                    (
                        parts[1].parse::<u64>().unwrap(),
                        parts[2].parse::<u64>().unwrap(),
                    ),
                );
            }
        }
    }
    for (name, seed) in [("main", 1), ("napper", 2), ("cruncher", 3)] {
        let &(n, x) = results
            .get(name)
            .ok_or_else(|| format!("no result for {name}: {results:?}"))?;
        if n == 0 || chain(seed, n) != x {
            return Err(format!(
                "{name}: {n} iterations gave {x}, expected {}",
                chain(seed, n)
            ));
        }
    }
    match results.get("pipe") {
        Some(&(n, 1)) if n > 0 => {}
        other => return Err(format!("pipe items lost or out of order: {other:?}")),
    }
    match wait_child(&mut target.child, Duration::from_secs(10)) {
        Some(s) if s.success() => Ok(()),
        other => Err(format!("the target ended with {other:?}")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    Sigint,
    Sigterm,
    Sighup,
    Sigkill,
    /// SIGINT, then a second one once the first was taken.
    DoubleSigint,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Sigint => "sigint",
            Stop::Sigterm => "sigterm",
            Stop::Sighup => "sighup",
            Stop::Sigkill => "sigkill",
            Stop::DoubleSigint => "double-sigint",
        }
    }
}

fn stop_recording(
    py: &Python,
    stop: Stop,
    rng: &mut Rng,
    dir: &Path,
    i: usize,
) -> Result<String, String> {
    let mut target = Target::start(py, "faults_checksum.py", &[]);
    let pid = target.pid();
    let out = dir.join(format!("{}-{}-{i}.txt", py.label, stop.name()));
    let mut rec = spawn_pysampler(&record_args(pid, &out, &["-r", "2000"]));
    rec.wait_line("pysampler: recording", Duration::from_secs(30))?;
    wait_until_traced(pid, &rec)?;
    // Signals that reach the target while it is paused must not be lost.
    for k in 1..=2 {
        signal(pid, libc::SIGUSR2);
        target_line(&target, &format!("USR2 {k}"), Duration::from_secs(10))
            .map_err(|e| format!("SIGUSR2 #{k} sent during recording was lost: {e}"))?;
    }
    let delay = rng.millis(300);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, pid {pid}, pysampler {})", rec.pid());
    let mut note = String::new();
    match stop {
        Stop::Sigint | Stop::Sigterm | Stop::Sighup => {
            let sig = match stop {
                Stop::Sigint => libc::SIGINT,
                Stop::Sigterm => libc::SIGTERM,
                _ => libc::SIGHUP,
            };
            let sent = Instant::now();
            signal(rec.pid(), sig);
            let (status, at) = rec.wait_exit(GRACEFUL_LIMIT).ok_or_else(|| {
                format!(
                    "record still running {GRACEFUL_LIMIT:?} after {} {ctx}",
                    stop.name()
                )
            })?;
            rec.drain();
            let stderr = rec.stderr_text();
            no_panic(&stderr, Some(status))?;
            if !status.success() {
                return Err(format!(
                    "record exited with {status} after {} {ctx}: {stderr}",
                    stop.name()
                ));
            }
            let stacks = read_raw(py, &out).map_err(|e| format!("{e} {ctx}"))?;
            if total(&stacks) == 0 {
                return Err(format!("empty profile after {} {ctx}", stop.name()));
            }
            measured(
                &format!("record stopped after {} (pid {pid})", stop.name()),
                at - sent,
                GRACEFUL_LIMIT,
            );
            note = format!("stopped in {:?}", at - sent);
        }
        Stop::Sigkill => {
            signal(rec.pid(), libc::SIGKILL);
            rec.wait_exit(Duration::from_secs(30))
                .ok_or_else(|| format!("pysampler survived SIGKILL for 30 s {ctx}"))?;
        }
        Stop::DoubleSigint => {
            signal(rec.pid(), libc::SIGINT);
            // The first must have been taken, or the two merge into one.
            let taken = poll(Duration::from_secs(30), || {
                shared_pending(rec.pid()) & (1 << (libc::SIGINT - 1)) == 0
            });
            if !taken {
                return Err(format!("pysampler never took the first SIGINT {ctx}"));
            }
            let gap = rng.millis(3);
            std::thread::sleep(gap);
            let second = Instant::now();
            signal(rec.pid(), libc::SIGINT);
            let (status, at) = rec.wait_exit(AT_ONCE).ok_or_else(|| {
                format!(
                    "record still running {AT_ONCE:?} after a second SIGINT (gap {gap:?}) {ctx}"
                )
            })?;
            rec.drain();
            no_panic(&rec.stderr_text(), Some(status))?;
            measured(
                &format!("record exited after the second SIGINT (pid {pid})"),
                at - second,
                AT_ONCE,
            );
            // The first SIGINT's clean stop may have finished before the
            // second arrived (0); otherwise the second ended it (130).
            if !(status.success() || status.code() == Some(130)) {
                return Err(format!(
                    "record exited with {status} after two SIGINTs {ctx}"
                ));
            }
            note = format!(
                "exit {:?} {:?} after the second",
                status.code(),
                at - second
            );
        }
    }
    target_free(pid, FREE_LIMIT).map_err(|e| format!("{e} {ctx}"))?;
    finish_checksums(&mut target).map_err(|e| format!("{e} {ctx}"))?;
    Ok(if i < 2 { note } else { String::new() })
}

#[test]
fn signals_to_pysampler_leave_the_target_running() {
    let (mut tally, mut rng) = Tally::new("signals_to_pysampler_leave_the_target_running");
    let dir = tally.dir("signals");
    for i in 0..iterations() {
        let py = python_for(i);
        for stop in [
            Stop::Sigint,
            Stop::Sigterm,
            Stop::Sighup,
            Stop::Sigkill,
            Stop::DoubleSigint,
        ] {
            let result = stop_recording(&py, stop, &mut rng, &dir, i);
            tally.add(
                &format!("{}/{}", stop.name(), py.label),
                &format!("#{i}"),
                result,
            );
        }
    }
    tally.finish();
}

/// A launched program that ignores SIGINT keeps pysampler's graceful stop
/// waiting for it; a second SIGINT must end pysampler at once, and the
/// program is left running, not stopped, and finishes correctly.
fn double_sigint_launched(
    py: &Python,
    rng: &mut Rng,
    dir: &Path,
    i: usize,
) -> Result<String, String> {
    let out = dir.join(format!("launched-{}-{i}.txt", py.label));
    let mut cmd = Command::new(PYSAMPLER);
    cmd.args(["record", "-r", "2000", "-f", "raw", "-o"])
        .arg(&out)
        .arg("--")
        .args(python_command(py, "faults_checksum.py", &["ignore-sigint"]))
        .env("PYTHONIOENCODING", "utf-8");
    let mut rec = spawn_command(&mut cmd);
    let line = rec.wait_line("pysampler: recording program", Duration::from_secs(30))?;
    let pid: i32 = line
        .split_whitespace()
        .nth(3)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no pid in {line:?}"))?;
    // Not our child: once pysampler is gone it is reparented and reaped by
    // others, and its pid may be reused (pid_max is 32768 here, and the
    // churn tests start thousands of threads): signal it through a pidfd.
    let program = ProcessHandle::open(pid)?;
    // The program's stdout is pysampler's: its handshake arrives there.
    if !poll(Duration::from_secs(30), || {
        String::from_utf8_lossy(&rec.stdout_bytes()).contains("READY\n")
    }) {
        return Err(format!("the program {pid} never printed READY"));
    }
    wait_until_traced(pid, &rec)?;
    let delay = rng.millis(300);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, program {pid}, pysampler {})", rec.pid());
    signal(rec.pid(), libc::SIGINT);
    // pysampler joins its sampler thread, passes the SIGINT on to the
    // program, which ignores it, and waits for it: once pysampler is down to
    // its main thread it is in that grace period (5 s, after which it
    // kills the program and exits: then it is gone, not down to one thread).
    let tasks = || std::fs::read_dir(format!("/proc/{}/task", rec.pid())).map_or(0, |d| d.count());
    let passed_on = poll(Duration::from_secs(30), || tasks() <= 1);
    if !passed_on || tasks() == 0 {
        return Err(format!(
            "pysampler did not stop sampling after SIGINT, or ended before the second one ({} threads) {ctx}",
            tasks()
        ));
    }
    let second = Instant::now();
    signal(rec.pid(), libc::SIGINT);
    let (status, at) = rec
        .wait_exit(AT_ONCE)
        .ok_or_else(|| format!("record still running {AT_ONCE:?} after a second SIGINT {ctx}"))?;
    no_panic(&rec.stderr_text(), Some(status))?;
    let took = at - second;
    measured(
        &format!("record exited after the second SIGINT (program {pid})"),
        took,
        AT_ONCE,
    );
    // 130 comes only from the handler of a second SIGINT (signals.rs):
    // the end of the grace period would give the program's status.
    if status.code() != Some(130) {
        return Err(format!(
            "record exited with {status} after the second SIGINT, not 130: it was not the second SIGINT that ended it {ctx}"
        ));
    }
    let result = (|| {
        target_free(pid, FREE_LIMIT)?;
        if !alive(pid) {
            return Err(format!(
                "the program {pid} did not survive pysampler's exit"
            ));
        }
        // The program's stdout is pysampler's: read the results from there.
        program.signal(libc::SIGUSR1);
        if !poll(Duration::from_secs(20), || !alive(pid)) {
            return Err(format!("the program {pid} never finished after SIGUSR1"));
        }
        rec.drain();
        let text = String::from_utf8_lossy(&rec.stdout_bytes()).into_owned();
        check_checksum_text(&text)
    })();
    program.signal(libc::SIGKILL);
    result.map_err(|e| format!("{e} {ctx}"))?;
    Ok(if i < 2 {
        format!("exit {:?} {took:?} after the second", status.code())
    } else {
        String::new()
    })
}

fn check_checksum_text(text: &str) -> Result<(), String> {
    let mut results = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let p: Vec<&str> = rest.split(' ').collect();
            if p.len() == 3 {
                results.insert(
                    p[0].to_string(),
                    (
                        p[1].parse::<u64>().unwrap_or(0),
                        p[2].parse::<u64>().unwrap_or(0),
                    ),
                );
            }
        }
    }
    if !text.lines().any(|l| l == "DONE") {
        return Err(format!("the program printed no DONE: {text:?}"));
    }
    for (name, seed) in [("main", 1), ("napper", 2), ("cruncher", 3)] {
        let &(n, x) = results
            .get(name)
            .ok_or_else(|| format!("no result for {name}: {text:?}"))?;
        if n == 0 || chain(seed, n) != x {
            return Err(format!(
                "{name}: {n} iterations gave {x}, expected {}",
                chain(seed, n)
            ));
        }
    }
    match results.get("pipe") {
        Some(&(n, 1)) if n > 0 => Ok(()),
        other => Err(format!("pipe items lost or out of order: {other:?}")),
    }
}

#[test]
fn second_sigint_exits_at_once_while_a_launched_program_ignores_the_first() {
    let (mut tally, mut rng) =
        Tally::new("second_sigint_exits_at_once_while_a_launched_program_ignores_the_first");
    let dir = tally.dir("double-sigint-launched");
    for i in 0..iterations() {
        let py = python_for(i);
        let result = double_sigint_launched(&py, &mut rng, &dir, i);
        tally.add(
            &format!("launched-double-sigint/{}", py.label),
            &format!("#{i}"),
            result,
        );
    }
    tally.finish();
}
