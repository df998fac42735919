//! Attaching while the interpreter starts: before `Py_Initialize` is done.

use super::harness::*;
use super::judge::*;
use super::spawn::*;
use crate::pythons::Python;
use crate::target::python_command;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `script` without waiting for any handshake (what a user attaching
/// to a process that just started gets).
fn spawn_python(py: &Python, script: &str, args: &[&str]) -> Child {
    let argv = python_command(py, script, args);
    Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(crate::target::fixtures_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python")
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
    let mut child = spawn_python(py, "faults_startup.py", &["2"]);
    let pid = child.id() as i32;
    let delay = rng.millis(40);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut result = Err(format!("never saw started_spin within 20 s {ctx}"));
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
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `record --pid` attached the moment the process is spawned.
fn record_during_startup(
    py: &Python,
    rng: &mut Rng,
    dir: &Path,
    i: usize,
    messages: &mut BTreeMap<String, usize>,
) -> Result<String, String> {
    let mut child = spawn_python(py, "faults_startup.py", &["1.5"]);
    let pid = child.id() as i32;
    let delay = rng.millis(40);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let path = dir.join(format!("startup-{}-{i}.txt", py.label));
    let out = run_bounded(
        &record_args(pid, &path, &["-r", "1000", "-d", "1"]),
        Duration::from_secs(20),
    );
    let _ = child.kill();
    let _ = child.wait();
    let Some(status) = out.status else {
        return Err(format!("record --pid -d 1 still running after 20 s {ctx}"));
    };
    no_panic(&out.stderr, Some(status))?;
    if status.success() {
        read_raw(py, &path).map_err(|e| format!("{e} {ctx}"))?;
        if let Some(last) = out.stderr.lines().find(|l| l.contains("last error: ")) {
            tally_message(messages, pid, &format!("record ok, {last}"));
        } else {
            tally_message(messages, pid, "record ok");
        }
        return Ok(String::new());
    }
    let message = out
        .stderr
        .lines()
        .find(|l| l.starts_with("pysampler: "))
        .unwrap_or("")
        .to_string();
    if !CLEAR_MESSAGES.iter().any(|m| message.contains(m)) {
        return Err(format!(
            "record failed without a clear message {ctx}: {}",
            out.stderr
        ));
    }
    tally_message(messages, pid, &format!("record failed: {message}"));
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
