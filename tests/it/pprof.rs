//! `-f pprof` read by Go's own pprof (`go tool pprof -raw` and `-top`, from
//! Debian's golang-go, which .ci/run installs) and by the npm package
//! pprof-format (`make pprof-node`): a live 3:1 program recorded to
//! `.pb.gz`, its hot function, share, labels and lines as recorded; and the
//! same recording rendered again by `report`.

use crate::formats::node;
use crate::pythons;
use crate::target::{fixtures_dir, python_command, PYSAMPLER};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One sample: values, location ids innermost first, labels key → value.
pub type RawSample = (Vec<u64>, Vec<u64>, BTreeMap<String, String>);

/// A profile as `go tool pprof -raw` prints it.
#[derive(Debug, Default)]
pub struct RawProfile {
    pub sample_types: Vec<String>,
    pub period_type: String,
    pub period: u64,
    pub samples: Vec<RawSample>,
    /// id → (function, file, line).
    pub locations: BTreeMap<u64, (String, String, u64)>,
}

impl RawProfile {
    /// Count (first value) of the samples with `function` anywhere in the stack.
    pub fn samples_in(&self, function: &str) -> u64 {
        self.samples
            .iter()
            .filter(|(_, locs, _)| locs.iter().any(|l| self.locations[l].0 == function))
            .map(|(v, _, _)| v[0])
            .sum()
    }

    pub fn total(&self) -> u64 {
        self.samples.iter().map(|(v, _, _)| v[0]).sum()
    }

    /// Lines seen of `function`.
    pub fn lines_of(&self, function: &str) -> Vec<u64> {
        let mut lines: Vec<u64> = self
            .locations
            .values()
            .filter(|(f, _, _)| f == function)
            .map(|(_, _, l)| *l)
            .collect();
        lines.sort_unstable();
        lines.dedup();
        lines
    }
}

/// Go's toolchain: `go` on PATH, else Debian's. A missing one fails the test.
pub fn go() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let go = Path::new(dir).join("go");
        if go.is_file() {
            return go;
        }
    }
    let debian = PathBuf::from("/usr/lib/go/bin/go");
    assert!(
        debian.is_file(),
        "Go is not installed: the pprof tests read profiles with `go tool pprof` (apt-get install golang-go; .ci/run does)"
    );
    debian
}

fn go_pprof(args: &[&str], file: &Path) -> String {
    let out = Command::new(go())
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("run go tool pprof");
    assert!(
        out.status.success(),
        "go tool pprof {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Parses `go tool pprof -raw FILE`.
pub fn read_with_go(file: &Path) -> RawProfile {
    let text = go_pprof(&["-raw"], file);
    let mut p = RawProfile::default();
    let mut section = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("PeriodType: ") {
            p.period_type = rest.to_string();
        } else if let Some(rest) = line.strip_prefix("Period: ") {
            p.period = rest.trim().parse().unwrap();
        } else if line == "Samples:" {
            section = "types";
        } else if line == "Locations" {
            section = "locations";
        } else if line.starts_with("Mappings") {
            section = "";
        } else if section == "types" {
            p.sample_types = line.split_whitespace().map(String::from).collect();
            section = "samples";
        } else if section == "samples" {
            if let Some((values, locs)) = line.split_once(':').filter(|(v, _)| {
                v.split_whitespace()
                    .all(|x| x.chars().all(|c| c.is_ascii_digit()))
            }) {
                p.samples.push((
                    values
                        .split_whitespace()
                        .map(|v| v.parse().unwrap())
                        .collect(),
                    locs.split_whitespace()
                        .map(|v| v.parse().unwrap())
                        .collect(),
                    BTreeMap::new(),
                ));
            } else {
                // Labels: "key:[value] key:[value]" (strings and numbers alike).
                let labels = &mut p.samples.last_mut().expect("labels after a sample").2;
                // Values may hold spaces ("Thread-1 (worker)"): each ends at "]".
                let mut rest = line.trim();
                while let Some((k, after)) = rest.split_once(":[") {
                    let (v, next) = after.split_once(']').expect("key:[value]");
                    labels.insert(k.trim().to_string(), v.to_string());
                    rest = next.trim_start();
                }
            }
        } else if section == "locations" {
            // "    12: 0x0 M=1 name file:line s=first()"
            let (id, rest) = line.trim().split_once(": ").unwrap();
            // Names have no spaces; files may ("<frozen importlib._bootstrap>").
            let rest = rest.split_once(" M=").unwrap().1;
            let (_, rest) = rest.split_once(' ').unwrap();
            let (name, rest) = rest.split_once(' ').unwrap();
            let (place, _) = rest.rsplit_once(" s=").unwrap();
            let (file, l) = place.rsplit_once(':').unwrap();
            p.locations.insert(
                id.parse().unwrap(),
                (name.to_string(), file.to_string(), l.parse().unwrap()),
            );
        }
    }
    assert!(!p.sample_types.is_empty(), "no samples section in:\n{text}");
    p
}

/// The lines of `fixtures/FILE` that are `text` (trimmed), 1-based.
pub fn lines_of_text(file: &str, text: &str) -> Vec<u64> {
    let source = std::fs::read_to_string(fixtures_dir().join(file)).unwrap();
    let lines: Vec<u64> = (1..)
        .zip(source.lines())
        .filter(|(_, l)| l.trim() == text)
        .map(|(n, _)| n)
        .collect();
    assert!(!lines.is_empty(), "{file} has no line {text:?}");
    lines
}

pub fn line_of(file: &str, text: &str) -> u64 {
    lines_of_text(file, text)[0]
}

/// Checks the 3:1 share of proportions.py in `p`, within the tolerance the
/// samples allow (see record.rs's proportions test for why).
pub fn check_share(p: &RawProfile, what: &str) {
    let three = p.samples_in("three_quarters");
    let one = p.samples_in("one_quarter");
    let n = (three + one) as f64;
    assert!(
        three + one >= 150,
        "{what}: only {n} samples in the two functions"
    );
    let share = three as f64 / n;
    let tolerance = (4.0 * (0.75 * 0.25 / n).sqrt()).max(0.08);
    assert!(
        (share - 0.75).abs() < tolerance,
        "{what}: three_quarters has {:.1}% of {n} samples (want 75% ± {:.1})",
        share * 100.0,
        tolerance * 100.0
    );
}

/// The npm pprof-format package, installed by `make pprof-node`.
fn pprof_node_modules() -> PathBuf {
    let cache = crate::pythons::cache_dir();
    let modules = cache.join("pprof-node/node_modules");
    assert!(
        modules.join("pprof-format/package.json").exists(),
        "pprof-format is missing from {}: run `make pprof-node` (make test does)",
        modules.display()
    );
    modules
}

/// The profile as pprof-format decodes it (tests/formats/read_pprof.cjs).
fn read_with_node(file: &Path) -> Value {
    let modules = pprof_node_modules();
    let text = node("read_pprof.cjs", &[file], Some(&modules))
        .unwrap_or_else(|e| panic!("pprof-format could not read {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap()
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(PYSAMPLER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pysampler");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pysampler {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

#[test]
fn pprof_from_a_live_program_is_read_by_go_pprof_and_pprof_format() {
    let py = pythons::find("3.12");
    let dir = pythons::scratch_dir().join("pprof");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("p.pb.gz");
    let recording = dir.join("p.pysampler");
    let command = python_command(&py, "proportions.py", &["4"]);
    let mut args = vec![
        "record",
        "-r",
        "250",
        "-o",
        profile.to_str().unwrap(),
        "--recording",
        recording.to_str().unwrap(),
        "--",
    ];
    args.extend(command.iter().map(String::as_str));
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);

    let p = read_with_go(&profile);
    assert_eq!(p.sample_types, ["samples/count", "cpu/nanoseconds[dflt]"]);
    assert_eq!(p.period_type, "cpu nanoseconds");
    assert_eq!(p.period, 4_000_000);
    for (values, _, _) in &p.samples {
        assert_eq!(values[1], values[0] * 4_000_000, "{values:?}");
    }
    check_share(&p, "record -o p.pb.gz");
    // The leaf is `work`, at its loop's lines; callers at their call lines.
    let work = p.samples_in("work");
    assert!(
        work * 10 >= p.total() * 8,
        "work in {work} of {}",
        p.total()
    );
    let loop_lines = [
        line_of("proportions.py", "for i in range(n):"),
        line_of("proportions.py", "total += i * i"),
    ];
    let seen = p.lines_of("work");
    assert!(
        !seen.is_empty() && seen.iter().all(|l| loop_lines.contains(l)),
        "work at lines {seen:?}, want within {loop_lines:?}"
    );
    // Both callers call `work` on a line `return work(10000)`, in order.
    let calls = lines_of_text("proportions.py", "return work(10000)");
    assert_eq!(p.lines_of("three_quarters"), [calls[0]]);
    assert_eq!(p.lines_of("one_quarter"), [calls[1]]);
    let file = &p
        .locations
        .values()
        .find(|(f, _, _)| f == "three_quarters")
        .unwrap()
        .1;
    assert!(file.ends_with("proportions.py"), "{file}");
    // Labels: the launched program's pid, its main thread.
    let pid = stderr
        .split("recording program ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the pid in pysampler's first line")
        .to_string();
    for (_, _, labels) in &p.samples {
        assert_eq!(labels.get("pid"), Some(&pid), "{labels:?}");
        assert_eq!(labels.get("thread_id"), Some(&pid), "{labels:?}");
        assert_eq!(
            labels.get("thread_name").map(String::as_str),
            Some("MainThread")
        );
    }
    // -top names the hot function and the type.
    let top = go_pprof(&["-top"], &profile);
    assert!(top.contains("Type: cpu"), "{top}");
    let first = top
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .nth(1)
        .unwrap_or_default();
    assert!(first.ends_with(" work"), "{top}");

    // The second reader agrees: totals, the 3:1 split, labels, lines.
    let n = read_with_node(&profile);
    assert_eq!(
        n["sampleTypes"],
        serde_json::json!(["samples/count", "cpu/nanoseconds"])
    );
    assert_eq!(n["period"], "4000000");
    assert!(n["timeNanos"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    let samples = n["samples"].as_array().unwrap();
    let count = |x: &Value| x["values"][0].as_str().unwrap().parse::<u64>().unwrap();
    let within = |name: &str| -> u64 {
        samples
            .iter()
            .filter(|x| {
                x["stack"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["name"] == name)
            })
            .map(count)
            .sum()
    };
    assert_eq!(samples.iter().map(count).sum::<u64>(), p.total());
    assert_eq!(within("three_quarters"), p.samples_in("three_quarters"));
    assert_eq!(within("one_quarter"), p.samples_in("one_quarter"));
    let mut work_lines: Vec<u64> = samples
        .iter()
        .flat_map(|x| x["stack"].as_array().unwrap().iter())
        .filter(|f| f["name"] == "work")
        .map(|f| f["line"].as_str().unwrap().parse().unwrap())
        .collect();
    work_lines.sort_unstable();
    work_lines.dedup();
    assert_eq!(work_lines, p.lines_of("work"));
    for x in samples {
        assert_eq!(
            x["labels"],
            serde_json::json!({"pid": pid, "thread_id": pid, "thread_name": "MainThread"})
        );
    }

    // Columns (3.11+) as recorded: `work`'s (line, column) pairs are those
    // of the same recording rendered to speedscope.
    let mut work_positions: Vec<(u64, u64)> = samples
        .iter()
        .flat_map(|x| x["stack"].as_array().unwrap().iter())
        .filter(|f| f["name"] == "work")
        .map(|f| {
            let n = |k: &str| f[k].as_str().unwrap().parse::<u64>().unwrap();
            (n("line"), n("column"))
        })
        .collect();
    work_positions.sort_unstable();
    work_positions.dedup();
    assert!(
        work_positions.iter().all(|(_, c)| *c >= 1),
        "{work_positions:?}"
    );
    let speedscope = dir.join("same.speedscope.json");
    run(&[
        "report",
        recording.to_str().unwrap(),
        "-o",
        speedscope.to_str().unwrap(),
    ]);
    let doc: Value = serde_json::from_slice(&std::fs::read(&speedscope).unwrap()).unwrap();
    let mut recorded: Vec<(u64, u64)> = doc["shared"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["name"] == "work")
        .map(|f| (f["line"].as_u64().unwrap(), f["col"].as_u64().unwrap()))
        .collect();
    recorded.sort_unstable();
    recorded.dedup();
    assert_eq!(work_positions, recorded);

    // report renders the recording to pprof (-f, any name): the same samples.
    let again = dir.join("again.prof");
    run(&[
        "report",
        recording.to_str().unwrap(),
        "-f",
        "pprof",
        "-o",
        again.to_str().unwrap(),
    ]);
    let r = read_with_go(&again);
    assert_eq!(r.total(), p.total());
    assert_eq!(
        r.samples_in("three_quarters"),
        p.samples_in("three_quarters")
    );
    check_share(&r, "report -f pprof");
}
