//! Capturing a snapshot of a live process: pause it, copy its readable
//! memory, resume it, write the file (whose format is the core's
//! `pysampler_core::snapshot`).
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

use crate::error::{Error, Result};
use crate::process::memory::{LiveMemory, MemorySource};
use crate::process::{pause, task_state, ProcessInfo};
use pysampler_core::interpreter::Interpreter;
use pysampler_core::snapshot::{self, MappingInfo, Metadata, ProcessFacts, MAX_TOTAL_BYTES};
use std::path::Path;

const PAGE: u64 = 4096;
/// Chunk size used when a whole mapping cannot be read at once.
const CHUNK: u64 = 1 << 20;

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

/// Pauses every thread of `pid`, copies its memory, resumes it, and writes
/// the snapshot to `out` (through a temporary file renamed at the end, so
/// a failed capture leaves no partial file behind).
pub fn capture(pid: i32, interp: &Interpreter, out: &Path) -> Result<()> {
    capture_with(pid, interp, out, &CaptureOptions::default())
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
    // Before pausing: a paused thread is never running.
    let activity = tids
        .iter()
        .filter_map(|t| Some((*t, task_state::is_running(pid, *t)?)))
        .collect();
    let paused = pause::pause(pid, &tids)?;
    let image = read_image(pid, options)?;
    drop(paused);
    write_capture(&process, interp, tids, Some(activity), image, out)
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
    // Which threads ran before the caller paused them is not known here.
    write_capture(&process, interp, tids, None, image, out)
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
    thread_activity: Option<Vec<(i32, bool)>>,
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
        process: Some(ProcessFacts {
            exe: process.exe.clone(),
            cwd: process.cwd.clone(),
            thread_activity,
        }),
    };
    let regions = image.regions.iter().map(|(start, piece)| match piece {
        Piece::Data(b) => (*start, b.len() as u64, Some(b.as_slice())),
        Piece::Zero(n) => (*start, *n, None),
    });
    snapshot::write(out, &meta, regions)
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
        return Err(Error::NothingReadable { pid });
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
            return Err(Error::SnapshotTooLarge {
                pid: self.pid,
                limit: self.options.max_total_bytes,
                addr,
            });
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
