//! A saved copy of a Python process's memory, and a `MemorySource` over it, so
//! the real walker runs without a live target (unit tests, fuzzing, benches).
//! Capturing one from a live process is pysampler's `process::capture`.
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
//! | M     | metadata: UTF-8 JSON, see [`Metadata`] (the `Interpreter`, pid, thread ids, command line, capture time, the maps, the executable, working directory and running threads) |
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
//!
//! # Reading
//!
//! [`SnapshotMemory`] keeps the regions sorted; a read finds its region by
//! binary search (or the region of the previous read), copies, and allocates
//! nothing. A read that runs from one region into an adjacent one works; a
//! read that touches any byte outside the regions fails with
//! `Error::Memory` carrying `EFAULT`, like a live read of unmapped memory.

mod format;
mod memory;
mod trim;

pub use memory::SnapshotMemory;

use crate::dump::{DumpHeader, ThreadActivity};
use crate::error::{Error, Result};
use crate::interpreter::Interpreter;
use crate::memory::MemorySource;
use crate::walk::StackReader;
use std::path::Path;

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
pub(crate) const REGION_HEADER_BYTES: u64 = 24;
/// Largest file `load` reads: the regions plus their headers and the metadata.
pub(crate) const MAX_FILE_BYTES: u64 =
    MAX_TOTAL_BYTES + MAX_METADATA_BYTES + MAX_REGIONS * REGION_HEADER_BYTES + 64;
/// Size of the fixed header before the metadata.
pub(crate) const HEADER_BYTES: usize = 24;

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
    /// What else `dump` shows of the process, so a snapshot renders as the
    /// process did (absent from files written before it was recorded).
    #[serde(default)]
    pub process: Option<ProcessFacts>,
}

/// Facts about a captured process that only the OS knew at capture time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessFacts {
    /// The executable's path as the process saw it (`/proc/PID/exe`).
    pub exe: String,
    /// Its working directory, which short file names are relative to.
    #[serde(default)]
    pub cwd: Option<String>,
    /// (tid, running) for each thread just before the capture paused them;
    /// None when that was not known (the threads were already paused).
    #[serde(default)]
    pub thread_activity: Option<Vec<(i32, bool)>>,
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
    pub process: Option<ProcessFacts>,
    regions: SnapshotMemory,
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
            process: meta.process,
            regions: memory.with_pid(meta.pid),
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
            return Err(format::invalid(
                path,
                format!("the file is {size} bytes, more than a snapshot can be"),
            ));
        }
        let data = std::fs::read(path).map_err(file_error)?;
        format::parse(data).map_err(|detail| format::invalid(path, detail))
    }

    /// Parses the bytes of a snapshot file (what `load` does after reading
    /// it; the entry point for fuzzing).
    pub fn from_bytes(data: Vec<u8>) -> Result<Snapshot> {
        format::parse(data).map_err(|detail| format::invalid(Path::new("<snapshot bytes>"), detail))
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
            process: self.process.clone(),
        }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        format::encode(&mut out, &self.metadata(), self.regions.pieces())
            .map_err(|e| Error::SnapshotEncode(e.to_string()))?;
        Ok(out)
    }

    /// Writes the snapshot to `path` (atomically, through a temporary file).
    pub fn save(&self, path: &Path) -> Result<()> {
        write(path, &self.metadata(), self.regions.pieces())
    }

    /// The memory, as a `MemorySource` the walker can own.
    pub fn memory(&self) -> SnapshotMemory {
        self.regions.clone()
    }

    /// The header `dump` shows for this process. Without recorded facts the
    /// executable is unknown ("?", as for a live process whose link is unreadable).
    pub fn dump_header(&self) -> DumpHeader {
        DumpHeader {
            pid: self.pid,
            command_line: self.command_line.clone(),
            exe: self
                .process
                .as_ref()
                .map_or_else(|| "?".to_string(), |p| p.exe.clone()),
        }
    }

    /// Which threads were running at capture time (all idle when unknown).
    pub fn thread_activity(&self) -> ThreadActivity {
        ThreadActivity(
            self.process
                .as_ref()
                .and_then(|p| p.thread_activity.clone())
                .unwrap_or_default(),
        )
    }

    /// The process's working directory, for `FileNames`.
    pub fn cwd(&self) -> Option<String> {
        self.process.as_ref().and_then(|p| p.cwd.clone())
    }

    /// A walker over this snapshot's memory.
    pub fn stack_reader(&self) -> StackReader {
        StackReader::new(self.interp.clone(), Box::new(self.memory()))
    }
}

/// Writes a snapshot file made of `meta` and `regions` (start, length, the
/// bytes or None when all zero; sorted, not overlapping) to `path`, through a
/// temporary file renamed at the end, so a failed write leaves no partial file.
pub fn write<'a>(
    path: &Path,
    meta: &Metadata,
    regions: impl ExactSizeIterator<Item = (u64, u64, Option<&'a [u8]>)>,
) -> Result<()> {
    format::write_atomically(path, |w| format::encode(w, meta, regions))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn memory() -> SnapshotMemory {
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

    pub(crate) fn metadata() -> Metadata {
        use crate::interpreter::{Families, GilSource, KnownObjects, Layout, Version};
        let version = Version::new(3, 12, Some(1));
        let interp = Interpreter {
            families: Families::of(&version).unwrap(),
            version,
            layout: Layout::default(),
            interp_head_ptr: 0x1000,
            gil: GilSource::Unknown,
            types: KnownObjects::default(),
            runtime_binary: "/usr/bin/python3".into(),
        };
        Metadata {
            interp,
            pid: 7,
            tids: vec![7],
            command_line: "python x.py".into(),
            captured_at_unix_ms: 1,
            pysampler_version: "test".into(),
            mappings: vec![],
            process: Some(ProcessFacts {
                exe: "/usr/bin/python3.12".into(),
                cwd: Some("/srv".into()),
                thread_activity: Some(vec![(7, true)]),
            }),
        }
    }

    #[test]
    fn arbitrary_prefixes_and_corruptions_never_panic() {
        let snap = Snapshot::from_parts(metadata(), memory());
        let bytes = snap.to_bytes().unwrap();
        let back = Snapshot::from_bytes(bytes.clone()).unwrap();
        assert_eq!(back.process, snap.process);
        assert_eq!(back.dump_header().exe, "/usr/bin/python3.12");
        assert!(back.thread_activity().is_active(Some(7)));
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
