//! The core crate's committed snapshots (crates/pysampler-core/testdata/
//! snapshots) against this machine's interpreters: their generator still
//! runs, and a live `dump` of the same fixture has the same structure.
//! Structure, not bytes: pids, addresses and thread ids change from run to
//! run, and the standard library's lines with the patch release.

use crate::pythons;
use crate::target::{dump_when, Target};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = "core_snapshot_target.py";

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/pysampler-core/testdata/snapshots")
}

fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One thread as far as it must match: name, flags, and the frames in the
/// fixture's own files (function, short file, line, local names).
type Shape = (
    Option<String>,
    bool,
    bool,
    Vec<(String, String, u64, Vec<String>)>,
);

fn shape(dump: &Value) -> Vec<Shape> {
    let mut threads: Vec<Shape> = dump["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .map(|t| {
            let frames = t["frames"]
                .as_array()
                .expect("frames")
                .iter()
                .filter(|f| {
                    f["short_filename"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("core_snapshot_"))
                })
                .map(|f| {
                    let locals = f["locals"].as_array().expect("locals");
                    (
                        f["function"].as_str().unwrap_or_default().to_string(),
                        f["short_filename"].as_str().unwrap_or_default().to_string(),
                        f["line"].as_u64().unwrap_or_default(),
                        locals
                            .iter()
                            .map(|l| l["name"].as_str().unwrap_or_default().to_string())
                            .collect(),
                    )
                })
                .collect();
            (
                t["name"].as_str().map(str::to_string),
                t["active"] == true,
                t["owns_gil"] == true,
                frames,
            )
        })
        .collect();
    threads.sort();
    threads
}

/// The fixture at rest: five threads, the spinner the one running and
/// holding the GIL, if the build has one, the main thread back in final()
/// (the others may still be on their way to sleep right after READY, and
/// 2.7's spinner lets go of the GIL in every lock call).
fn at_rest(free_threaded: bool) -> impl Fn(&Value) -> bool {
    move |dump: &Value| {
        let threads = dump["threads"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        threads.len() == 5
            && threads.iter().all(|t| {
                let spinner = t["name"] == "spinner";
                t["active"] == spinner && t["owns_gil"] == (spinner && !free_threaded)
            })
            // The main thread prints READY from report() and then sleeps in
            // final(): a dump can land in between.
            && threads.iter().any(|t| {
                t["name"] == "MainThread" && t["frames"][0]["function"] == "final"
            })
    }
}

/// `dump --json --locals` of the fixture running live has the shape of the
/// committed one.
pub fn live_dump_agrees(label: &str) {
    let py = pythons::find(label);
    let target = Target::start(&py, SCRIPT, &[]);
    let live = dump_when(target.pid(), &["--locals"], at_rest(py.free_threaded()));
    let committed = load_json(&committed_dir().join(format!("{label}.dump.json")));
    assert_eq!(
        shape(&live),
        shape(&committed),
        "{label}: live dump vs committed"
    );
    let version = live["python_version"].as_str().unwrap_or_default();
    assert!(
        version.starts_with(&format!("{}.{}.", py.major, py.minor)),
        "{label}: {version}"
    );
}

#[test]
fn the_generator_still_runs_and_writes_what_is_committed() {
    let out = pythons::scratch_dir().join("core-fixtures");
    let _ = std::fs::remove_dir_all(&out);
    let run = Command::new(env!("CARGO"))
        .args([
            "run",
            "--release",
            "--quiet",
            "--example",
            "core-fixtures",
            "--",
            "--out",
        ])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "core-fixtures failed:\n{log}");
    let mut labels = 0;
    for entry in std::fs::read_dir(committed_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(label) = name.strip_suffix(".dump.json") else {
            continue;
        };
        labels += 1;
        let fresh = load_json(&out.join(&name));
        let committed = load_json(&committed_dir().join(&name));
        assert_eq!(
            shape(&fresh),
            shape(&committed),
            "{label}: regenerated vs committed"
        );
        for ext in ["pysnap", "dump.txt", "oracle.json"] {
            assert!(
                out.join(format!("{label}.{ext}")).exists(),
                "{label}.{ext}\n{log}"
            );
        }
    }
    // 2.7, 3.6-3.15, Debian's 3.11 and the free-threaded 3.13t.
    assert_eq!(labels, 13, "committed interpreters");
}
