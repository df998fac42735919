//! What the fuzz targets share: the seed snapshots of real interpreters, the
//! memory the fuzzer mutates, and the walk every target runs.
//!
//! # Walker inputs
//!
//! A seed is a snapshot of `fuzz/seed_target.py` captured from a live
//! interpreter (see `examples/fuzz-tool.rs seeds`), kept outside the repo in
//! `$PYSAMPLER_FUZZ_DIR/snapshots/<label>.pysnap` (default
//! `~/.cache/pysampler/fuzz`). Its metadata, the `Interpreter`, stays fixed.
//!
//! Mutating 5–20 MiB of memory blindly would almost never touch a byte the
//! walker reads, so the fuzzer mutates the *hot bytes* instead: every byte the
//! walk (`exercise`) reads from the pristine snapshot, in address order. A
//! walker input is
//!
//! ```text
//! [seed selector: 1 byte] [hot bytes: up to HotSet::len() bytes]
//! ```
//!
//! The selector picks `SEEDS[b % SEEDS.len()]`; the hot bytes replace the
//! first bytes of the seed's hot set (a shorter input leaves the rest
//! pristine; extra bytes are ignored). Memory outside the hot set reads as in
//! the snapshot, so a mutated pointer leads to real (wrong) objects, and
//! addresses outside the snapshot fail like unmapped memory. The hot set is
//! recomputed when a seed is loaded, the same way as when the seed corpus was
//! written, so the two agree as long as the walker reads the same bytes.

pub mod recording;

use pysampler_core::interpreter::{Interpreter, Layout};
use pysampler_core::memory::MemorySource;
use pysampler_core::snapshot::{Metadata, Snapshot, SnapshotMemory};
use pysampler_core::walk::frames::{RawFrame, MAX_DEPTH};
use pysampler_core::walk::objects::MAX_STRING_CHARS;
use pysampler_core::walk::{StackReader, ThreadStack};
use pysampler_core::Error;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The seed snapshots, by label; a walker input's first byte picks one
/// (modulo the length). The order is part of the input format: append only.
pub const SEEDS: &[&str] = &["2.7", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"];
/// Every index of `SEEDS`.
pub const ALL_SEEDS: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7];

/// Most locals a frame can show (`walk::locals::MAX_LOCALS`).
pub const MAX_LOCALS: usize = 256;
/// Largest line table kept (`walk::code::MAX_LINE_TABLE`).
pub const MAX_LINE_TABLE: usize = 1 << 20;
/// Longest printed local value: 64 characters, each escaped to at most 4
/// bytes, or a `<type name at 0x…>` with a 64-byte name.
pub const MAX_VALUE_BYTES: usize = 512;

/// Where the seed snapshots and generated corpora live.
pub fn fuzz_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PYSAMPLER_FUZZ_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/pysampler/fuzz")
}

pub fn seed_path(label: &str) -> PathBuf {
    fuzz_dir().join("snapshots").join(format!("{label}.pysnap"))
}

// ---- memory ----------------------------------------------------------------

/// The bytes the walk read from a snapshot, merged into ranges.
pub struct HotSet {
    ranges: Vec<HotRange>,
    /// The pristine bytes of every range, concatenated.
    pub pristine: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct HotRange {
    start: u64,
    end: u64,
    /// Position of `start` in the concatenated bytes.
    offset: usize,
}

impl HotSet {
    /// Ranges from a list of (address, length) reads, merged when they
    /// overlap or touch; bytes copied from `mem`.
    pub fn from_reads(mem: &dyn MemorySource, reads: &[(u64, u64)]) -> HotSet {
        let merged = merge(reads);
        let mut ranges = Vec::with_capacity(merged.len());
        let mut pristine = Vec::new();
        for (start, end) in merged {
            let mut bytes = vec![0u8; (end - start) as usize];
            // Every byte was read successfully once; a merged range may span
            // adjacent regions, which `read` handles.
            if mem.read(start, &mut bytes).is_err() {
                continue;
            }
            ranges.push(HotRange {
                start,
                end,
                offset: pristine.len(),
            });
            pristine.extend_from_slice(&bytes);
        }
        HotSet { ranges, pristine }
    }

    pub fn len(&self) -> usize {
        self.pristine.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pristine.is_empty()
    }

    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// (start, end) of each range.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|r| (r.start, r.end))
    }

    /// The hot bytes with `input` written over their beginning.
    pub fn patched(&self, input: &[u8]) -> Vec<u8> {
        let mut bytes = self.pristine.clone();
        let n = input.len().min(bytes.len());
        bytes[..n].copy_from_slice(&input[..n]);
        bytes
    }
}

/// Sorted, merged (start, end) ranges of (address, length) reads.
pub fn merge(reads: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = reads
        .iter()
        .filter(|(_, len)| *len > 0)
        .filter_map(|(a, len)| Some((*a, a.checked_add(*len)?)))
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some((_, end)) if s <= *end => *end = (*end).max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// A snapshot's memory with the hot bytes replaced by the fuzzer's.
#[derive(Clone)]
pub struct OverlayMemory {
    pub base: SnapshotMemory,
    hot: Arc<HotSet>,
    bytes: Arc<Vec<u8>>,
}

impl OverlayMemory {
    pub fn new(base: SnapshotMemory, hot: Arc<HotSet>, input: &[u8]) -> OverlayMemory {
        let bytes = Arc::new(hot.patched(input));
        OverlayMemory { base, hot, bytes }
    }
}

impl MemorySource for OverlayMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> pysampler_core::Result<()> {
        self.base.read(addr, buf)?;
        // The base read succeeded, so addr + len does not overflow.
        let end = addr + buf.len() as u64;
        let ranges = &self.hot.ranges;
        let mut i = ranges.partition_point(|r| r.end <= addr);
        while let Some(r) = ranges.get(i) {
            if r.start >= end {
                break;
            }
            let from = r.start.max(addr);
            let to = r.end.min(end);
            let src = r.offset + (from - r.start) as usize;
            buf[(from - addr) as usize..(to - addr) as usize]
                .copy_from_slice(&self.bytes[src..src + (to - from) as usize]);
            i += 1;
        }
        Ok(())
    }

    fn pid(&self) -> i32 {
        self.base.pid()
    }
}

/// Records the reads that succeed, up to a budget of bytes and time; past
/// the budget every read fails (so a run that would allocate or loop without
/// end stops, and what it read so far is known).
#[derive(Clone)]
pub struct RecordingMemory<M> {
    pub inner: M,
    log: Arc<Mutex<ReadLog>>,
}

#[derive(Default)]
pub struct ReadLog {
    pub reads: Vec<(u64, u64)>,
    pub bytes: u64,
    pub budget_bytes: u64,
    pub deadline: Option<Instant>,
    pub over_budget: bool,
    /// Also appended here as they happen, (address, length) as two u64 LE,
    /// unbuffered: the file survives an abort of the run.
    pub file: Option<std::fs::File>,
}

impl<M: MemorySource> RecordingMemory<M> {
    pub fn new(inner: M, budget_bytes: u64, budget_time: Duration) -> Self {
        RecordingMemory {
            inner,
            log: Arc::new(Mutex::new(ReadLog {
                budget_bytes,
                deadline: Some(Instant::now() + budget_time),
                ..ReadLog::default()
            })),
        }
    }

    /// Appends every successful read to `file` as well.
    pub fn with_file(self, file: std::fs::File) -> Self {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).file = Some(file);
        self
    }

    pub fn log(&self) -> Arc<Mutex<ReadLog>> {
        self.log.clone()
    }
}

impl<M: MemorySource> MemorySource for RecordingMemory<M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> pysampler_core::Result<()> {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let late = log.deadline.is_some_and(|d| Instant::now() > d);
        if late || log.bytes.saturating_add(buf.len() as u64) > log.budget_bytes {
            log.over_budget = true;
            return Err(Error::Memory {
                pid: self.inner.pid(),
                addr,
                len: buf.len(),
                source: std::io::Error::from_raw_os_error(libc_efault()),
            });
        }
        drop(log);
        self.inner.read(addr, buf)?;
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.bytes += buf.len() as u64;
        log.reads.push((addr, buf.len() as u64));
        if let Some(file) = &mut log.file {
            use std::io::Write;
            let mut rec = [0u8; 16];
            rec[..8].copy_from_slice(&addr.to_le_bytes());
            rec[8..].copy_from_slice(&(buf.len() as u64).to_le_bytes());
            let _ = file.write_all(&rec);
        }
        Ok(())
    }

    fn pid(&self) -> i32 {
        self.inner.pid()
    }
}

fn libc_efault() -> i32 {
    14 // EFAULT on Linux
}

// ---- the walk --------------------------------------------------------------

/// What one `exercise` run produced (for the tool's reports).
#[derive(Debug, Default)]
pub struct Outcome {
    /// `read(tids, with_locals = true)`.
    pub dump: Option<pysampler_core::Result<Vec<ThreadStack>>>,
    /// Frames resolved by each of the two sampler-style passes, or the error
    /// that ended the pass.
    pub samples: Vec<Result<usize, String>>,
}

/// Everything the walker does with a process's memory: `dump`'s
/// `read(tids, true)` then `read(tids, false)` on the same reader (warm
/// caches), then two sampler-style passes on a fresh reader (threads →
/// raw_frames → fingerprints → resolve_checked, as `Sampler::sample` does;
/// the second pass takes the ≤3.10 prefetch path and the cached code).
/// Panics when a documented cap is exceeded.
pub fn exercise<M>(interp: &Interpreter, mem: M, tids: &[i32]) -> Outcome
where
    M: MemorySource + Clone + Send + 'static,
{
    let mut outcome = Outcome::default();
    let mut reader = StackReader::new(interp.clone(), Box::new(mem.clone()));
    let dump = reader.read(tids, true);
    if let Ok(stacks) = &dump {
        check_stacks(stacks, true);
    }
    if let Ok(stacks) = reader.read(tids, false) {
        check_stacks(&stacks, false);
    }
    outcome.dump = Some(dump);
    let mut reader = StackReader::new(interp.clone(), Box::new(mem));
    let mut raw = Vec::new();
    for _ in 0..2 {
        outcome.samples.push(sample(&mut reader, tids, &mut raw));
    }
    outcome
}

/// One sampler-style pass; the number of frames resolved.
fn sample(
    reader: &mut StackReader,
    tids: &[i32],
    raw: &mut Vec<RawFrame>,
) -> Result<usize, String> {
    let entries = reader
        .threads(|| tids.to_vec())
        .map_err(|e| e.to_string())?;
    raw.clear();
    for entry in &entries {
        let start = raw.len();
        let truncated = reader.raw_frames(entry, raw).map_err(|e| e.to_string())?;
        let depth = raw.len() - start;
        assert!(depth <= MAX_DEPTH, "{depth} raw frames, over MAX_DEPTH");
        assert!(!truncated || depth <= MAX_DEPTH);
    }
    let mut codes: Vec<u64> = Vec::new();
    for r in raw.iter() {
        if !codes.contains(&r.code) {
            codes.push(r.code);
        }
    }
    let mut fingerprints = Vec::new();
    reader.fingerprints(&codes, &mut fingerprints);
    assert_eq!(fingerprints.len(), codes.len());
    let mut resolved = 0;
    for r in raw.iter() {
        let at = codes.iter().position(|c| *c == r.code).unwrap_or(0);
        let fp = fingerprints.get(at).copied().unwrap_or(0);
        if let Some((code, _line)) = reader
            .resolve_checked(r, Some(fp))
            .map_err(|e| e.to_string())?
        {
            check_code(&code);
            resolved += 1;
        }
    }
    Ok(resolved)
}

fn check_code(code: &pysampler_core::walk::code::CodeInfo) {
    check_text("function name", &code.name);
    check_text("file name", &code.filename);
    assert!(
        code.line_table.len() <= MAX_LINE_TABLE,
        "line table of {} bytes",
        code.line_table.len()
    );
}

fn check_text(what: &str, s: &str) {
    let n = s.chars().count();
    assert!(n <= MAX_STRING_CHARS, "{what} of {n} characters");
}

/// The caps the walker documents: stack depth, locals per frame, string
/// lengths.
pub fn check_stacks(stacks: &[ThreadStack], with_locals: bool) {
    for s in stacks {
        assert!(s.frames.len() <= MAX_DEPTH, "{} frames", s.frames.len());
        if let Some(name) = &s.name {
            check_text("thread name", name);
        }
        for f in &s.frames {
            check_code(&f.code);
            assert!(with_locals || f.locals.is_empty());
            assert!(f.locals.len() <= MAX_LOCALS, "{} locals", f.locals.len());
            for l in &f.locals {
                check_text("local name", &l.name);
                assert!(
                    l.value.len() <= MAX_VALUE_BYTES,
                    "value of {} bytes: {:?}",
                    l.value.len(),
                    &l.value[..l.value.len().min(200)]
                );
            }
        }
    }
}

// ---- overflow tolerance --------------------------------------------------------

/// With `PYSAMPLER_FUZZ_TOLERATE_OVERFLOW=1`, an arithmetic-overflow panic
/// (which only debug-assertion builds have: release builds wrap) ends the
/// input's run quietly instead of aborting, so that a long run can get past
/// known overflow sites to other bugs. Each overflow site is printed once.
/// Every other panic still aborts (libFuzzer reports it as a crash).
///
/// `PYSAMPLER_FUZZ_KNOWN_OVERFLOWS=src/walk/x.rs:12,…` tolerates only the
/// overflows at those places (known, not yet fixed: see
/// fuzz/regressions/README.md); an overflow anywhere else still aborts.
/// Call from the fuzz target's `init`, after libfuzzer-sys set its hook.
pub fn install_overflow_tolerance() {
    let all = std::env::var("PYSAMPLER_FUZZ_TOLERATE_OVERFLOW").as_deref() == Ok("1");
    let known: Vec<String> = std::env::var("PYSAMPLER_FUZZ_KNOWN_OVERFLOWS")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if !all && known.is_empty() {
        return;
    }
    TOLERANT.store(true, std::sync::atomic::Ordering::Relaxed);
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let listed = || known.iter().any(|k| at.contains(&format!("{k}:")));
        if msg.starts_with("attempt to ") && msg.ends_with("with overflow") && (all || listed()) {
            static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
            let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
            if !seen.contains(&at) {
                seen.push(at.clone());
                // A symbolised backtrace takes a second or more: only on request.
                let trace = if std::env::var("PYSAMPLER_FUZZ_TOLERATE_OVERFLOW_TRACE").is_ok() {
                    format!("\n{}", std::backtrace::Backtrace::force_capture())
                } else {
                    String::new()
                };
                eprintln!(
                    "pysampler-fuzz: tolerated overflow #{}: {msg} at {at}{trace}",
                    seen.len()
                );
            }
            return;
        }
        abort_hook(info)
    }));
}

static TOLERANT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `f`; in tolerant mode an overflow panic inside gives None.
pub fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    if TOLERANT.load(std::sync::atomic::Ordering::Relaxed) {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
    } else {
        Some(f())
    }
}

// ---- seeds -----------------------------------------------------------------

/// A loaded seed snapshot and its hot set.
pub struct Seed {
    pub label: &'static str,
    pub snap: Snapshot,
    pub hot: Arc<HotSet>,
}

impl Seed {
    pub fn load(label: &'static str) -> Result<Seed, String> {
        let path = seed_path(label);
        let snap = Snapshot::load(&path).map_err(|e| e.to_string())?;
        let hot = Arc::new(hot_set(&snap.interp, snap.memory(), &snap.tids));
        Ok(Seed { label, snap, hot })
    }

    /// The seed's memory with `hot_input` over its hot bytes.
    pub fn memory(&self, hot_input: &[u8]) -> OverlayMemory {
        OverlayMemory::new(self.snap.memory(), self.hot.clone(), hot_input)
    }
}

/// The bytes `exercise` reads from pristine memory.
pub fn hot_set<M>(interp: &Interpreter, mem: M, tids: &[i32]) -> HotSet
where
    M: MemorySource + Clone + Send + 'static,
{
    let rec = RecordingMemory::new(mem.clone(), u64::MAX, Duration::from_secs(3600));
    let log = rec.log();
    exercise(interp, rec, tids);
    let reads = std::mem::take(&mut log.lock().unwrap().reads);
    HotSet::from_reads(&mem, &reads)
}

/// The seed a selector byte picks, loaded on first use; None (and a message,
/// once) when its snapshot is missing.
pub fn seed(selector: u8) -> Option<&'static Seed> {
    static LOADED: OnceLock<Vec<OnceLock<Option<Seed>>>> = OnceLock::new();
    let slots = LOADED.get_or_init(|| SEEDS.iter().map(|_| OnceLock::new()).collect());
    let i = selector as usize % SEEDS.len();
    slots[i]
        .get_or_init(|| match Seed::load(SEEDS[i]) {
            Ok(seed) => Some(seed),
            Err(e) => {
                eprintln!(
                    "pysampler-fuzz: seed {} unavailable ({e}); run fuzz/gen-seeds.sh",
                    SEEDS[i]
                );
                None
            }
        })
        .as_ref()
}

/// Loads the seeds `which` (indices into `SEEDS`) that exist (before fuzzing starts, so that loading is not
/// counted against `-timeout`); exits with a message when there is none
/// (the walker targets would fuzz nothing).
pub fn require_seeds(which: &[u8]) {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let loaded = which.iter().filter(|i| seed(**i).is_some()).count();
        if loaded == 0 {
            eprintln!(
                "pysampler-fuzz: no seed snapshots in {}; run fuzz/gen-seeds.sh first",
                fuzz_dir().join("snapshots").display()
            );
            std::process::exit(2);
        }
    });
}

/// Runs a walker input (see the module documentation); None when its seed
/// is missing.
pub fn run_walker_input(data: &[u8]) -> Option<Outcome> {
    let (&selector, hot_input) = data.split_first()?;
    let seed = seed(selector)?;
    let mem = seed.memory(hot_input);
    Some(exercise(&seed.snap.interp, mem, &seed.snap.tids))
}

// ---- layouts (walker_layout) -------------------------------------------------

/// Seeds whose layout the target publishes in `_Py_DebugOffsets` (3.13+):
/// those fields come from the target's memory, so they are hostile too.
pub const LAYOUT_SEEDS: &[u8] = &[5, 6, 7];

/// A `walker_layout` input: `[seed selector] ([field selector] [u64 LE value])*`.
/// The selector picks `LAYOUT_SEEDS[b % len]`; each field selector picks one
/// of the seed's `_Py_DebugOffsets` fields (sorted by name, modulo their
/// number), whose value is replaced, as `Interpreter::locate` does with what
/// it reads from `_PyRuntime`. Values over `i64::MAX` are refused there, so
/// they are here.
pub fn layout_input(data: &[u8]) -> Option<(&'static Seed, Interpreter)> {
    let (&selector, rest) = data.split_first()?;
    let seed = seed(LAYOUT_SEEDS[selector as usize % LAYOUT_SEEDS.len()])?;
    let interp = &seed.snap.interp;
    let fields: Vec<&String> = interp.layout.debug_offsets.keys().collect();
    if fields.is_empty() {
        return None;
    }
    let limit = layout_limit();
    let mut overrides = Vec::new();
    for patch in rest.chunks_exact(9) {
        let field = fields[patch[0] as usize % fields.len()];
        let value = u64::from_le_bytes(patch[1..9].try_into().unwrap());
        if limit.is_some_and(|max| value > max) {
            return None;
        }
        overrides.push((field.clone(), value));
    }
    let layout = with_overrides(&interp.layout, &overrides)?;
    // Layout seeds are 3.13+, which always have `_PyRuntime.interpreters`.
    let runtime = interp
        .interp_head_ptr
        .wrapping_sub(interp.layout.runtime.interpreters_head?);
    let mut patched = interp.clone();
    patched.interp_head_ptr = runtime.wrapping_add(layout.runtime.interpreters_head?);
    patched.layout = layout;
    Some((seed, patched))
}

/// `PYSAMPLER_FUZZ_LAYOUT_MAX=N`: inputs whose layout has a value over N are
/// skipped (`walker_layout`, `snapshot_file`): what a run finds once layouts
/// are validated that way where they come from (`Interpreter::locate`,
/// snapshot metadata). fuzz/run.sh sets 64 KiB while that validation is
/// missing (see fuzz/regressions/README.md).
pub fn layout_limit() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let v = std::env::var("PYSAMPLER_FUZZ_LAYOUT_MAX").ok()?;
        match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        }
    })
}

/// Whether any number in `layout` is over `max` (or does not serialise).
pub fn layout_exceeds(layout: &Layout, max: u64) -> bool {
    fn over(v: &serde_json::Value, max: u64) -> bool {
        match v {
            serde_json::Value::Number(n) => n.as_u64().is_none_or(|n| n > max),
            serde_json::Value::Array(items) => items.iter().any(|v| over(v, max)),
            serde_json::Value::Object(fields) => fields.values().any(|v| over(v, max)),
            _ => false,
        }
    }
    serde_json::to_value(layout).map_or(true, |v| over(&v, max))
}

fn with_overrides(layout: &Layout, overrides: &[(String, u64)]) -> Option<Layout> {
    if overrides.is_empty() {
        return Some(layout.clone());
    }
    layout.with_overrides(overrides).ok()
}

/// The seed corpus entry of a layout seed: every field set to its own value.
pub fn layout_seed_input(selector: u8, seed: &Seed) -> Vec<u8> {
    let mut out = vec![selector];
    let l = &seed.snap.interp.layout;
    let current = layout_field_values(l);
    for (i, field) in l.debug_offsets.keys().enumerate() {
        if let Some(v) = current.iter().find(|(f, _)| f == field).map(|(_, v)| *v) {
            out.push(i as u8);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Every `section.field` of a layout and its value.
pub fn layout_field_values(layout: &Layout) -> Vec<(String, u64)> {
    let value = toml::Value::try_from(layout).expect("a layout serialises");
    let mut out = Vec::new();
    if let toml::Value::Table(sections) = value {
        for (section, fields) in sections {
            if let toml::Value::Table(fields) = fields {
                for (field, v) in fields {
                    if let toml::Value::Integer(n) = v {
                        out.push((format!("{section}.{field}"), n as u64));
                    }
                }
            }
        }
    }
    out
}

// ---- snapshot files ------------------------------------------------------------

/// Parses a snapshot file; when it loads, reads around its regions and, for
/// a supported version, runs the walk on it with its own metadata.
pub fn run_snapshot_file(data: &[u8]) -> Option<Outcome> {
    let snap = Snapshot::from_bytes(data.to_vec()).ok()?;
    let mem = snap.memory();
    let regions: Vec<(u64, u64)> = mem.regions().collect();
    let mut buf = [0u8; 16];
    for (start, end) in regions.iter().take(64) {
        for addr in [*start, end.wrapping_sub(8), end.wrapping_sub(1), *end] {
            let _ = mem.read(addr, &mut buf);
        }
    }
    if !pysampler_core::interpreter::families::is_supported(&snap.interp.version) {
        return None;
    }
    if let Some(max) = layout_limit() {
        if layout_exceeds(&snap.interp.layout, max) {
            return None;
        }
    }
    Some(exercise(&snap.interp, mem, &snap.tids))
}

/// A self-contained snapshot holding only the given bytes of `mem` (the
/// reads a run made), with `interp` as its metadata: the reads that
/// succeeded read the same bytes, the ones that failed still fail.
pub fn reduced_snapshot(
    snap: &Snapshot,
    interp: &Interpreter,
    mem: &dyn MemorySource,
    reads: &[(u64, u64)],
) -> Snapshot {
    let mut regions = Vec::new();
    for (start, end) in merge(reads) {
        let mut bytes = vec![0u8; (end - start) as usize];
        if mem.read(start, &mut bytes).is_ok() {
            regions.push((start, bytes));
        }
    }
    let memory =
        SnapshotMemory::from_regions(snap.pid, regions).expect("merged ranges do not overlap");
    let meta = Metadata {
        interp: interp.clone(),
        mappings: Vec::new(),
        ..snap.metadata()
    };
    Snapshot::from_parts(meta, memory)
}

/// Reads a file of (address, length) records written by `RecordingMemory::with_file`.
pub fn read_log_file(bytes: &[u8]) -> Vec<(u64, u64)> {
    bytes
        .chunks_exact(16)
        .map(|r| {
            (
                u64::from_le_bytes(r[..8].try_into().unwrap()),
                u64::from_le_bytes(r[8..].try_into().unwrap()),
            )
        })
        .collect()
}

// ---- core files ------------------------------------------------------------

/// `core_file`: parses `data` as a core file and, when it parses, reads
/// everything `dump --core` reads from it before the interpreter is looked
/// for: the command line, the executable, the mappings, the build ids, and
/// memory around each mapping.
pub fn run_core_file(data: &[u8]) {
    use pysampler_core::corefile::{build_id, CoreFile, SharedBytes};
    let bytes: SharedBytes = Arc::new(data.to_vec());
    let Ok(core) = CoreFile::parse(bytes) else {
        return;
    };
    let _ = (core.command_line(), core.exe(), core.signalled_thread());
    let mut buf = [0u8; 16];
    for file in core.mapped_files().iter().take(64) {
        let _ = build_id::in_core(&core.memory, file.base);
    }
    for m in core.files.iter().take(64) {
        for addr in [m.start, m.end.wrapping_sub(8), m.end] {
            let _ = core.memory.read(addr, &mut buf);
        }
    }
    let _ = build_id::of_file(data);
}
