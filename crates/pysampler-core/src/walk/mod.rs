//! From thread states to named frames: the part of pysampler that understands
//! CPython's memory.

pub mod asyncio;
pub mod code;
pub mod dict;
pub mod frames;
pub mod linetable;
pub mod locals;
pub mod native_ids;
pub mod objects;
pub mod thread_names;
pub mod threads;
pub mod values;

use crate::error::Result;
use crate::interpreter::Interpreter;
use crate::memory::MemorySource;
use code::CodeCache;
use frames::RawFrame;
pub use linetable::Location;
use locals::Local;
use objects::ObjectReader;
use std::sync::Arc;
use thread_names::ThreadNames;
pub use values::LocalsDetail;

/// One frame with its names resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub code: Arc<code::CodeInfo>,
    pub line: u32,
    /// 1-based start column of the instruction (3.11+), 0 when unknown.
    pub column: u32,
    /// Filled only when locals were asked for.
    pub locals: Vec<Local>,
}

/// One thread's stack, innermost frame first.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadStack {
    pub ident: u64,
    pub native_id: Option<i32>,
    pub name: Option<String>,
    pub owns_gil: bool,
    pub frames: Vec<Frame>,
    /// The stack was deeper than `frames::MAX_DEPTH`.
    pub truncated: bool,
    /// Frames that could not be read (freed or changing under us).
    pub unreadable_frames: usize,
}

/// Reads every thread's stack of one interpreter, keeping what can be reused
/// between reads (code objects, thread names, the tid offset).
pub struct StackReader {
    pub interp: Interpreter,
    pub mem: Box<dyn MemorySource + Send>,
    codes: CodeCache,
    names: ThreadNames,
    walker: frames::FrameWalker,
    /// Offset of the tid in glibc's `struct pthread` (≤3.10), once found.
    tid_offset: Option<usize>,
    tid_offset_attempts: u32,
    fingerprint_buffers: FingerprintBuffers,
    /// The thread-state fields to read, resolved once; None when the
    /// layout lacks one (each read then reports which).
    state_plan: Option<threads::StatePlan>,
    /// The same for frames.
    frame_plan: Option<frames::FramePlan>,
}

/// What `fingerprints` reads into, kept from one sample to the next.
#[derive(Default)]
struct FingerprintBuffers {
    headers: Vec<u8>,
    refs: Vec<u64>,
    heads: Vec<u8>,
}

impl StackReader {
    pub fn new(interp: Interpreter, mem: Box<dyn MemorySource + Send>) -> StackReader {
        StackReader {
            mem,
            codes: CodeCache::default(),
            names: ThreadNames::default(),
            walker: frames::FrameWalker::default(),
            tid_offset: None,
            tid_offset_attempts: 0,
            fingerprint_buffers: FingerprintBuffers::default(),
            state_plan: threads::StatePlan::new(&interp).ok(),
            frame_plan: frames::FramePlan::new(&interp).ok(),
            interp,
        }
    }

    fn state_plan(&self) -> Result<threads::StatePlan> {
        match self.state_plan {
            Some(plan) => Ok(plan),
            None => threads::StatePlan::new(&self.interp),
        }
    }

    fn frame_plan(&self) -> Result<frames::FramePlan> {
        match self.frame_plan {
            Some(plan) => Ok(plan),
            None => frames::FramePlan::new(&self.interp),
        }
    }

    /// Whether the main interpreter runs with a GIL (false only for a
    /// free-threaded build that has not turned its GIL back on).
    pub fn gil_enabled(&mut self) -> Result<bool> {
        let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
        match threads::interpreters(&reader)?.first() {
            Some(interp) => threads::gil_enabled(&reader, interp),
            None => Ok(!self.interp.version.free_threaded),
        }
    }

    /// The threads of every interpreter, with OS ids, GIL ownership and
    /// names. `os_tids` lists the process's threads; it is called only when
    /// the version does not record OS ids and their offset is not known yet.
    pub fn threads(&mut self, os_tids: impl FnOnce() -> Vec<i32>) -> Result<Vec<ThreadEntry>> {
        self.thread_list(os_tids, true)
    }

    /// As `threads`; `with_top_frames: false` may leave `top_frame` unread
    /// (0) for callers that read each thread with `fresh_raw_frames`.
    pub fn thread_list(
        &mut self,
        os_tids: impl FnOnce() -> Vec<i32>,
        with_top_frames: bool,
    ) -> Result<Vec<ThreadEntry>> {
        let plan = self.state_plan()?;
        let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
        let mut entries = Vec::new();
        let mut os_tids = Some(os_tids);
        for interp in threads::interpreters(&reader)? {
            let states = threads::thread_states(&reader, &plan, &interp, with_top_frames)?;
            let holder = threads::gil_holder(&reader, &interp).unwrap_or(None);
            let need_offset = self.tid_offset.is_none() && self.tid_offset_attempts < 10;
            if need_offset && !states.iter().all(|s| s.native_id.is_some()) {
                if let Some(list) = os_tids.take().map(|f| f()).filter(|l| !l.is_empty()) {
                    let idents: Vec<u64> = states.iter().map(|s| s.ident).collect();
                    self.tid_offset = native_ids::find_tid_offset(reader.mem, &idents, &list);
                    self.tid_offset_attempts += 1;
                }
            }
            self.names.refresh(&reader, interp.addr, &states);
            for state in states {
                let tid = state.native_id.or_else(|| {
                    let offset = self.tid_offset?;
                    native_ids::tid_at(reader.mem, state.ident, offset)
                });
                // Before `threading` is imported, the main thread has no
                // registered name; Python will call it MainThread.
                let is_main = tid == Some(reader.mem.pid());
                let name = self
                    .names
                    .get(state.ident)
                    .or_else(|| is_main.then(|| Arc::from("MainThread")));
                entries.push(ThreadEntry {
                    state,
                    tid,
                    owns_gil: holder == Some(state.addr),
                    name,
                });
            }
        }
        Ok(entries)
    }

    /// The frames of one thread as found in memory (the part of a sample
    /// that must be read while the thread is paused). Returns whether the
    /// stack was cut at `frames::MAX_DEPTH`.
    pub fn raw_frames(&mut self, thread: &ThreadEntry, out: &mut Vec<RawFrame>) -> Result<bool> {
        let plan = self.frame_plan()?;
        let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
        self.walker.walk(&reader, &plan, &thread.state, out)
    }

    /// As `raw_frames`, first reading the thread's innermost frame again:
    /// the list was read before the thread was paused, and a frame it named
    /// then may be gone (and its memory reused) by now.
    pub fn fresh_raw_frames(
        &mut self,
        thread: &ThreadEntry,
        out: &mut Vec<RawFrame>,
    ) -> Result<bool> {
        let (state_plan, frame_plan) = (self.state_plan()?, self.frame_plan()?);
        let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
        let state = threads::reread(&reader, &state_plan, &thread.state)?;
        self.walker.walk(&reader, &frame_plan, &state, out)
    }

    /// Makes sure code object `code` is cached as it is now (reading it
    /// unless it is there with this fingerprint), so that resolving frames
    /// of it afterwards needs no reads: a pausing sampler calls it while
    /// the thread is held, and maps frames to names after resuming it.
    pub fn cache_code(&mut self, code: u64, fingerprint: u64) -> Result<()> {
        let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
        self.codes
            .get_checked(&reader, code, fingerprint)
            .map(|_| ())
    }

    /// The code and location of a raw frame; `None` for a frame CPython
    /// itself does not show (3.11+ frames whose first instructions have not run).
    pub fn resolve(&mut self, frame: &RawFrame) -> Result<Option<(Arc<code::CodeInfo>, Location)>> {
        self.resolve_checked(frame, None)
    }

    /// As `resolve`, checking a cached code object against the fingerprint
    /// taken while the thread was paused (see `fingerprints`).
    pub fn resolve_checked(
        &mut self,
        frame: &RawFrame,
        fingerprint: Option<u64>,
    ) -> Result<Option<(Arc<code::CodeInfo>, Location)>> {
        let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
        let code = match fingerprint {
            Some(fp) => self.codes.get_checked(&reader, frame.code, fp)?,
            None => self.codes.get(&reader, frame.code)?,
        };
        let incomplete = !frame.is_generator
            && frame.offset >= 0
            && (frame.offset as u64) < code.first_traceable as u64;
        if incomplete || code.is_interpreter_shim() {
            return Ok(None);
        }
        let location = code.location(self.interp.families.line_table, frame.offset);
        Ok(Some((code, location)))
    }

    /// Fingerprints of the code objects at `codes` (0 for one that could
    /// not be read): their identifying fields and the heads of the objects
    /// those name, in two batched reads. Taken while threads are paused,
    /// they tell whether a cached code object is still the one running.
    pub fn fingerprints(&mut self, codes: &[u64], out: &mut Vec<u64>) {
        let (start, len) = code::fingerprint_span(&self.interp.layout);
        let len = len.max(1);
        let FingerprintBuffers {
            headers,
            refs,
            heads,
        } = &mut self.fingerprint_buffers;
        headers.clear();
        headers.resize(len * codes.len(), 0);
        let mut requests: Vec<(u64, &mut [u8])> = codes
            .iter()
            .zip(headers.chunks_mut(len))
            .map(|(c, b)| (c.wrapping_add(start), b))
            .collect();
        let done = self.mem.read_many(&mut requests).min(codes.len());
        drop(requests);
        refs.clear();
        for header in headers.chunks(len).take(done) {
            refs.extend(code::content_refs(&self.interp, header, start));
        }
        code::read_heads(self.mem.as_ref(), refs, heads);
        let per_code = 3 * code::CONTENT_HEAD.1;
        out.clear();
        for (i, header) in headers.chunks(len).enumerate().take(codes.len()) {
            out.push(match i < done {
                true => code::with_contents(
                    code::fingerprint(&self.interp, header, start),
                    heads.get(i * per_code..(i + 1) * per_code).unwrap_or(&[]),
                ),
                false => 0,
            });
        }
    }

    /// Reads every thread's whole stack (what `dump` shows). `os_tids` as in
    /// `threads`; `locals` says whether to read local variables (`true`
    /// is `LocalsDetail::Short`) and how much of each value.
    pub fn read(
        &mut self,
        os_tids: &[i32],
        locals: impl Into<LocalsDetail>,
    ) -> Result<Vec<ThreadStack>> {
        self.read_holding(os_tids, locals, |_| Ok(()))
    }

    /// As `read`, calling `hold` before each thread's stack is read and
    /// dropping what it returns after (e.g. a pause of that thread alone).
    pub fn read_holding<G>(
        &mut self,
        os_tids: &[i32],
        locals: impl Into<LocalsDetail>,
        mut hold: impl FnMut(&ThreadEntry) -> Result<G>,
    ) -> Result<Vec<ThreadStack>> {
        let limits = locals.into().limits();
        let entries = self.threads(|| os_tids.to_vec())?;
        let mut stacks = Vec::with_capacity(entries.len());
        let mut raw = Vec::new();
        for entry in entries {
            let _held = hold(&entry)?;
            raw.clear();
            let truncated = self.fresh_raw_frames(&entry, &mut raw)?;
            let mut stack = ThreadStack {
                ident: entry.state.ident,
                native_id: entry.tid,
                name: entry.name.as_deref().map(str::to_string),
                owns_gil: entry.owns_gil,
                frames: Vec::with_capacity(raw.len()),
                truncated,
                unreadable_frames: 0,
            };
            for frame in &raw {
                let (code, at) = match self.resolve(frame) {
                    Ok(Some(found)) => found,
                    Ok(None) => continue,
                    Err(_) => {
                        stack.unreadable_frames += 1;
                        continue;
                    }
                };
                let locals = match &limits {
                    Some(limits) => {
                        let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
                        locals::read_locals(&reader, frame.addr, frame.code, limits)
                            .unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                stack.frames.push(Frame {
                    code,
                    line: at.line,
                    column: at.column,
                    locals,
                });
            }
            stacks.push(stack);
        }
        Ok(stacks)
    }
}

impl StackReader {
    /// Every event loop's pending tasks (`dump --async`). `debug` is the
    /// target's `.AsyncioDebug` section where it has one (3.14+), as the
    /// caller found it in the process's mapped files.
    pub fn read_tasks(
        &mut self,
        debug: Option<&asyncio::AsyncioDebug>,
    ) -> Result<asyncio::view::AsyncTasks> {
        let plan = self.state_plan()?;
        let read = {
            let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
            let interps = threads::interpreters(&reader)?;
            let mut states = Vec::new();
            for interp in &interps {
                states.extend(threads::thread_states(&reader, &plan, interp, true)?);
            }
            let read = asyncio::read_tasks(&reader, debug, &interps, &states)?;
            (read, states)
        };
        let (read, states) = read;
        // A running task's frames are its thread's, down to its coroutine.
        let mut stacks: Vec<Vec<RawFrame>> = Vec::new();
        if read.tasks.iter().any(|t| t.running.is_some()) {
            for state in &states {
                let mut raw = Vec::new();
                let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
                let frame_plan = self.frame_plan()?;
                if self
                    .walker
                    .walk(&reader, &frame_plan, state, &mut raw)
                    .is_ok()
                {
                    stacks.push(raw);
                }
            }
        }
        let thread_frames = |coro_frame: u64| {
            stacks.iter().find_map(|raw| {
                let at = raw.iter().position(|f| f.addr == coro_frame)?;
                Some(raw[..=at].to_vec())
            })
        };
        let resolve = |frame: &RawFrame| {
            let (code, at) = self.resolve(frame).ok().flatten()?;
            Some(Frame {
                code,
                line: at.line,
                column: at.column,
                locals: Vec::new(),
            })
        };
        Ok(asyncio::view::build(&read, resolve, thread_frames))
    }
}

impl StackReader {
    /// Every pending task's stack, raw (`record --async`): at most `limit`
    /// tasks; the bool says some were left out. `threads` are this
    /// sample's thread states (3.14+ keep their tasks on them). `group`:
    /// the read group in progress, the tasks' groups are keyed below it.
    pub fn read_task_stacks(
        &mut self,
        debug: Option<&asyncio::AsyncioDebug>,
        threads: &[ThreadEntry],
        limit: usize,
        group: u64,
    ) -> Result<(Vec<asyncio::stacks::TaskStack>, bool)> {
        let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
        let interps = threads::interpreters(&reader)?;
        let states: Vec<threads::ThreadState> = threads.iter().map(|t| t.state).collect();
        let read = asyncio::read_some_tasks(&reader, debug, &interps, &states, limit, Some(group))?;
        Ok((asyncio::stacks::build(&read), read.cut))
    }
}

/// A thread found in the interpreter, before its frames are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadEntry {
    pub state: threads::ThreadState,
    /// OS thread id, when known.
    pub tid: Option<i32>,
    pub owns_gil: bool,
    pub name: Option<Arc<str>>,
}
