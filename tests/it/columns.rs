//! Columns on 3.11+: the 1-based start column of each frame's instruction,
//! as fixtures/columns.py computes it from its own co_positions() and source
//! (calls in the middle of lines), in `dump --json` (`column`), speedscope
//! (`col`, the file checked against speedscope's schema with ajv) and Chrome
//! trace (`args.column`, the file checked by the trace validator).

use crate::formats::{node, node_modules};
use crate::pythons;
use crate::target::{dump_when, pysampler, Target};
use serde_json::Value;
use std::time::Duration;

const SCRIPT: &str = "columns.py";

/// (function, line, column), innermost first.
type Position = (String, u64, u64);

fn main_thread(doc: &Value) -> Option<&Value> {
    doc["threads"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == "MainThread")
}

fn dumped(doc: &Value) -> Vec<Position> {
    let Some(frames) = main_thread(doc).and_then(|t| t["frames"].as_array()) else {
        return Vec::new();
    };
    frames
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap_or("?").to_string(),
                f["line"].as_u64().unwrap_or(0),
                f["column"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Records the fixture for a short while with `--idle` (it sleeps) into
/// `file` in `format`.
fn record(pid: i32, format: &str, file: &std::path::Path) {
    let pid = pid.to_string();
    let out = pysampler(&[
        "record",
        "--pid",
        &pid,
        "--idle",
        "-d",
        "1",
        "-r",
        "50",
        "-f",
        format,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "record -f {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn check(label: &str) {
    let py = pythons::find(label);
    let target = Target::spawn(&py, SCRIPT, &[]).unwrap_or_else(|e| panic!("{e}"));
    let line = target
        .wait_for_line("READY ", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{label}: {SCRIPT} {e}"));
    let expected: Vec<Position> =
        serde_json::from_str(&line["READY ".len()..]).expect("the fixture prints JSON");
    assert_eq!(expected.len(), 4, "{label}: {expected:?}");
    assert!(expected.iter().all(|(_, _, c)| *c > 1), "{expected:?}");
    let pid = target.pid();

    // dump --json, once the thread is on its sleeping line.
    let settled = |d: &Value| dumped(d).first().map(|f| f.1) == Some(expected[0].1);
    let dump = dump_when(pid, &[], settled);
    assert_eq!(dumped(&dump), expected, "{label}: dump --json");

    let dir = tempfile::tempdir().unwrap();
    // speedscope: valid by its schema; every sample of the main thread's
    // profile is the fixture's stack, columns included.
    let file = dir.path().join("columns.speedscope.json");
    record(pid, "speedscope", &file);
    let report = node("validate_speedscope.cjs", &[&file], Some(&node_modules()))
        .unwrap_or_else(|e| panic!("{label}: {e}"));
    assert!(report.contains("ok "), "{report}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let frames = doc["shared"]["frames"].as_array().unwrap();
    let profile = doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap_or("").ends_with("\"MainThread\""))
        .unwrap_or_else(|| panic!("{label}: no MainThread profile in {doc}"));
    let samples = profile["samples"].as_array().unwrap();
    assert!(!samples.is_empty(), "{label}: no samples");
    let mut innermost_first = expected.clone();
    innermost_first.reverse();
    for sample in samples {
        let stack: Vec<Position> = sample
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let f = &frames[i.as_u64().unwrap() as usize];
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["line"].as_u64().unwrap_or(0),
                    f["col"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(stack, innermost_first, "{label}: a speedscope sample");
    }

    // Chrome trace: valid; the main thread's events carry the columns.
    let file = dir.path().join("columns.trace.json");
    record(pid, "chrometrace", &file);
    node("check_chrometrace.cjs", &[&file], None).unwrap_or_else(|e| panic!("{label}: {e}"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let events: Vec<&Value> = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["tid"] == pid)
        .collect();
    for (name, line, column) in &expected {
        let found: Vec<(u64, u64)> = events
            .iter()
            .filter(|e| e["name"] == name.as_str())
            .map(|e| {
                let args = &e["args"];
                (
                    args["line"].as_u64().unwrap_or(0),
                    args["column"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        assert!(!found.is_empty(), "{label}: no trace event for {name}");
        assert!(
            found.iter().all(|f| *f == (*line, *column)),
            "{label}: trace events of {name}: {found:?}, want ({line}, {column})"
        );
    }
}

/// Before 3.11 the line tables have no columns: `column` is null in
/// `dump --json` and speedscope frames have no `col`.
pub fn check_absent(label: &str) {
    let py = pythons::find(label);
    let target = Target::start(&py, "dump_target.py", &[]);
    let pid = target.pid();
    let dump = crate::target::dump_json(pid, &[]);
    let frames: Vec<&Value> = dump["threads"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["frames"].as_array().unwrap())
        .collect();
    assert!(!frames.is_empty(), "{label}: no frames");
    for f in &frames {
        assert!(f["column"].is_null(), "{label}: {f}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nocolumns.json");
    record(pid, "speedscope", &file);
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let frames = doc["shared"]["frames"].as_array().unwrap();
    assert!(!frames.is_empty(), "{label}: no speedscope frames");
    assert!(
        frames.iter().all(|f| f.get("col").is_none()),
        "{label}: {frames:?}"
    );
}
