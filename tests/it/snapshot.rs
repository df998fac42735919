//! Snapshots: the walker gives the same stacks on a saved copy of a process's
//! memory as on the live process, and hostile snapshot files are refused
//! cleanly.

use crate::pythons::{self, Python};
use crate::target::Target;
use pysampler::process::capture::{self, CaptureOptions};
use pysampler::process::locate::locate_interpreter;
use pysampler::process::memory::{LiveMemory, MemorySource};
use pysampler::process::pause;
use pysampler::process::ProcessInfo;
use pysampler::Error;
use pysampler_core::interpreter::{Families, GilSource, Interpreter, KnownObjects, Version};
use pysampler_core::snapshot::{Metadata, Snapshot, SnapshotMemory};
use pysampler_core::walk::{StackReader, ThreadStack};
use std::path::Path;
use std::time::Duration;

/// How long the fixture may take to be asleep at its known point once it
/// said READY: milliseconds normally; only one that never gets there fails.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the fixture on the interpreter labelled `label` (a missing one
/// fails the test), waits for its READY line, then until both its threads
/// sleep: READY is printed just before the main thread enters `time.sleep`,
/// and only then is the process at its known point and stays there (a
/// thread waiting for the GIL would be in `futex`, not in a sleep).
fn start(label: &str) -> (Python, Target) {
    let py = pythons::find(label);
    let target = Target::start(&py, "snapshot_target.py", &[]);
    target
        .wait_until_asleep(2, SETTLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("Python {label}: {e}"));
    (py, target)
}

fn live_reader(pid: i32, interp: &Interpreter) -> StackReader {
    StackReader::new(
        interp.clone(),
        Box::new(LiveMemory::new(pid).with_proc_mem_fallback()),
    )
}

fn read_snapshot(path: &Path) -> (Snapshot, Vec<ThreadStack>) {
    let snap = Snapshot::load(path).unwrap();
    let stacks = snap.stack_reader().read(&snap.tids, true).unwrap();
    (snap, stacks)
}

/// Function names without the class (3.11+ reports qualified names such as
/// `Holder.deepest`, earlier versions `deepest`).
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn names(stack: &ThreadStack) -> Vec<String> {
    stack
        .frames
        .iter()
        .map(|f| short(&f.code.name).to_string())
        .collect()
}

fn local<'a>(stack: &'a ThreadStack, function: &str, name: &str) -> &'a str {
    let frame = stack
        .frames
        .iter()
        .find(|f| short(&f.code.name) == function)
        .unwrap_or_else(|| panic!("no frame {function} in {:?}", names(stack)));
    &frame
        .locals
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no local {name} in {function}: {:?}", frame.locals))
        .value
}

fn check_expected(py: &Python, stacks: &[ThreadStack]) {
    let version = &py.label;
    assert_eq!(stacks.len(), 2, "Python {version}: {stacks:#?}");
    let main = stacks
        .iter()
        .find(|s| names(s).iter().any(|n| n == "deepest"))
        .unwrap_or_else(|| panic!("Python {version}: no thread in `deepest`: {stacks:#?}"));
    assert_eq!(
        names(main),
        ["deepest", "outer", "run", "<module>"],
        "Python {version}"
    );
    if py.qualnames() {
        assert_eq!(main.frames[0].code.name, "Holder.deepest");
    }
    assert_eq!(main.name.as_deref(), Some("MainThread"), "Python {version}");
    let is_py2 = py.major == 2;
    assert_eq!(local(main, "deepest", "count"), "42");
    assert_eq!(local(main, "deepest", "ratio"), "2.5");
    assert_eq!(
        local(main, "deepest", "text"),
        if is_py2 {
            "u'h\u{e9}llo snapshot'"
        } else {
            "'h\u{e9}llo snapshot'"
        }
    );
    assert!(
        local(main, "deepest", "raw").contains("raw"),
        "Python {version}"
    );
    assert_eq!(local(main, "deepest", "nothing"), "None");
    assert_eq!(local(main, "deepest", "flag"), "True");
    assert!(
        local(main, "deepest", "items").starts_with("<list at 0x"),
        "Python {version}: {}",
        local(main, "deepest", "items")
    );
    assert_eq!(local(main, "outer", "depth"), "1");
    let deepest = &main.frames[0];
    let first_arg = &deepest.locals[0];
    assert!(
        first_arg.is_arg && first_arg.name == "self",
        "{:?}",
        deepest.locals
    );
    assert!(
        first_arg.value.starts_with("<Holder at 0x"),
        "{:?}",
        first_arg
    );

    let sleeper = stacks
        .iter()
        .find(|s| s.name.as_deref() == Some("sleeper-thread"))
        .unwrap_or_else(|| panic!("Python {version}: no thread named sleeper-thread: {stacks:#?}"));
    assert_eq!(
        names(sleeper).first().map(String::as_str),
        Some("sleeper_body")
    );
    assert_eq!(local(sleeper, "sleeper_body", "note"), "'sleeper'");
    for s in stacks {
        assert!(
            s.native_id.is_some(),
            "Python {version}: no native id: {s:#?}"
        );
        assert_eq!(s.unreadable_frames, 0);
        assert!(!s.truncated);
    }
}

fn snapshot_matches_live(label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (py, target) = start(label);
    let version = label;
    let pid = target.pid();
    let process = ProcessInfo::open(pid).unwrap();
    let interp = locate_interpreter(&process, &LiveMemory::new(pid).with_proc_mem_fallback())
        .unwrap_or_else(|e| panic!("Python {version}: {e}"));
    // The version found in memory is the one the interpreter reports.
    assert_eq!(
        interp.version.to_string(),
        py.version_text(),
        "Python {version}"
    );
    let tids = pause::thread_ids(pid).unwrap();

    // Read live and capture within the same stop: the same state for sure.
    let same_stop = dir.path().join("same-stop.pysnap");
    let paused = pause::pause(pid, &tids).unwrap();
    let live = live_reader(pid, &interp).read(&tids, true).unwrap();
    capture::capture_paused(pid, &interp, &same_stop, &CaptureOptions::default()).unwrap();
    drop(paused);

    // `capture` pauses on its own; the target has not moved since.
    let own_stop = dir.path().join("own-stop.pysnap");
    pysampler::process::capture::capture(pid, &interp, &own_stop).unwrap();
    let paused = pause::pause(pid, &tids).unwrap();
    let live_again = live_reader(pid, &interp).read(&tids, true).unwrap();
    drop(paused);
    assert_eq!(live, live_again, "Python {version}: the target moved");
    drop(target); // killed and reaped

    check_expected(&py, &live);
    for path in [&same_stop, &own_stop] {
        let (snap, stacks) = read_snapshot(path);
        assert_eq!(stacks, live, "Python {version}: {}", path.display());
        assert_eq!(snap.pid, pid);
        assert_eq!(snap.tids, tids);
        assert!(
            snap.command_line.contains("snapshot_target.py"),
            "{}",
            snap.command_line
        );
        assert_eq!(snap.interp.version, interp.version);
        assert!(snap.captured_at_unix_ms > 0);
        assert!(!snap.mappings.is_empty());
        let facts = snap
            .process
            .as_ref()
            .expect("the process's facts are recorded");
        assert!(facts.exe.contains("python"), "{}", facts.exe);
        assert_eq!(facts.cwd, process.cwd);
        // `capture` reads which threads run before it pauses them; a caller
        // that paused them already cannot know.
        assert_eq!(facts.thread_activity.is_some(), path == &own_stop);
        // The process is gone, so nothing could come from it by accident.
        assert!(!pysampler::process::is_alive(pid));
        let size = std::fs::metadata(path).unwrap().len();
        let memory = snap.memory();
        eprintln!(
            "Python {version}: {} = {:.1} MiB, {} regions, {:.1} MiB of memory",
            path.file_name().unwrap().to_string_lossy(),
            size as f64 / (1 << 20) as f64,
            memory.region_count(),
            memory.total_bytes() as f64 / (1 << 20) as f64,
        );
    }

    // A snapshot loaded once serves any number of readers, and reads repeat.
    let (snap, _) = read_snapshot(&same_stop);
    // Its memory rebuilt region by region with `from_regions` (how a test
    // makes memory by hand) walks to the same stacks.
    let memory = snap.memory();
    let regions: Vec<(u64, Vec<u8>)> = memory
        .regions()
        .map(|(start, end)| {
            (
                start,
                memory.read_vec(start, (end - start) as usize).unwrap(),
            )
        })
        .collect();
    let rebuilt = SnapshotMemory::from_regions(pid, regions).unwrap();
    let stacks = StackReader::new(snap.interp.clone(), Box::new(rebuilt))
        .read(&snap.tids, true)
        .unwrap();
    assert_eq!(
        stacks, live,
        "Python {version}: memory rebuilt with from_regions"
    );
    let mut reader = snap.stack_reader();
    assert_eq!(reader.read(&snap.tids, true).unwrap(), live);
    assert_eq!(reader.read(&snap.tids, true).unwrap(), live);
    let without_locals = reader.read(&snap.tids, false).unwrap();
    assert!(without_locals
        .iter()
        .all(|s| s.frames.iter().all(|f| f.locals.is_empty())));

    // Truncating the real file anywhere gives an error, never a panic.
    let bytes = std::fs::read(&same_stop).unwrap();
    for cut in [0, 7, 8, 23, 24, 100, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.path().join("cut.pysnap");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert_invalid(&path, "");
    }
}

#[test]
fn snapshot_matches_live_2_7() {
    snapshot_matches_live("2.7");
}

#[test]
fn snapshot_matches_live_3_9() {
    snapshot_matches_live("3.9");
}

#[test]
fn snapshot_matches_live_3_11() {
    snapshot_matches_live("3.11");
}

#[test]
fn snapshot_matches_live_3_12() {
    snapshot_matches_live("3.12");
}

#[test]
fn snapshot_matches_live_3_13() {
    snapshot_matches_live("3.13");
}

// ---- hostile files --------------------------------------------------------

fn interpreter() -> Interpreter {
    let version = Version::new(3, 12, Some(1));
    // The real 3.12 table: a walk needs the fields its family reads.
    let layout = pysampler_core::interpreter::tables::layout_for(&version).unwrap();
    Interpreter {
        families: Families::of(&version).unwrap(),
        version,
        layout,
        interp_head_ptr: 0x1000,
        gil: GilSource::Unknown,
        types: KnownObjects::default(),
        runtime_binary: "/usr/bin/python3.12".into(),
    }
}

fn metadata_json() -> Vec<u8> {
    serde_json::to_vec(&Metadata {
        interp: interpreter(),
        pid: 4242,
        tids: vec![4242, 4243],
        command_line: "python app.py".into(),
        captured_at_unix_ms: 1_700_000_000_000,
        pysampler_version: "test".into(),
        mappings: vec![],
        process: None,
    })
    .unwrap()
}

/// A region for `build`: start, length, stored length, stored bytes.
type Raw<'a> = (u64, u64, u64, &'a [u8]);

/// A region whose bytes are stored.
fn data(start: u64, bytes: &[u8]) -> Raw<'_> {
    (start, bytes.len() as u64, bytes.len() as u64, bytes)
}

/// A region of zeros, not stored.
fn zeros(start: u64, len: u64) -> Raw<'static> {
    (start, len, 0, &[])
}

/// Builds a file by hand, following the documented format (independently of
/// the writer): header, metadata, count, regions.
fn build(magic: &[u8], version: u32, meta: &[u8], count: u64, regions: &[Raw]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(magic);
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    b.extend_from_slice(meta);
    b.extend_from_slice(&count.to_le_bytes());
    for (start, len, stored, bytes) in regions {
        b.extend_from_slice(&start.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&stored.to_le_bytes());
        b.extend_from_slice(bytes);
    }
    b
}

/// A file with these regions and valid everything else.
fn with_regions(regions: &[Raw]) -> Vec<u8> {
    build(MAGIC, 1, &metadata_json(), regions.len() as u64, regions)
}

const MAGIC: &[u8; 8] = b"\x89PYSNAP\n";

fn good_file() -> Vec<u8> {
    with_regions(&[
        data(0x1000, &[1; 8]),
        data(0x1008, &[2; 8]),
        zeros(0x1010, 0x1000),
        data(0x4000, &[3; 4]),
    ])
}

fn write_temp(bytes: &[u8]) -> tempfile::TempPath {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file.into_temp_path()
}

/// Loading fails with an `InvalidData` file error whose message has `needle`.
fn assert_invalid(path: &Path, needle: &str) {
    match Snapshot::load(path) {
        Err(Error::File { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::InvalidData, "{source}");
            let text = source.to_string();
            assert!(
                text.contains(needle),
                "{text:?} does not mention {needle:?}"
            );
        }
        Err(other) => panic!("unexpected error kind: {other}"),
        Ok(_) => panic!("a hostile file loaded"),
    }
}

fn assert_bytes_invalid(bytes: &[u8], needle: &str) {
    assert_invalid(&write_temp(bytes), needle);
}

fn assert_efault(mem: &dyn MemorySource, addr: u64, len: usize) {
    let mut buf = vec![0u8; len];
    match mem.read(addr, &mut buf) {
        Err(Error::Memory { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::EFAULT)),
        other => panic!("0x{addr:x}+{len}: {other:?}"),
    }
}

#[test]
fn hand_built_file_loads_and_reads() {
    let path = write_temp(&good_file());
    let snap = Snapshot::load(&path).unwrap();
    assert_eq!(snap.pid, 4242);
    assert_eq!(snap.tids, [4242, 4243]);
    assert_eq!(snap.command_line, "python app.py");
    let mem = snap.memory();
    assert_eq!(
        mem.regions().collect::<Vec<_>>(),
        [
            (0x1000, 0x1008),
            (0x1008, 0x1010),
            (0x1010, 0x2010),
            (0x4000, 0x4004)
        ]
    );
    assert_eq!((mem.total_bytes(), mem.stored_bytes()), (0x1014, 20));
    // Across adjacent regions, stored and zero.
    let mut buf = [0xeeu8; 8];
    mem.read(0x1004, &mut buf).unwrap();
    assert_eq!(buf, [1, 1, 1, 1, 2, 2, 2, 2]);
    mem.read(0x100c, &mut buf).unwrap();
    assert_eq!(buf, [2, 2, 2, 2, 0, 0, 0, 0]);
    let mut buf = [0xeeu8; 8];
    mem.read(0x1800, &mut buf).unwrap();
    assert_eq!(buf, [0; 8]);
    let all = mem.read_vec(0x1000, 0x1010).unwrap();
    assert_eq!(
        &all[..16],
        &[1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]
    );
    assert!(all[16..].iter().all(|b| *b == 0));
    assert_eq!(mem.read_u32(0x4000).unwrap(), 0x03030303);
    assert_eq!(snap.read_u32(0x4000).unwrap(), 0x03030303);
    // Outside any region, or running off the end of one: EFAULT, no panic.
    for (addr, len) in [
        (0, 8),
        (0xfff, 2),
        (0x200c, 8),
        (0x2010, 1),
        (0x4002, 4),
        (0x1000, 0x3005),
        (u64::MAX, 8),
    ] {
        assert_efault(&mem, addr, len);
    }
    // Saving gives the same bytes back.
    let again = write_temp(&[]);
    snap.save(&again).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), good_file());
    assert_eq!(snap.to_bytes().unwrap(), good_file());
}

#[test]
fn truncated_files_are_refused() {
    let good = good_file();
    for cut in 0..good.len() {
        let err = Snapshot::from_bytes(good[..cut].to_vec());
        assert!(err.is_err(), "a file cut at {cut} of {} loaded", good.len());
    }
    assert_bytes_invalid(&good[..good.len() - 1], "truncated");
    assert_bytes_invalid(&[], "truncated");
}

#[test]
fn wrong_magic_or_version_is_refused() {
    let meta = metadata_json();
    assert_bytes_invalid(&build(b"PYSNAP\0\0", 1, &meta, 0, &[]), "magic");
    assert_bytes_invalid(&build(b"\x89PYSNAP\r", 1, &meta, 0, &[]), "magic");
    assert_bytes_invalid(&build(MAGIC, 2, &meta, 0, &[]), "version 2");
    assert_bytes_invalid(&build(MAGIC, 0, &meta, 0, &[]), "version 0");
    let mut flags = build(MAGIC, 1, &meta, 0, &[]);
    flags[12] = 1;
    assert_bytes_invalid(&flags, "flags");
}

#[test]
fn region_lengths_past_the_end_are_refused() {
    let meta = metadata_json();
    // Announces 9 stored bytes, holds 8.
    assert_bytes_invalid(&with_regions(&[(0x1000, 9, 9, &[0; 8])]), "truncated");
    // Announces enormous regions.
    assert_bytes_invalid(&with_regions(&[(0x1000, u64::MAX, u64::MAX, &[0; 8])]), "");
    assert_bytes_invalid(&with_regions(&[(0x1000, 1 << 40, 1 << 40, &[0; 8])]), "");
    assert_bytes_invalid(&with_regions(&[(0x1000, 3 << 30, 3 << 30, &[0; 8])]), "");
    // More regions announced than present, or than allowed.
    assert_bytes_invalid(&build(MAGIC, 1, &meta, 2, &[data(0x1000, &[0; 8])]), "");
    assert_bytes_invalid(
        &build(MAGIC, 1, &meta, u64::MAX, &[data(0x1000, &[0; 8])]),
        "regions",
    );
    // Metadata longer than the file, or than allowed.
    let mut long_meta = build(MAGIC, 1, &meta, 0, &[]);
    long_meta[16..24].copy_from_slice(&(meta.len() as u64 + 100).to_le_bytes());
    assert_bytes_invalid(&long_meta, "truncated");
    long_meta[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_bytes_invalid(&long_meta, "metadata length");
}

#[test]
fn malformed_regions_and_metadata_are_refused() {
    // Overlapping, unsorted, empty, past the address space.
    assert_bytes_invalid(
        &with_regions(&[data(0x1000, &[0; 8]), data(0x1004, &[0; 8])]),
        "overlaps",
    );
    assert_bytes_invalid(
        &with_regions(&[data(0x2000, &[0; 8]), data(0x1000, &[0; 8])]),
        "precedes",
    );
    assert_bytes_invalid(
        &with_regions(&[zeros(0x1000, 0x1000), data(0x1800, &[0; 8])]),
        "overlaps",
    );
    assert_bytes_invalid(
        &with_regions(&[zeros(0x1000, 0), data(0x2000, &[0; 8])]),
        "empty",
    );
    assert_bytes_invalid(
        &with_regions(&[data(u64::MAX - 3, &[0; 8])]),
        "address space",
    );
    assert_bytes_invalid(&with_regions(&[zeros(2, u64::MAX)]), "address space");
    // A stored length that is neither the length nor 0.
    assert_bytes_invalid(&with_regions(&[(0x1000, 8, 4, &[0; 4])]), "must be 8 or 0");
    // Bytes after the last region.
    let mut trailing = good_file();
    trailing.push(0);
    assert_bytes_invalid(&trailing, "after the last region");
    // Metadata that is not JSON, or not the right JSON.
    assert_bytes_invalid(&build(MAGIC, 1, b"{not json", 0, &[]), "metadata");
    assert_bytes_invalid(&build(MAGIC, 1, b"{\"pid\": 1}", 0, &[]), "metadata");
    assert_bytes_invalid(&build(MAGIC, 1, &[0xff, 0xfe], 0, &[]), "metadata");
}

#[test]
fn random_corruption_never_panics() {
    let good = good_file();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Corrupt only the binary parts (header, count, region headers) as well as
    // random bytes anywhere.
    let meta_end = 24 + metadata_json().len();
    let (mut loaded, mut refused) = (0, 0);
    for round in 0..5000 {
        let mut b = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = if round % 2 == 0 {
                (next() as usize) % b.len()
            } else {
                let binary: Vec<usize> = (0..24).chain(meta_end..b.len()).collect();
                binary[(next() as usize) % binary.len()]
            };
            b[at] = next() as u8;
        }
        match Snapshot::from_bytes(b) {
            Ok(s) => {
                loaded += 1;
                let m = s.memory();
                for _ in 0..16 {
                    let addr = 0x0ff0 + next() % 0x3020;
                    let mut buf = vec![0u8; (next() % 24) as usize];
                    let _ = m.read(addr, &mut buf);
                }
            }
            Err(_) => refused += 1,
        }
    }
    // Both ways were taken: corrupted files that still load (then read
    // around their regions) and files refused.
    eprintln!("{loaded} corrupted files loaded, {refused} refused");
    assert!(
        loaded > 0 && refused > 0,
        "{loaded} loaded, {refused} refused"
    );
}

/// Memory built by hand serves the walker as a process's would, failures
/// included: the interpreter list's head (at `interp_head_ptr`, 0x1000)
/// reads 0, so there is no interpreter yet; not mapped at all, reading it
/// fails there. (`snapshot_matches_live` walks a real process's memory
/// rebuilt with `from_regions` to the same stacks as the live process.)
#[test]
fn synthetic_memory_can_back_a_stack_reader() {
    let zeros = SnapshotMemory::from_regions(1, vec![(0x1000, vec![0; 64])]).unwrap();
    let mut reader = StackReader::new(interpreter(), Box::new(zeros));
    match reader.read(&[1], true) {
        Err(Error::NotReady { pid: 1, detail }) => {
            assert!(detail.contains("no interpreter state"), "{detail}")
        }
        other => panic!("a zero interpreter list head gave {other:?}"),
    }
    let elsewhere = SnapshotMemory::from_regions(1, vec![(0x8000, vec![0; 64])]).unwrap();
    let mut reader = StackReader::new(interpreter(), Box::new(elsewhere));
    match reader.read(&[1], true) {
        Err(Error::Memory { pid: 1, addr, .. }) => assert_eq!(addr, 0x1000),
        other => panic!("an unmapped interpreter list head gave {other:?}"),
    }
}
