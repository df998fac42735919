//! Attaching while the interpreter starts: before `Py_Initialize` is done.

use super::harness::*;
use super::judge::*;
use super::procfs::{signal, target_line};
use super::spawn::*;
use crate::pythons::Python;
use crate::target::Target;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The fixture, started without waiting for any handshake (what a user
/// attaching to a process that just started meets). It spins until told,
/// at most this many seconds.
fn spawn_fixture(py: &Python) -> Result<Target, String> {
    Target::spawn(py, "faults_startup.py", &["120"])
}

fn tally_message(messages: &mut BTreeMap<String, usize>, pid: i32, m: &str) {
    *messages
        .entry(m.replace(&pid.to_string(), "PID"))
        .or_default() += 1;
}

/// Dumps from the moment the process is spawned until Python runs the
/// fixture's code.
fn dump_during_startup(
    py: &Python,
    rng: &mut Rng,
    messages: &mut BTreeMap<String, usize>,
) -> Result<String, String> {
    let target = spawn_fixture(py)?;
    let pid = target.pid();
    let delay = rng.millis(40);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, pid {pid})");
    // Start-up takes milliseconds; the bound only ends a test that never
    // sees the fixture's code.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut result = Err(format!("never saw started_spin within 60 s {ctx}"));
    let mut dumps = 0;
    while Instant::now() < deadline {
        let out = run_bounded(&dump_args(pid), Duration::from_secs(10));
        dumps += 1;
        match judge_dump(&out, py, pid) {
            Err(e) => {
                result = Err(format!("dump #{dumps}: {e} {ctx}"));
                break;
            }
            Ok(DumpResult::Message(m)) => tally_message(messages, pid, &m),
            Ok(DumpResult::Stacks(doc)) => {
                let threads = thread_functions(&doc);
                if threads
                    .iter()
                    .any(|t| t.first().is_some_and(|f| f == "started_spin"))
                {
                    tally_message(messages, pid, "(stacks in started_spin)");
                    result = Ok(String::new());
                    break;
                }
                tally_message(messages, pid, "(stacks still starting up)");
            }
        }
    }
    drop(target); // killed
    result
}

/// `record --pid` attached the moment the process is spawned. It either
/// refuses at once with a clear message (only where the process is not
/// Python yet: chroot and a shell run first for an interpreter in a root),
/// or records, and then it must sample the fixture's code once Python runs
/// it: the fixture says SPINNING from started_spin() and spins there until
/// the test, having seen pysampler pause it since, tells it to exit.
fn record_during_startup(
    py: &Python,
    rng: &mut Rng,
    dir: &Path,
    i: usize,
    messages: &mut BTreeMap<String, usize>,
) -> Result<String, String> {
    let target = spawn_fixture(py)?;
    let pid = target.pid();
    let delay = rng.millis(40);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let path = dir.join(format!("startup-{}-{i}.txt", py.label));
    let mut rec = spawn_pysampler(&record_args(pid, &path, &["-r", "1000"]));
    if rec
        .wait_line("pysampler: recording", Duration::from_secs(30))
        .is_err()
    {
        let Some((status, _)) = rec.wait_exit(Duration::from_secs(30)) else {
            return Err(format!(
                "record --pid neither recording nor ended after 30 s {ctx}"
            ));
        };
        rec.drain();
        let stderr = rec.stderr_text();
        no_panic(&stderr, Some(status))?;
        let message = stderr
            .lines()
            .find(|l| l.starts_with("pysampler: "))
            .unwrap_or("");
        if status.success() || !CLEAR_MESSAGES.iter().any(|m| message.contains(m)) {
            return Err(format!(
                "record ended with {status} without a clear message {ctx}: {stderr}"
            ));
        }
        if py.root.is_none() {
            // Spawned by exec of the interpreter itself: it is Python from
            // its first instruction, with its runtime in the executable.
            return Err(format!(
                "record refused a process that was Python from the start {ctx}: {message}"
            ));
        }
        tally_message(messages, pid, &format!("record refused: {message}"));
        return Ok(String::new());
    }
    target_line(&target, "SPINNING", Duration::from_secs(30)).map_err(|e| format!("{e} {ctx}"))?;
    wait_until_traced(pid, &rec).map_err(|e| format!("{e} {ctx}"))?;
    signal(pid, libc::SIGUSR1);
    let Some((status, _)) = rec.wait_exit(EXIT_LIMIT * 3) else {
        return Err(format!(
            "record still running {:?} after the fixture was told to exit {ctx}",
            EXIT_LIMIT * 3
        ));
    };
    rec.drain();
    let stderr = rec.stderr_text();
    no_panic(&stderr, Some(status))?;
    if !status.success() {
        return Err(format!("record exited with {status} {ctx}: {stderr}"));
    }
    let stacks = read_raw(py, &path).map_err(|e| format!("{e} {ctx}"))?;
    let spinning = samples_with(&stacks, "started_spin");
    if spinning == 0 {
        return Err(format!(
            "no sample of started_spin, which ran until pysampler had paused it ({} samples in all) {ctx}; stderr: {stderr}",
            total(&stacks)
        ));
    }
    match stderr.lines().find(|l| l.contains("last error: ")) {
        Some(last) => tally_message(messages, pid, &format!("record ok, {last}")),
        None => tally_message(messages, pid, "record ok"),
    }
    Ok(String::new())
}

#[test]
fn attaching_while_the_interpreter_starts() {
    let (mut tally, mut rng) = Tally::new("attaching_while_the_interpreter_starts");
    let dir = tally.dir("startup");
    let mut messages = BTreeMap::new();
    for i in 0..iterations() {
        let py = python_for(i);
        let r = dump_during_startup(&py, &mut rng, &mut messages);
        tally.add(&format!("dump/{}", py.label), &format!("#{i}"), r);
        let r = record_during_startup(&py, &mut rng, &dir, i, &mut messages);
        tally.add(&format!("record/{}", py.label), &format!("#{i}"), r);
    }
    for (m, n) in &messages {
        tally.note(format!("{n}× {m}"));
    }
    tally.finish();
}
