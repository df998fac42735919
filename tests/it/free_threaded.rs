//! Free-threaded CPython (3.13t, built by scripts/build-python313t.sh): read
//! as every other build, one more table of offsets. Two threads running
//! Python at once are both sampled in the same ticks (a GIL build has one
//! wait for the other, though a loaded machine blurs that too much for a
//! control); `--gil` is refused with the reason, and kept when the program
//! turned its GIL back on.

use crate::formats::parse_folded_line;
use crate::pythons;
use crate::target::{fixtures_dir, pysampler, Target};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Thread samples per tick and the samples of each runner, from a
/// `record --pid -f raw` of the two-runner fixture on `label`.
fn samples_per_tick(label: &str, mode: &str) -> (f64, u64, u64) {
    let python = pythons::find(label);
    let target = Target::start(&python, "two_runners.py", &[]);
    let out = pythons::scratch_dir().join(format!("two-runners-{label}-{mode}.txt"));
    let pid = target.pid().to_string();
    let mut args = vec!["record", "--pid", &pid, "-d", "2", "-r", "200", "-f", "raw"];
    if mode == "nonblocking" {
        args.push("--nonblocking");
    }
    args.extend(["-o", out.to_str().unwrap()]);
    let run = pysampler(&args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{label}: {stderr}");
    // "pysampler: N samples in …": N ticks, each a sample of every active thread.
    let ticks: f64 = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("pysampler: ")?
                .split(" samples in ")
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{label}: no summary: {stderr}"));
    let text = std::fs::read_to_string(&out).unwrap();
    let (mut left, mut right, mut all) = (0, 0, 0);
    for (frames, n) in text.lines().map(parse_folded_line) {
        all += n;
        if frames.iter().any(|f| f.starts_with("left_runner (")) {
            left += n;
        }
        if frames.iter().any(|f| f.starts_with("right_runner (")) {
            right += n;
        }
    }
    assert!(ticks >= 50.0, "{label}: only {ticks} ticks: {stderr}");
    (all as f64 / ticks, left, right)
}

fn both_run_at_once(mode: &str) {
    let (per_tick, left, right) = samples_per_tick("3.13t", mode);
    // A thread waiting for a CPU is still running ('R'), so a loaded
    // machine does not make them take turns.
    assert!(
        per_tick >= 1.6,
        "3.13t {mode}: {per_tick:.2} samples a tick"
    );
    let share = left as f64 / (left + right) as f64;
    assert!(
        (0.3..=0.7).contains(&share),
        "3.13t {mode}: left {left}, right {right}"
    );
}

#[test]
fn free_threaded_runners_are_sampled_together_nonblocking() {
    both_run_at_once("nonblocking");
}

#[test]
fn free_threaded_runners_are_sampled_together_pausing() {
    both_run_at_once("pausing");
}

#[test]
fn free_threaded_gil_filter_is_refused_with_the_reason() {
    let python = pythons::find("3.13t");
    let target = Target::start(&python, "two_runners.py", &[]);
    let pid = target.pid().to_string();
    let out = pythons::scratch_dir().join("two-runners-gil.txt");
    let run = pysampler(&[
        "record",
        "--pid",
        &pid,
        "--gil",
        "-d",
        "1",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("free-threaded CPython 3.13") && stderr.contains("PYTHON_GIL=1"),
        "{stderr}"
    );
}

#[test]
fn free_threaded_with_the_gil_turned_on_keeps_the_gil_filter() {
    let python = pythons::find("3.13t");
    let mut child = KillOnDrop(
        Command::new(&python.exe)
            .arg(fixtures_dir().join("two_runners.py"))
            .env("PYTHON_GIL", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut ready = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "READY\n");
    let pid = child.0.id().to_string();
    let out = pythons::scratch_dir().join("two-runners-gil-on.txt");
    let run = pysampler(&[
        "record",
        "--pid",
        &pid,
        "--gil",
        "-d",
        "1",
        "-f",
        "raw",
        "-o",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("_runner ("), "{text}");
}

/// A child process that does not outlive a failed assertion.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// pystack (1.7.2, `make pystack-venv`), which reads free-threaded builds
/// too, finds the same threads with the same frames: file and function for
/// every frame, and the line too for the main thread, which sleeps.
#[test]
fn free_threaded_stacks_agree_with_pystack() {
    let python = pythons::find("3.13t");
    let target = Target::start(&python, "two_runners.py", &[]);
    let pid = target.pid();
    let pystack = pythons::cache_dir().join("pystack-venv/bin/pystack");
    assert!(
        pystack.exists(),
        "{} is missing: run `make pystack-venv` (make test does)",
        pystack.display()
    );
    let out = Command::new(&pystack)
        .args(["remote", &pid.to_string()])
        .output()
        .unwrap();
    let theirs = pystack_threads(&String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success() && theirs.len() == 3,
        "pystack: {out:?}"
    );
    let dump = crate::target::dump_json(pid, &[]);
    let ours: BTreeMap<i64, Vec<(String, String, u64)>> = dump["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let frames = t["frames"].as_array().unwrap().iter().rev();
            let frames = frames.map(|f| {
                // pystack names a function without its class ("wait").
                let function = f["function"].as_str().unwrap();
                let short = function.rsplit('.').next().unwrap_or(function);
                let file = f["filename"].as_str().unwrap().to_string();
                (file, short.to_string(), f["line"].as_u64().unwrap())
            });
            (t["thread_id"].as_i64().unwrap(), frames.collect())
        })
        .collect();
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>()
    );
    for (tid, frames) in &ours {
        let other = &theirs[tid];
        let without_lines = |f: &[(String, String, u64)]| -> Vec<(String, String)> {
            f.iter()
                .map(|(file, function, _)| (file.clone(), function.clone()))
                .collect()
        };
        assert_eq!(without_lines(frames), without_lines(other), "thread {tid}");
        if *tid == i64::from(pid) {
            assert_eq!(frames, other, "the sleeping main thread, lines too");
        }
    }
}

/// Thread id → (file, function, line), outermost first, from `pystack
/// remote`'s text.
fn pystack_threads(text: &str) -> BTreeMap<i64, Vec<(String, String, u64)>> {
    let mut threads = BTreeMap::new();
    let mut current: Option<i64> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Traceback for thread ") {
            let tid = rest.split_whitespace().next().and_then(|t| t.parse().ok());
            current = tid;
            if let Some(tid) = tid {
                threads.insert(tid, Vec::new());
            }
            continue;
        }
        let Some(rest) = line.trim_start().strip_prefix("(Python) File \"") else {
            continue;
        };
        let Some((file, rest)) = rest.split_once("\", line ") else {
            continue;
        };
        let Some((number, function)) = rest.split_once(", in ") else {
            continue;
        };
        if let (Some(tid), Ok(number)) = (current, number.parse()) {
            if let Some(frames) = threads.get_mut(&tid) {
                frames.push((file.to_string(), function.to_string(), number));
            }
        }
    }
    threads
}
