//! Free-threaded CPython (3.13t, built by scripts/build-python313t.sh): read
//! as every other build, one more table of offsets. Two threads running
//! Python at once are both sampled in the same ticks (a GIL build has one
//! wait for the other, though a loaded machine blurs that too much for a
//! control); `--gil` is refused with the reason, and kept when the program
//! turned its GIL back on.

use crate::formats::parse_folded_line;
use crate::pythons;
use crate::target::{fixtures_dir, pysampler, Target};
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
