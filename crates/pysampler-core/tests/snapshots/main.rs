//! The core crate on committed snapshots of every supported interpreter
//! (testdata/snapshots, written by `make core-fixtures` from
//! fixtures/core_snapshot_target.py): files only, no process and no Python,
//! so these run on a machine that has neither.
//!
//! For each interpreter: the walk renders exactly the committed dump text
//! and JSON; it agrees with what Python itself reported of its stacks (the
//! oracle); and reading without locals, or the way a sampler reads, gives
//! the same frames.

mod oracle;

use pysampler_core::dump;
use pysampler_core::filenames::FileNames;
use pysampler_core::snapshot::Snapshot;
use pysampler_core::walk::{StackReader, ThreadStack};
use std::path::PathBuf;

/// Every supported interpreter, as examples/core-fixtures names its files.
const LABELS: &[&str] = &[
    "2.7",
    "3.6",
    "3.7",
    "3.8",
    "3.9",
    "3.10",
    "3.11",
    "3.12",
    "3.13",
    "debian-3.11",
    "3.14",
    "3.15",
    "3.13t",
];
const FILES: &[&str] = &["pysnap", "dump.txt", "dump.json", "oracle.json"];
/// What a trimmed snapshot may weigh: a few hundred KB at most.
const MAX_SNAPSHOT_BYTES: u64 = 400 << 10;
const REGENERATE: &str = "regenerate with `make core-fixtures` if the change is intended";

fn path(label: &str, ext: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/snapshots")
        .join(format!("{label}.{ext}"))
}

fn read(label: &str, ext: &str) -> String {
    let p = path(label, ext);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn load(label: &str) -> Snapshot {
    Snapshot::load(&path(label, "pysnap")).unwrap_or_else(|e| panic!("{label}: {e}"))
}

/// A reader with empty caches: the walk reads everything again.
fn fresh(snap: &Snapshot) -> StackReader {
    snap.stack_reader()
}

fn stacks(snap: &Snapshot, with_locals: bool) -> Vec<ThreadStack> {
    fresh(snap)
        .read(&snap.tids, with_locals)
        .unwrap_or_else(|e| panic!("walking {}: {e}", snap.interp.version))
}

/// Equal texts, or a failure naming the first line that differs.
fn assert_same_text(label: &str, what: &str, got: &str, expected: &str) {
    if got == expected {
        return;
    }
    let at = got
        .lines()
        .zip(expected.lines())
        .position(|(g, e)| g != e)
        .unwrap_or_else(|| got.lines().count().min(expected.lines().count()));
    panic!(
        "{label}: the {what} differs from the committed one at line {}:\n  got:      {:?}\n  expected: {:?}\n{REGENERATE}",
        at + 1,
        got.lines().nth(at),
        expected.lines().nth(at)
    );
}

fn renders_as_committed(label: &str) {
    let snap = load(label);
    let stacks = stacks(&snap, true);
    let names = FileNames::new(snap.cwd(), false);
    let (header, activity) = (snap.dump_header(), snap.thread_activity());
    let text = dump::text(&header, &snap.interp, &stacks, &activity, &names, true);
    assert_same_text(label, "dump text", &text, &read(label, "dump.txt"));
    let json = dump::json(&header, &snap.interp, &stacks, &activity, &names);
    assert_same_text(label, "dump JSON", &json, &read(label, "dump.json"));
    // The facts beside the stacks come from the snapshot, not from defaults.
    let facts = snap.process.as_ref().expect("the process's facts");
    assert!(
        facts.thread_activity.is_some(),
        "{label}: activity recorded"
    );
    let flags = if label.ends_with('t') {
        "active"
    } else {
        "active+gil"
    };
    assert!(
        text.contains(&format!("({flags}): \"spinner\"")),
        "{label}: {text}"
    );
}

fn agrees_with_python(label: &str) {
    let snap = load(label);
    let oracle: serde_json::Value =
        serde_json::from_str(&read(label, "oracle.json")).expect("the oracle is JSON");
    let compared = oracle::check(label, &oracle, &stacks(&snap, true));
    assert!(compared >= 20, "{label}: only {compared} locals compared");
}

fn other_reads_give_the_same_frames(label: &str) {
    let snap = load(label);
    let full = stacks(&snap, true);
    let mut bare = full.clone();
    bare.iter_mut()
        .flat_map(|s| s.frames.iter_mut())
        .for_each(|f| f.locals.clear());
    assert_eq!(stacks(&snap, false), bare, "{label}: read without locals");
    let walked: Vec<Vec<(String, u32, u32)>> = full
        .iter()
        .map(|s| {
            s.frames
                .iter()
                .map(|f| (f.code.name.clone(), f.line, f.column))
                .collect()
        })
        .collect();
    assert_eq!(sampled(&snap), walked, "{label}: read as a sampler reads");
}

/// Each thread's (function, line, column) list as the sampler reads it: the thread
/// list without top frames, each thread's frames read again, the code
/// objects fingerprinted and resolved against those fingerprints.
/// examples/core-fixtures records the same reads when it trims.
fn sampled(snap: &Snapshot) -> Vec<Vec<(String, u32, u32)>> {
    let mut reader = fresh(snap);
    let entries = reader.thread_list(|| snap.tids.clone(), false).unwrap();
    let mut threads = Vec::new();
    for entry in &entries {
        let mut raw = Vec::new();
        reader.fresh_raw_frames(entry, &mut raw).unwrap();
        let codes: Vec<u64> = raw.iter().map(|f| f.code).collect();
        let mut fingerprints = Vec::new();
        reader.fingerprints(&codes, &mut fingerprints);
        assert!(
            fingerprints.iter().all(|f| *f != 0),
            "every code object read"
        );
        let mut frames = Vec::new();
        for (frame, fingerprint) in raw.iter().zip(&fingerprints) {
            if let Some((code, at)) = reader.resolve_checked(frame, Some(*fingerprint)).unwrap() {
                frames.push((code.name.clone(), at.line, at.column));
            }
        }
        threads.push(frames);
    }
    threads
}

#[test]
fn every_interpreter_has_its_files_and_nothing_else_is_there() {
    let mut expected: Vec<String> = LABELS
        .iter()
        .flat_map(|l| FILES.iter().map(move |ext| format!("{l}.{ext}")))
        .collect();
    expected.extend([".gitattributes".into(), "README.md".into()]);
    expected.sort();
    let dir = path("x", "y").parent().unwrap().to_path_buf();
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, expected, "files in {}", dir.display());
    for label in LABELS {
        let snap = load(label);
        let minor = label.trim_start_matches("debian-");
        let version = snap.interp.version.minor_key();
        assert_eq!(version, minor, "{label}: the snapshot's interpreter");
        let size = std::fs::metadata(path(label, "pysnap")).unwrap().len();
        assert!(size <= MAX_SNAPSHOT_BYTES, "{label}: {size} bytes");
        // Trimmed: nothing of the process's memory map is kept.
        assert!(snap.mappings.is_empty(), "{label}: mappings kept");
    }
}

macro_rules! per_interpreter {
    ($($module:ident => $label:expr),* $(,)?) => {
        $(
            mod $module {
                #[test]
                fn renders_as_committed() {
                    super::renders_as_committed($label);
                }

                #[test]
                fn agrees_with_python() {
                    super::agrees_with_python($label);
                }

                #[test]
                fn other_reads_give_the_same_frames() {
                    super::other_reads_give_the_same_frames($label);
                }
            }
        )*
    };
}

per_interpreter! {
    python_2_7 => "2.7",
    python_3_6 => "3.6",
    python_3_7 => "3.7",
    python_3_8 => "3.8",
    python_3_9 => "3.9",
    python_3_10 => "3.10",
    python_3_11 => "3.11",
    python_3_12 => "3.12",
    python_3_13 => "3.13",
    debian_python_3_11 => "debian-3.11",
    python_3_14 => "3.14",
    python_3_15 => "3.15",
    python_3_13t => "3.13t",
}
