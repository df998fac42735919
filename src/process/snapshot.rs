//! A saved copy of a Python process's memory, and a `MemorySource` over it, so
//! the real walker runs without a live target (unit tests, fuzzing, benches).
//!
//! # File format, version 1
//!
//! All integers are little-endian.
//!
//! | bytes | field |
//! |-------|-------|
//! | 8     | magic `\x89PYSNAP\n` (the high byte and the newline catch text-mode mangling) |
//! | 4     | format version, `u32` = 1 |
//! | 4     | flags, `u32`, must be 0 in version 1 |
//! | 8     | metadata length `M`, `u64`, at most [`MAX_METADATA_BYTES`] |
//! | M     | metadata: UTF-8 JSON, see [`Metadata`] (the `Interpreter`, pid, thread ids, command line, capture time, the maps) |
//! | 8     | region count `N`, `u64`, at most [`MAX_REGIONS`] |
//! | N ×   | region: start address `u64`, length `L` `u64` (≥ 1), stored length `S` `u64`, then `S` bytes |
//!
//! `S` is either `L` (the region's bytes follow) or 0 (the region is all zero
//! bytes and nothing follows: untouched thread stacks and heap would otherwise
//! be most of a snapshot). Nothing may follow the last region. Regions are
//! sorted by address and do not overlap; they may touch (a read may span
//! adjacent regions). The stored bytes add up to at most [`MAX_TOTAL_BYTES`].
//!
//! The reader treats the file as hostile: every length is checked against the
//! bytes that remain and against the limits above before it is used, and any
//! violation (truncation, wrong magic or version, unsorted or overlapping
//! regions, address overflow, trailing bytes, bad JSON) is an error, never a
//! panic.
//!
//! # What is captured
//!
//! Every readable mapping except
//! - executable, non-writable mappings (program text, `[vdso]`): the walker
//!   never reads code;
//! - `[vvar]`/`[vvar_vclock]`/`[vsyscall]`, which cannot be read through
//!   `process_vm_readv` anyway;
//! - read-only file mappings larger than [`CaptureOptions::max_readonly_file_region`]
//!   (64 MiB by default: `locale-archive`, big data files the program mmaps).
//!
//! Read-only file mappings of ordinary size *are* kept: they hold `.rodata`
//! (the `tp_name` strings the walker prints for locals of other types) and
//! `.data.rel.ro` (relocated pointers, read-only after RELRO). Pages that cannot
//! be read are left out, so a mapping may become several regions. Runs of
//! zero pages of at least [`CaptureOptions::min_zero_run`] bytes are saved as
//! zero regions.
//!
//! Leaving out the read-only file mappings saves about a quarter of the size
//! but breaks `<list at 0x…>`-style locals (the type name is unreadable), so
//! the snapshot would no longer read exactly like the live process. Measured
//! on `fixtures/snapshot_target.py` (two threads): 5–11 MiB per file for
//! Python 2.7–3.13, 13–20 MiB without zero regions (mostly the untouched
//! 8 MiB stack of the second thread).
//!
//! # Reading
//!
//! [`SnapshotMemory`] keeps the regions sorted; a read finds its region by
//! binary search (or the region of the previous read), copies, and allocates
//! nothing. A read that runs from one region into an adjacent one works; a
//! read that touches any byte outside the regions fails with
//! `Error::Memory` carrying `EFAULT`, like a live read of unmapped memory.

use crate::error::{Error, Result};
use crate::interpreter::Interpreter;
use crate::process::memory::{LiveMemory, MemorySource};
use crate::process::{pause, ProcessInfo};
use crate::walk::StackReader;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// First bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"\x89PYSNAP\n";
/// The format version this module writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Largest metadata block accepted.
pub const MAX_METADATA_BYTES: u64 = 16 << 20;
/// Most regions accepted (Linux allows 65530 mappings by default).
pub const MAX_REGIONS: u64 = 1 << 20;
/// Largest total of stored region bytes captured or accepted: 2 GiB.
pub const MAX_TOTAL_BYTES: u64 = 2 << 30;
/// Bytes of a region header: start, length, stored length.
const REGION_HEADER_BYTES: u64 = 24;
/// Largest file `load` reads: the regions plus their headers and the metadata.
const MAX_FILE_BYTES: u64 =
    MAX_TOTAL_BYTES + MAX_METADATA_BYTES + MAX_REGIONS * REGION_HEADER_BYTES + 64;
/// Size of the fixed header before the metadata.
const HEADER_BYTES: usize = 24;
const PAGE: u64 = 4096;
/// Chunk size used when a whole mapping cannot be read at once.
const CHUNK: u64 = 1 << 20;

/// The JSON block of a snapshot file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Metadata {
    pub interp: Interpreter,
    pub pid: i32,
    /// The process's OS thread ids (`/proc/PID/task`) at capture time.
    pub tids: Vec<i32>,
    pub command_line: String,
    /// Milliseconds since the Unix epoch.
    pub captured_at_unix_ms: u64,
    /// Version of pysampler that wrote the file.
    #[serde(default)]
    pub pysampler_version: String,
    /// The process's mappings at capture time and whether each was saved, for
    /// diagnosing a read that fails on the snapshot.
    #[serde(default)]
    pub mappings: Vec<MappingInfo>,
}

/// One line of `/proc/PID/maps` and what the capture did with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MappingInfo {
    pub start: u64,
    pub end: u64,
    /// `rw-p` and so on.
    pub perms: String,
    #[serde(default)]
    pub path: Option<String>,
    /// Bytes of this mapping the snapshot covers (zero pages included).
    pub saved_bytes: u64,
    /// Why it was (wholly or partly) left out, if it was.
    #[serde(default)]
    pub skipped: Option<String>,
}

/// What `capture` saves.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Fail when the bytes to store (zero regions aside) add up to more than this.
    pub max_total_bytes: u64,
    /// Read-only file mappings larger than this are left out (0 leaves out
    /// every read-only file mapping).
    pub max_readonly_file_region: u64,
    /// Runs of zero pages at least this long are stored as zero regions
    /// (`u64::MAX`: never).
    pub min_zero_run: u64,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            max_total_bytes: MAX_TOTAL_BYTES,
            max_readonly_file_region: 64 << 20,
            min_zero_run: 64 << 10,
        }
    }
}

/// A loaded snapshot: what the walker needs to run as if on the process.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub interp: Interpreter,
    pub pid: i32,
    pub tids: Vec<i32>,
    pub command_line: String,
    pub captured_at_unix_ms: u64,
    pub pysampler_version: String,
    pub mappings: Vec<MappingInfo>,
    regions: SnapshotMemory,
}

/// The memory of a snapshot. Cheap to clone (shared), `Send + Sync`.
pub struct SnapshotMemory {
    pid: i32,
    image: Arc<Image>,
    /// Index of the span the last read hit: the walker's reads cluster, so
    /// most reads skip the binary search.
    last: AtomicUsize,
}

impl Clone for SnapshotMemory {
    fn clone(&self) -> Self {
        SnapshotMemory::new(self.pid, self.image.clone())
    }
}

struct Image {
    /// Sorted, non-overlapping, each non-empty.
    spans: Vec<Span>,
    /// Bytes the spans point into (for a loaded file, the whole file).
    data: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
    /// Position of the span's first byte in `Image::data` (0 for zero spans).
    offset: usize,
    /// All zero bytes, not stored.
    zero: bool,
}

impl Span {
    /// Copies `buf.len()` bytes at `addr` (inside this span) into `buf`.
    #[inline]
    fn copy(&self, data: &[u8], addr: u64, buf: &mut [u8]) {
        if self.zero {
            buf.fill(0);
        } else {
            let from = self.offset + (addr - self.start) as usize;
            buf.copy_from_slice(&data[from..from + buf.len()]);
        }
    }
}

impl std::fmt::Debug for SnapshotMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotMemory")
            .field("pid", &self.pid)
            .field("regions", &self.image.spans.len())
            .field("bytes", &self.total_bytes())
            .field("stored_bytes", &self.stored_bytes())
            .finish()
    }
}

impl SnapshotMemory {
    fn new(pid: i32, image: Arc<Image>) -> SnapshotMemory {
        SnapshotMemory {
            pid,
            image,
            last: AtomicUsize::new(0),
        }
    }

    /// Memory made of the given regions (start address, bytes), for tests that
    /// build a process image by hand. Regions may come in any order; empty ones
    /// are dropped; overlapping ones are an error.
    pub fn from_regions(pid: i32, mut regions: Vec<(u64, Vec<u8>)>) -> Result<SnapshotMemory> {
        regions.retain(|(_, b)| !b.is_empty());
        regions.sort_by_key(|(start, _)| *start);
        let total: usize = regions.iter().map(|(_, b)| b.len()).sum();
        let mut data = Vec::with_capacity(total);
        let mut spans = Vec::with_capacity(regions.len());
        for (start, bytes) in &regions {
            let span = Span {
                start: *start,
                end: start.checked_add(bytes.len() as u64).ok_or_else(|| {
                    Error::Usage(format!("region at 0x{start:x} runs past the address space"))
                })?,
                offset: data.len(),
                zero: false,
            };
            if let Some(prev) = spans.last() {
                let prev: &Span = prev;
                if span.start < prev.end {
                    return Err(Error::Usage(format!(
                        "regions 0x{:x}-0x{:x} and 0x{:x}-0x{:x} overlap",
                        prev.start, prev.end, span.start, span.end
                    )));
                }
            }
            data.extend_from_slice(bytes);
            spans.push(span);
        }
        Ok(SnapshotMemory::new(pid, Arc::new(Image { spans, data })))
    }

    /// (start, end) of each region, in address order.
    pub fn regions(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.image.spans.iter().map(|s| (s.start, s.end))
    }

    /// Each region as (start, length, its bytes or None when all zero).
    fn pieces(&self) -> impl ExactSizeIterator<Item = (u64, u64, Option<&[u8]>)> + '_ {
        self.image.spans.iter().map(|s| {
            let len = s.end - s.start;
            let bytes = (!s.zero).then(|| &self.image.data[s.offset..s.offset + len as usize]);
            (s.start, len, bytes)
        })
    }

    pub fn region_count(&self) -> usize {
        self.image.spans.len()
    }

    /// Bytes of address space covered (zero regions included).
    pub fn total_bytes(&self) -> u64 {
        self.image.spans.iter().map(|s| s.end - s.start).sum()
    }

    /// Bytes actually stored (zero regions excluded).
    pub fn stored_bytes(&self) -> u64 {
        self.image
            .spans
            .iter()
            .filter(|s| !s.zero)
            .map(|s| s.end - s.start)
            .sum()
    }

    #[cold]
    fn fault(&self, addr: u64, len: usize) -> Error {
        Error::Memory {
            pid: self.pid,
            addr,
            len,
            source: std::io::Error::from_raw_os_error(libc::EFAULT),
        }
    }

    /// A read that does not fit in the first region: spans adjacent regions.
    #[cold]
    fn read_spanning(&self, first: usize, addr: u64, buf: &mut [u8]) -> Result<()> {
        let spans = &self.image.spans;
        let len = buf.len();
        let Some(end) = addr.checked_add(len as u64) else {
            return Err(self.fault(addr, len));
        };
        // Check the whole range is covered before writing anything.
        let mut i = first;
        let mut covered = spans[i].end;
        while covered < end {
            i += 1;
            match spans.get(i) {
                Some(s) if s.start == covered => covered = s.end,
                _ => return Err(self.fault(addr, len)),
            }
        }
        let mut at = addr;
        let mut done = 0;
        for s in &spans[first..=i] {
            let n = ((s.end - at) as usize).min(len - done);
            s.copy(&self.image.data, at, &mut buf[done..done + n]);
            done += n;
            at += n as u64;
        }
        Ok(())
    }
}

impl MemorySource for SnapshotMemory {
    #[inline]
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        if len == 0 {
            return Ok(());
        }
        let spans = &self.image.spans;
        let last = self.last.load(Ordering::Relaxed);
        let i = match spans.get(last) {
            Some(s) if s.start <= addr && addr < s.end => last,
            _ => {
                // The last span starting at or before `addr`.
                let after = spans.partition_point(|s| s.start <= addr);
                if after == 0 || addr >= spans[after - 1].end {
                    return Err(self.fault(addr, len));
                }
                self.last.store(after - 1, Ordering::Relaxed);
                after - 1
            }
        };
        let s = spans[i];
        if s.end - addr >= len as u64 {
            s.copy(&self.image.data, addr, buf);
            return Ok(());
        }
        self.read_spanning(i, addr, buf)
    }

    fn pid(&self) -> i32 {
        self.pid
    }
}

impl MemorySource for Snapshot {
    #[inline]
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.regions.read(addr, buf)
    }

    fn pid(&self) -> i32 {
        self.pid
    }
}

impl Snapshot {
    /// Pauses every thread of `pid`, copies its memory, resumes it, and writes
    /// the snapshot to `out` (through a temporary file renamed at the end, so
    /// a failed capture leaves no partial file behind).
    pub fn capture(pid: i32, interp: &Interpreter, out: &Path) -> Result<()> {
        Snapshot::capture_with(pid, interp, out, &CaptureOptions::default())
    }

    /// `capture` with explicit options.
    pub fn capture_with(
        pid: i32,
        interp: &Interpreter,
        out: &Path,
        options: &CaptureOptions,
    ) -> Result<()> {
        let process = ProcessInfo::open(pid)?;
        let tids = pause::thread_ids(pid)?;
        let paused = pause::pause(pid, &tids)?;
        let image = read_image(pid, options)?;
        drop(paused);
        write_capture(&process, interp, tids, image, out)
    }

    /// Captures a process whose threads the caller has already paused (with
    /// `pause::pause`), e.g. to read its stacks live and save it in the same
    /// stop. Without a pause the copy may be inconsistent.
    pub fn capture_paused(
        pid: i32,
        interp: &Interpreter,
        out: &Path,
        options: &CaptureOptions,
    ) -> Result<()> {
        let process = ProcessInfo::open(pid)?;
        let tids = pause::thread_ids(pid)?;
        let image = read_image(pid, options)?;
        write_capture(&process, interp, tids, image, out)
    }

    /// A snapshot built in memory (tests, fuzzing corpora).
    pub fn from_parts(meta: Metadata, memory: SnapshotMemory) -> Snapshot {
        Snapshot {
            interp: meta.interp,
            pid: meta.pid,
            tids: meta.tids,
            command_line: meta.command_line,
            captured_at_unix_ms: meta.captured_at_unix_ms,
            pysampler_version: meta.pysampler_version,
            mappings: meta.mappings,
            regions: SnapshotMemory::new(meta.pid, memory.image),
        }
    }

    /// Reads and validates a snapshot file.
    pub fn load(path: &Path) -> Result<Snapshot> {
        let file_error = |source| Error::File {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(file_error)?.len();
        if size > MAX_FILE_BYTES {
            return Err(invalid(
                path,
                format!("the file is {size} bytes, more than a snapshot can be"),
            ));
        }
        let data = std::fs::read(path).map_err(file_error)?;
        Snapshot::parse(data).map_err(|detail| invalid(path, detail))
    }

    /// Parses the bytes of a snapshot file (what `load` does after reading
    /// it; the entry point for fuzzing).
    pub fn from_bytes(data: Vec<u8>) -> Result<Snapshot> {
        Snapshot::parse(data).map_err(|detail| invalid(Path::new("<snapshot bytes>"), detail))
    }

    fn parse(data: Vec<u8>) -> std::result::Result<Snapshot, String> {
        let mut cur = Cursor {
            data: &data,
            pos: 0,
        };
        let magic = cur.take(8, "magic")?;
        if magic != MAGIC {
            return Err("not a pysampler snapshot (wrong magic bytes)".into());
        }
        let version = cur.u32("format version")?;
        if version != FORMAT_VERSION {
            return Err(format!(
                "snapshot format version {version}, but this pysampler reads version {FORMAT_VERSION}"
            ));
        }
        let flags = cur.u32("flags")?;
        if flags != 0 {
            return Err(format!("unknown flags 0x{flags:x}"));
        }
        let meta_len = cur.u64("metadata length")?;
        if meta_len > MAX_METADATA_BYTES {
            return Err(format!(
                "metadata length {meta_len} is over the limit of {MAX_METADATA_BYTES}"
            ));
        }
        let meta_bytes = cur.take(meta_len, "metadata")?;
        let meta: Metadata =
            serde_json::from_slice(meta_bytes).map_err(|e| format!("bad metadata: {e}"))?;
        let count = cur.u64("region count")?;
        if count > MAX_REGIONS {
            return Err(format!("{count} regions, over the limit of {MAX_REGIONS}"));
        }
        // Each region needs a header; refuse counts the file cannot hold before
        // reserving room for them.
        if count > cur.remaining() as u64 / REGION_HEADER_BYTES {
            return Err(format!(
                "{count} regions announced but only {} bytes follow (truncated file?)",
                cur.remaining()
            ));
        }
        let mut spans: Vec<Span> = Vec::with_capacity(count as usize);
        let mut stored_total: u64 = 0;
        for n in 0..count {
            let start = cur.u64("region start")?;
            let len = cur.u64("region length")?;
            let stored = cur.u64("region stored length")?;
            if len == 0 {
                return Err(format!("region {n} at 0x{start:x} is empty"));
            }
            if stored != len && stored != 0 {
                return Err(format!(
                    "region {n} at 0x{start:x} is {len} bytes long but stores {stored} (must be {len} or 0)"
                ));
            }
            let end = start
                .checked_add(len)
                .ok_or_else(|| format!("region {n} at 0x{start:x} runs past the address space"))?;
            if let Some(prev) = spans.last() {
                if start < prev.end {
                    return Err(format!(
                        "region {n} at 0x{start:x} overlaps or precedes the region before it (0x{:x}-0x{:x})",
                        prev.start, prev.end
                    ));
                }
            }
            stored_total = stored_total.saturating_add(stored);
            if stored_total > MAX_TOTAL_BYTES {
                return Err(format!(
                    "regions add up to more than the limit of {MAX_TOTAL_BYTES} bytes"
                ));
            }
            let offset = cur.pos;
            cur.take(stored, "region bytes")?;
            let zero = stored == 0;
            spans.push(Span {
                start,
                end,
                offset: if zero { 0 } else { offset },
                zero,
            });
        }
        if cur.remaining() != 0 {
            return Err(format!(
                "{} unexpected bytes after the last region",
                cur.remaining()
            ));
        }
        let memory = SnapshotMemory::new(meta.pid, Arc::new(Image { spans, data }));
        Ok(Snapshot::from_parts(meta, memory))
    }

    /// The metadata block this snapshot would be saved with.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            interp: self.interp.clone(),
            pid: self.pid,
            tids: self.tids.clone(),
            command_line: self.command_line.clone(),
            captured_at_unix_ms: self.captured_at_unix_ms,
            pysampler_version: self.pysampler_version.clone(),
            mappings: self.mappings.clone(),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        encode(&mut out, &self.metadata(), self.regions.pieces())
            .map_err(|e| Error::Usage(format!("could not encode snapshot: {e}")))?;
        Ok(out)
    }

    /// Writes the snapshot to `path` (atomically, through a temporary file).
    pub fn save(&self, path: &Path) -> Result<()> {
        let meta = self.metadata();
        write_atomically(path, |w| encode(w, &meta, self.regions.pieces()))
    }

    /// The memory, as a `MemorySource` the walker can own.
    pub fn memory(&self) -> SnapshotMemory {
        self.regions.clone()
    }

    /// A walker over this snapshot's memory.
    pub fn stack_reader(&self) -> StackReader {
        StackReader::new(self.interp.clone(), Box::new(self.memory()))
    }
}

fn invalid(path: &Path, detail: String) -> Error {
    Error::File {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a valid pysampler snapshot: {detail}"),
        ),
    }
}

/// Bounds-checked reading of the file's bytes.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, len: u64, what: &str) -> std::result::Result<&'a [u8], String> {
        if len > self.remaining() as u64 {
            return Err(format!(
                "truncated file: {what} needs {len} bytes at offset {} but only {} remain",
                self.pos,
                self.remaining()
            ));
        }
        let bytes = &self.data[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(bytes)
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Writes the format described in the module documentation.
fn encode<'a, W: Write>(
    w: &mut W,
    meta: &Metadata,
    regions: impl ExactSizeIterator<Item = (u64, u64, Option<&'a [u8]>)>,
) -> std::io::Result<()> {
    let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    if json.len() as u64 > MAX_METADATA_BYTES {
        return Err(std::io::Error::other("metadata is over the size limit"));
    }
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&0u32.to_le_bytes());
    header[16..24].copy_from_slice(&(json.len() as u64).to_le_bytes());
    w.write_all(&header)?;
    w.write_all(&json)?;
    w.write_all(&(regions.len() as u64).to_le_bytes())?;
    for (start, len, bytes) in regions {
        w.write_all(&start.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        match bytes {
            Some(bytes) => {
                debug_assert_eq!(bytes.len() as u64, len);
                w.write_all(&len.to_le_bytes())?;
                w.write_all(bytes)?;
            }
            None => w.write_all(&0u64.to_le_bytes())?,
        }
    }
    Ok(())
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::File {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Memory copied out of the process: regions in address order, and what
/// happened to each mapping.
struct CapturedImage {
    regions: Vec<(u64, Piece)>,
    mappings: Vec<MappingInfo>,
}

enum Piece {
    Data(Vec<u8>),
    Zero(u64),
}

fn write_capture(
    process: &ProcessInfo,
    interp: &Interpreter,
    tids: Vec<i32>,
    image: CapturedImage,
    out: &Path,
) -> Result<()> {
    let meta = Metadata {
        interp: interp.clone(),
        pid: process.pid,
        tids,
        command_line: process.command_line(),
        captured_at_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        pysampler_version: env!("CARGO_PKG_VERSION").to_string(),
        mappings: image.mappings,
    };
    write_atomically(out, |w| {
        encode(
            w,
            &meta,
            image.regions.iter().map(|(start, piece)| match piece {
                Piece::Data(b) => (*start, b.len() as u64, Some(b.as_slice())),
                Piece::Zero(n) => (*start, *n, None),
            }),
        )
    })
}

/// Why a mapping is not saved at all, or None to save it.
fn exclusion(m: &proc_maps::MapRange, options: &CaptureOptions) -> Option<String> {
    let name = m.filename().map(|p| p.to_string_lossy().into_owned());
    let pseudo = name.as_deref().filter(|n| n.starts_with('['));
    let file_backed = name.as_deref().is_some_and(|n| n.starts_with('/'));
    if !m.is_read() {
        return Some("not readable".into());
    }
    if matches!(pseudo, Some("[vvar]" | "[vvar_vclock]" | "[vsyscall]")) {
        return Some("kernel page, not readable from outside".into());
    }
    if m.is_exec() && !m.is_write() {
        return Some("code".into());
    }
    if file_backed && !m.is_write() && m.size() as u64 > options.max_readonly_file_region {
        return Some(format!(
            "read-only file mapping over {} bytes",
            options.max_readonly_file_region
        ));
    }
    None
}

/// Copies the memory to save. The caller keeps the process paused.
fn read_image(pid: i32, options: &CaptureOptions) -> Result<CapturedImage> {
    let maps = proc_maps::get_process_maps(pid).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoSuchProcess(pid),
        std::io::ErrorKind::PermissionDenied => crate::process::permissions::explain(pid),
        _ => Error::File {
            path: format!("/proc/{pid}/maps").into(),
            source: e,
        },
    })?;
    let mem = LiveMemory::new(pid).with_proc_mem_fallback();
    let mut builder = Builder {
        pid,
        regions: Vec::new(),
        pending_zero: None,
        stored: 0,
        options: options.clone(),
    };
    let mut mappings = Vec::with_capacity(maps.len());
    let mut chunk = vec![0u8; CHUNK as usize];
    for m in &maps {
        let start = m.start() as u64;
        let end = start + m.size() as u64;
        let mut info = MappingInfo {
            start,
            end,
            perms: m.flags.clone(),
            path: m.filename().map(|p| p.to_string_lossy().into_owned()),
            saved_bytes: 0,
            skipped: exclusion(m, options),
        };
        if info.skipped.is_none() && end > start {
            let saved = read_mapping(&mem, start, end, &mut chunk, &mut builder)?;
            info.saved_bytes = saved;
            if saved < end - start {
                info.skipped = Some(format!(
                    "{} of {} bytes could not be read",
                    end - start - saved,
                    end - start
                ));
            }
        }
        mappings.push(info);
    }
    builder.flush_zero()?;
    if builder.regions.is_empty() {
        if !crate::process::is_alive(pid) {
            return Err(Error::ProcessExited(pid));
        }
        return Err(Error::Usage(format!(
            "no memory of process {pid} could be read"
        )));
    }
    Ok(CapturedImage {
        regions: builder.regions,
        mappings,
    })
}

/// Reads `start..end` a chunk at a time, page by page inside chunks that
/// fail, leaving out the pages that cannot be read. Returns the bytes read.
fn read_mapping(
    mem: &LiveMemory,
    start: u64,
    end: u64,
    chunk: &mut [u8],
    out: &mut Builder,
) -> Result<u64> {
    let mut saved = 0;
    let mut at = start;
    while at < end {
        let chunk_end = (at + CHUNK).min(end);
        let buf = &mut chunk[..(chunk_end - at) as usize];
        match mem.read(at, buf) {
            Ok(()) => {
                out.push(at, buf)?;
                saved += buf.len() as u64;
            }
            Err(e) if e.is_process_gone() => return Err(e),
            Err(_) => {
                let mut page = at;
                while page < chunk_end {
                    let page_end = (page + PAGE).min(chunk_end);
                    let bytes = &mut buf[(page - at) as usize..(page_end - at) as usize];
                    match mem.read(page, bytes) {
                        Ok(()) => {
                            out.push(page, bytes)?;
                            saved += bytes.len() as u64;
                        }
                        Err(e) if e.is_process_gone() => return Err(e),
                        Err(_) => {}
                    }
                    page = page_end;
                }
            }
        }
        at = chunk_end;
    }
    Ok(saved)
}

/// Collects captured bytes into regions: adjacent bytes are merged, and runs
/// of zero pages long enough become zero regions.
struct Builder {
    pid: i32,
    regions: Vec<(u64, Piece)>,
    /// A run of zero pages not yet placed: (start, length).
    pending_zero: Option<(u64, u64)>,
    /// Bytes held in data regions.
    stored: u64,
    options: CaptureOptions,
}

impl Builder {
    /// Adds the bytes read at `addr`.
    fn push(&mut self, addr: u64, bytes: &[u8]) -> Result<()> {
        let mut at = addr;
        for page in bytes.chunks(PAGE as usize) {
            if page.iter().all(|b| *b == 0) {
                match &mut self.pending_zero {
                    Some((start, len)) if *start + *len == at => *len += page.len() as u64,
                    _ => {
                        self.flush_zero()?;
                        self.pending_zero = Some((at, page.len() as u64));
                    }
                }
            } else {
                self.flush_zero()?;
                self.push_data(at, page)?;
            }
            at += page.len() as u64;
        }
        Ok(())
    }

    /// Places the pending zero run: a zero region if long enough, else data.
    fn flush_zero(&mut self) -> Result<()> {
        let Some((start, len)) = self.pending_zero.take() else {
            return Ok(());
        };
        if len >= self.options.min_zero_run {
            if let Some((prev_start, Piece::Zero(prev_len))) = self.regions.last_mut() {
                if *prev_start + *prev_len == start {
                    *prev_len += len;
                    return Ok(());
                }
            }
            self.regions.push((start, Piece::Zero(len)));
            return Ok(());
        }
        let zeros = vec![0u8; len as usize];
        self.push_data(start, &zeros)
    }

    fn push_data(&mut self, addr: u64, bytes: &[u8]) -> Result<()> {
        self.stored += bytes.len() as u64;
        if self.stored > self.options.max_total_bytes {
            return Err(Error::Usage(format!(
                "the memory of process {} to save is over the limit of {} bytes (reached at 0x{addr:x}); a snapshot is meant for Python programs of ordinary size",
                self.pid, self.options.max_total_bytes
            )));
        }
        if let Some((start, Piece::Data(prev))) = self.regions.last_mut() {
            if *start + prev.len() as u64 == addr {
                prev.extend_from_slice(bytes);
                return Ok(());
            }
        }
        self.regions.push((addr, Piece::Data(bytes.to_vec())));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> SnapshotMemory {
        SnapshotMemory::from_regions(
            7,
            vec![
                (0x2000, (0..16u8).collect()),
                (0x1000, vec![0xaa; 8]),
                (0x2010, (16..32u8).collect()),
                (0x3000, vec![1, 2, 3, 4]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn reads_inside_and_across_adjacent_regions() {
        let m = memory();
        assert_eq!(m.read_u64(0x1000).unwrap(), u64::from_le_bytes([0xaa; 8]));
        let mut buf = [0u8; 8];
        m.read(0x200c, &mut buf).unwrap();
        assert_eq!(buf, [12, 13, 14, 15, 16, 17, 18, 19]);
        assert_eq!(
            m.read_vec(0x2000, 32).unwrap(),
            (0..32u8).collect::<Vec<_>>()
        );
        assert_eq!(m.read_u32(0x3000).unwrap(), 0x04030201);
        m.read(0x5000, &mut []).unwrap();
    }

    #[test]
    fn reads_outside_fail_with_efault() {
        let m = memory();
        for (addr, len) in [
            (0u64, 1usize),
            (0xfff, 2),
            (0x1004, 8),
            (0x2018, 16),
            (0x3002, 4),
            (0x4000, 1),
            (u64::MAX - 2, 8),
        ] {
            let mut buf = vec![0u8; len];
            match m.read(addr, &mut buf) {
                Err(Error::Memory {
                    source,
                    addr: a,
                    len: l,
                    pid,
                }) => {
                    assert_eq!(source.raw_os_error(), Some(libc::EFAULT));
                    assert_eq!((a, l, pid), (addr, len, 7));
                }
                other => panic!("read at 0x{addr:x}: {other:?}"),
            }
            assert!(buf.iter().all(|b| *b == 0), "no partial data");
        }
    }

    #[test]
    fn overlapping_regions_are_refused() {
        assert!(
            SnapshotMemory::from_regions(1, vec![(0x10, vec![0; 8]), (0x14, vec![0; 8])]).is_err()
        );
    }

    #[test]
    fn memory_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SnapshotMemory>();
        check::<Snapshot>();
    }

    #[test]
    fn arbitrary_prefixes_and_corruptions_never_panic() {
        use crate::interpreter::{GilSource, KnownObjects, Layout, Version};
        let interp = Interpreter {
            version: Version::new(3, 12, Some(1)),
            layout: Layout::default(),
            interp_head_ptr: 0x1000,
            gil: GilSource::Unknown,
            types: KnownObjects::default(),
            runtime_binary: "/usr/bin/python3".into(),
        };
        let meta = Metadata {
            interp,
            pid: 7,
            tids: vec![7],
            command_line: "python x.py".into(),
            captured_at_unix_ms: 1,
            pysampler_version: "test".into(),
            mappings: vec![],
        };
        let snap = Snapshot::from_parts(meta, memory());
        let bytes = snap.to_bytes().unwrap();
        let back = Snapshot::from_bytes(bytes.clone()).unwrap();
        assert_eq!(
            back.memory().read_vec(0x2000, 32).unwrap(),
            (0..32u8).collect::<Vec<_>>()
        );
        for cut in 0..bytes.len() {
            assert!(Snapshot::from_bytes(bytes[..cut].to_vec()).is_err());
        }
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..2000 {
            let mut b = bytes.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = (state as usize) % b.len();
                b[at] = (state >> 32) as u8;
            }
            if let Ok(s) = Snapshot::from_bytes(b) {
                let m = s.memory();
                for addr in [0u64, 0x1000, 0x2008, 0x3000, u64::MAX] {
                    let _ = m.read_u64(addr);
                }
            }
        }
    }
}
