//! Regenerates the core crate's committed snapshots (issue 15, hermetic core
//! tests). For each supported interpreter it runs
//! fixtures/core_snapshot_target.py, waits for its handshake, captures the
//! process, cuts the capture down to the bytes the walks read, and writes
//! into crates/pysampler-core/testdata/snapshots/:
//!
//!     LABEL.pysnap       the trimmed snapshot (metadata and those bytes)
//!     LABEL.dump.txt     what `pysampler dump --locals` prints for it
//!     LABEL.dump.json    what `pysampler dump --json --locals` prints for it
//!     LABEL.oracle.json  the stacks as the fixture itself printed them
//!
//!     cargo run --release --example core-fixtures [-- [--out DIR] LABEL…]
//!
//! `make core-fixtures` runs it, then the core tests. It needs root (ptrace,
//! and chroot for 3.14 and 3.15) and every interpreter (pyenv's 2.7 and
//! 3.6–3.13, /usr/bin/python3.11, `make sid-root`).

mod target;

use pysampler::process::capture::{self, CaptureOptions};
use pysampler::process::locate::locate_interpreter;
use pysampler::process::memory::LiveMemory;
use pysampler::process::ProcessInfo;
use pysampler_core::dump;
use pysampler_core::filenames::FileNames;
use pysampler_core::memory::recording::RecordingMemory;
use pysampler_core::snapshot::Snapshot;
use pysampler_core::walk::{StackReader, ThreadStack};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use target::{Python, Running};

/// Every supported interpreter, by the label its files are named after
/// (minor versions only: the next machine may have another patch release).
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
/// Kept ranges are widened to blocks of this many bytes: a walker changed
/// to read a neighbouring field still finds it, for a few KB per file.
const GRANULE: u64 = 64;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = repo.join("crates/pysampler-core/testdata/snapshots");
    // `--out DIR` writes elsewhere (the pysampler tests check that the
    // generator still runs without touching the committed files).
    if let Some(at) = args.iter().position(|a| a == "--out") {
        let Some(dir) = args.get(at + 1).cloned() else {
            eprintln!("core-fixtures: --out needs a folder");
            std::process::exit(2);
        };
        out = PathBuf::from(dir);
        args.drain(at..at + 2);
    }
    if let Some(bad) = args.iter().find(|a| !LABELS.contains(&a.as_str())) {
        eprintln!(
            "core-fixtures: unknown label {bad}; labels: {}",
            LABELS.join(" ")
        );
        std::process::exit(2);
    }
    let mut failed = Vec::new();
    for label in LABELS
        .iter()
        .filter(|l| args.is_empty() || args.contains(&l.to_string()))
    {
        match generate(label, &repo.join("fixtures"), &out) {
            Ok(summary) => eprintln!("{label}: {summary}"),
            Err(e) => {
                eprintln!("{label}: {e}");
                failed.push(*label);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!("core-fixtures: failed for {}", failed.join(", "));
        std::process::exit(1);
    }
}

/// Captures that may miss the state the fixture aims at before one is taken as failed.
const ATTEMPTS: usize = 5;

/// Captures, trims and writes one interpreter's files; a line on what was written.
fn generate(label: &str, fixtures: &Path, out: &Path) -> Result<String, String> {
    let python = Python::find(label)?;
    let mut attempt = 1;
    loop {
        match generate_once(&python, label, fixtures, out) {
            Err(e) if e.starts_with(NOT_THERE) && attempt < ATTEMPTS => {
                eprintln!("{label}: {e}; again");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// How an error says the capture came at a bad moment, worth another try.
const NOT_THERE: &str = "not in the fixture's state";

fn generate_once(
    python: &Python,
    label: &str,
    fixtures: &Path,
    out: &Path,
) -> Result<String, String> {
    let running = Running::start(python, fixtures)?;
    let pid = running.pid();
    let process = ProcessInfo::open(pid).map_err(|e| e.to_string())?;
    let interp = locate_interpreter(&process, &LiveMemory::new(pid).with_proc_mem_fallback())
        .map_err(|e| format!("cannot locate the interpreter: {e}"))?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let full_path = scratch.path().join("full.pysnap");
    capture::capture_with(pid, &interp, &full_path, &CaptureOptions::default())
        .map_err(|e| format!("capture failed: {e}"))?;
    let oracle_line = running.oracle.clone();
    drop(running);

    let full = Snapshot::load(&full_path).map_err(|e| e.to_string())?;
    let (expected, reads) = walks(&full)?;
    let trimmed = full.trimmed(&reads, GRANULE).map_err(|e| e.to_string())?;
    let (got, _) = walks(&trimmed)?;
    if got != expected {
        return Err("the trimmed snapshot does not read as the full one".into());
    }
    let oracle: serde_json::Value = serde_json::from_str(&oracle_line)
        .map_err(|e| format!("the fixture's ORACLE line is not JSON: {e}"))?;
    check_threads(&oracle, &expected.with_locals)?;
    check_spinner(
        &expected.with_locals,
        &full.thread_activity(),
        interp.version.free_threaded,
    )?;

    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let path = |ext: &str| out.join(format!("{label}.{ext}"));
    trimmed.save(&path("pysnap")).map_err(|e| e.to_string())?;
    let names = FileNames::new(trimmed.cwd(), false);
    let (header, activity) = (trimmed.dump_header(), trimmed.thread_activity());
    let stacks = &expected.with_locals;
    let text = dump::text(&header, &trimmed.interp, stacks, &activity, &names, true);
    let json = dump::json(&header, &trimmed.interp, stacks, &activity, &names);
    let oracle = serde_json::to_string_pretty(&oracle).map_err(|e| e.to_string())? + "\n";
    for (ext, content) in [
        ("dump.txt", text),
        ("dump.json", json),
        ("oracle.json", oracle),
    ] {
        std::fs::write(path(ext), content).map_err(|e| format!("{}: {e}", path(ext).display()))?;
    }
    let size = std::fs::metadata(path("pysnap"))
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(format!(
        "Python {}: {} threads; {} of {} KiB kept in {} regions, file {} KiB",
        trimmed.interp.version,
        stacks.len(),
        trimmed.memory().stored_bytes() / 1024,
        full.memory().stored_bytes() / 1024,
        trimmed.memory().region_count(),
        size / 1024
    ))
}

/// What the core tests read from a snapshot, each on a fresh reader (empty
/// caches, so every byte is read): the dump with and without locals, and
/// each thread's (function, line) list the way a sampler reads them (the
/// thread list without top frames, fresh frames, fingerprints, resolving
/// checked against them). crates/pysampler-core/tests/snapshots does the same.
#[derive(PartialEq)]
struct Walks {
    with_locals: Vec<ThreadStack>,
    without_locals: Vec<ThreadStack>,
    sampled: Vec<Vec<(String, u32)>>,
}

/// The walks over `snap`, and every range they read.
fn walks(snap: &Snapshot) -> Result<(Walks, Vec<(u64, u64)>), String> {
    let mut reads = Vec::new();
    let mut reader = || {
        let memory = RecordingMemory::new(snap.memory());
        reads.push(memory.log());
        StackReader::new(snap.interp.clone(), Box::new(memory))
    };
    let error = |e: pysampler_core::Error| format!("walking the snapshot: {e}");
    let with_locals = reader().read(&snap.tids, true).map_err(error)?;
    let without_locals = reader().read(&snap.tids, false).map_err(error)?;
    let sampled = sampled(&mut reader(), &snap.tids).map_err(error)?;
    let ranges = reads.iter().flat_map(|log| log.ranges()).collect();
    Ok((
        Walks {
            with_locals,
            without_locals,
            sampled,
        },
        ranges,
    ))
}

fn sampled(
    reader: &mut StackReader,
    tids: &[i32],
) -> pysampler_core::Result<Vec<Vec<(String, u32)>>> {
    let entries = reader.thread_list(|| tids.to_vec(), false)?;
    let mut threads = Vec::new();
    for entry in &entries {
        let mut raw = Vec::new();
        reader.fresh_raw_frames(entry, &mut raw)?;
        let codes: Vec<u64> = raw.iter().map(|f| f.code).collect();
        let mut fingerprints = Vec::new();
        reader.fingerprints(&codes, &mut fingerprints);
        let mut frames = Vec::new();
        for (frame, fingerprint) in raw.iter().zip(&fingerprints) {
            if let Some((code, at)) = reader.resolve_checked(frame, Some(*fingerprint))? {
                frames.push((code.name.clone(), at.line));
            }
        }
        threads.push(frames);
    }
    Ok(threads)
}

/// The oracle and the walk name the same threads (the core tests compare
/// everything else); caught here, a regeneration with a broken walker fails
/// before it writes anything.
fn check_threads(oracle: &serde_json::Value, stacks: &[ThreadStack]) -> Result<(), String> {
    let told: BTreeSet<u64> = oracle["threads"]
        .as_array()
        .ok_or("the oracle has no thread list")?
        .iter()
        .filter_map(|t| t["ident"].as_u64())
        .collect();
    let read: BTreeSet<u64> = stacks.iter().map(|s| s.ident).collect();
    match told == read {
        true => Ok(()),
        false => Err(format!(
            "the fixture reports threads {told:x?}, the walk found {read:x?}"
        )),
    }
}

/// The spinner is the one thread running and holding the GIL (a
/// free-threaded build has no GIL: none holds it). On 2.7 it lets go of the
/// GIL in every lock call, so a capture can land in between; so can the
/// scheduler's word on a busy machine. Such a capture is taken again.
fn check_spinner(
    stacks: &[ThreadStack],
    activity: &dump::ThreadActivity,
    free_threaded: bool,
) -> Result<(), String> {
    for s in stacks {
        let spinner = s.name.as_deref() == Some("spinner");
        let active = activity.is_active(s.native_id);
        // The spinner both running and holding the GIL; every other thread neither.
        let expected = (spinner, spinner && !free_threaded);
        if (active, s.owns_gil) != expected {
            return Err(format!(
                "{NOT_THERE}: thread {:?} active {active}, GIL {}",
                s.name, s.owns_gil
            ));
        }
    }
    Ok(())
}
