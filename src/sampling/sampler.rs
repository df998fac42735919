//! The per-process sampler: each tick, find the Python threads and, one at a
//! time, pause each (unless non-blocking), copy its frame chain, map its
//! frames to interned ids through the code cache (reading code objects seen
//! for the first time while the thread still holds them), and resume it.

use crate::aggregate::{FrameId, FrameInfo, FrameTable, ProcessSummary};
use crate::error::{Error, Result};
use crate::process::locate::locate_interpreter;
use crate::process::memory::LiveMemory;
use crate::process::rseq::RseqCpus;
use crate::process::{pause, ProcessInfo};
use crate::sampling::activity::Activity;
use crate::sampling::sampler_cpus::{self, SamplerCpus};
use crate::sampling::schedule::{self, Schedule};
use crate::sampling::tasks::{self, TaskSampling};
use crate::sampling::{EndReason, Event, SamplerConfig, ThreadSample};
use crossbeam_channel::Sender;
use foldhash::HashMap;
use parking_lot::Mutex;
use pysampler_core::memory::prefetch::Prefetching;
use pysampler_core::walk::frames::RawFrame;
use pysampler_core::walk::{StackReader, ThreadEntry};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Errors in a row after which a process is considered unreadable.
const MAX_CONSECUTIVE_ERRORS: u32 = 1000;

/// Keys of the read groups (process::prefetch) other than one thread's
/// walk, which is keyed by its thread-state address (never these values).
const THREAD_LIST_GROUP: u64 = u64::MAX;
const WHOLE_SAMPLE_GROUP: u64 = u64::MAX - 1;
/// The task registry's; each block of tasks has one keyed below it.
const TASKS_GROUP: u64 = u64::MAX - 2;

/// One thread's raw frames, left in `Sampler::raw` (whether the stack was
/// cut, or why they could not be read), and what holds the thread.
type ThreadRead = (Result<bool>, pause::Held);

/// rseq CPUs checked against the stat file before they stand for it.
const RSEQ_CHECKS: u32 = 8;

/// Code objects remembered per process before the cache starts over.
const MAX_CACHED_CODES: usize = 100_000;

/// What the sampler knows about one code address.
#[derive(Default)]
struct CodeEntry {
    fingerprint: u64,
    /// Instruction offset → frame id (None: a frame CPython does not show).
    ids: HashMap<i64, Option<FrameId>>,
}

/// Samples one process.
pub struct Sampler {
    pub process: ProcessInfo,
    reader: StackReader,
    frames: Arc<Mutex<FrameTable>>,
    /// Code address → what was resolved for it: the hot path's cache, keyed
    /// further by instruction offset, valid while the code object's
    /// fingerprint is unchanged.
    codes: HashMap<u64, CodeEntry>,
    /// Distinct code addresses of this sample and their fingerprints.
    sample_codes: Vec<u64>,
    sample_fingerprints: Vec<u64>,
    new_fingerprints: Vec<u64>,
    activity: Activity,
    /// When pausing, keeps the sampler off the CPU of the thread it pauses.
    cpus: SamplerCpus,
    /// Where threads publish their CPU in their own memory, if they do
    /// (looked up when pausing, once the sampler thread starts).
    rseq: Option<RseqCpus>,
    /// rseq CPUs checked against the stat file's so far, and how many agreed.
    rseq_checks: (u32, u32),
    raw: Vec<RawFrame>,
    /// `--async`: the tasks' state between ticks.
    tasks: TaskSampling,
    /// `--async`: each kept thread's raw frames of this tick, to find the
    /// running task's in.
    thread_raws: Vec<Vec<RawFrame>>,
}

impl Sampler {
    /// Attaches to `pid`: finds its interpreter (no pausing yet).
    pub fn attach(pid: i32, frames: Arc<Mutex<FrameTable>>) -> Result<Sampler> {
        let process = ProcessInfo::open(pid)?;
        let mem = LiveMemory::new(pid).with_proc_mem_fallback();
        let interp = locate_interpreter(&process, &mem).map_err(|e| process.explain(e))?;
        let reader = StackReader::new(interp, Box::new(Prefetching::new(mem)));
        Ok(Sampler {
            process,
            reader,
            frames,
            codes: HashMap::default(),
            sample_codes: Vec::new(),
            sample_fingerprints: Vec::new(),
            new_fingerprints: Vec::new(),
            activity: Activity::default(),
            cpus: SamplerCpus::new(),
            rseq: None,
            rseq_checks: (0, 0),
            raw: Vec::new(),
            tasks: TaskSampling::default(),
            thread_raws: Vec::new(),
        })
    }

    /// Whether the interpreter runs with a GIL (a free-threaded build may
    /// not); true when that cannot be read, so nothing is refused on a guess.
    pub fn gil_enabled(&mut self) -> bool {
        self.reader.gil_enabled().unwrap_or(true)
    }

    pub fn version(&self) -> &pysampler_core::interpreter::Version {
        &self.reader.interp.version
    }

    /// Whether the interpreter is initialised far enough to have threads.
    pub fn ready(&mut self) -> bool {
        self.reader
            .threads(Vec::new)
            .map(|t| !t.is_empty())
            .unwrap_or(false)
    }

    pub fn summary(&self) -> ProcessSummary {
        ProcessSummary {
            pid: self.process.pid,
            command_line: self.process.command_line(),
            cwd: self.process.cwd.clone(),
            python_version: self.reader.interp.version.to_string(),
        }
    }

    /// Takes one sample of every thread that passes the filters.
    ///
    /// Reads come in groups that repeat from one sample to the next, each
    /// served from one batched copy made at its start (process::prefetch):
    /// without pausing, the whole sample is one group; when pausing, the
    /// thread list is one, and each thread's walk another, begun once the
    /// thread is held so that nothing read before the pause is used after.
    pub fn sample(&mut self, config: &SamplerConfig) -> Result<Vec<ThreadSample>> {
        self.thread_raws.clear();
        let first = match config.blocking {
            true => THREAD_LIST_GROUP,
            false => WHOLE_SAMPLE_GROUP,
        };
        self.reader.mem.begin_group(Some(first));
        let result = self.sample_groups(config);
        self.reader.mem.begin_group(None);
        result
    }

    fn sample_groups(&mut self, config: &SamplerConfig) -> Result<Vec<ThreadSample>> {
        let pid = self.process.pid;
        if config.blocking {
            pause::release_late_stoppers();
        }
        // When pausing, each thread's innermost frame is read once it is
        // held (`fresh_raw_frames`), not here.
        let entries = self.reader.thread_list(
            || pause::thread_ids(pid).unwrap_or_default(),
            !config.blocking,
        )?;
        // The GIL holder's CPU, read in the thread list's group (a read the
        // next sample's batched copy makes too).
        let holder_cpu = match (config.blocking, self.rseq) {
            (true, Some(rseq)) => entries
                .iter()
                .find(|e| e.owns_gil)
                .and_then(|e| rseq.cpu(&*self.reader.mem, e.state.ident)),
            _ => None,
        };
        if config.blocking {
            self.reader.mem.begin_group(None);
        }
        // Activity first: a paused thread never looks like it is running.
        let active: Vec<bool> = entries
            .iter()
            .map(|e| self.is_active(e, config.blocking, holder_cpu))
            .collect();
        let keep: Vec<bool> = entries
            .iter()
            .zip(&active)
            .map(|(e, a)| (config.include_idle || *a) && (!config.gil_only || e.owns_gil))
            .collect();
        if config.blocking {
            self.keep_off_paused_thread(&entries, &active, &keep);
        }
        let mut out = Vec::new();
        let (mut tried, mut last_error) = (0usize, None);
        self.sample_codes.clear();
        self.sample_fingerprints.clear();
        for (i, entry) in entries.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            let Some((raw, held)) = self.read_thread(entry, active[i], config)? else {
                continue; // it exited
            };
            // Resumed as soon as its memory is copied: planning the next
            // copy and naming the frames need no reads. A paused thread's CPU
            // idles, and on a VM one idle for more than ~10 µs halts, which
            // made resuming it cost ~11 µs more (measured: 3.9's window of
            // ~19 µs against 3.12's ~9).
            drop(held);
            if config.blocking {
                self.reader.mem.begin_group(None);
            }
            tried += 1;
            match raw.and_then(|truncated| self.frame_ids(truncated)) {
                Ok((frames, truncated)) => {
                    if config.async_tasks {
                        self.thread_raws.push(self.raw.clone());
                    }
                    out.push(ThreadSample {
                        tid: entry.tid,
                        ident: entry.state.ident,
                        name: entry.name.clone(),
                        active: active[i],
                        owns_gil: entry.owns_gil,
                        frames,
                        truncated,
                    });
                }
                // One thread whose memory changed under us (it was ending,
                // or could not be paused) is left out of this sample; the
                // sample fails only when no thread could be read.
                Err(e) => last_error = Some(e),
            }
        }
        match last_error {
            Some(e) if out.is_empty() && tried > 0 => Err(e),
            _ => {
                if config.async_tasks {
                    self.sample_tasks(&entries, &mut out);
                }
                Ok(out)
            }
        }
    }

    /// `--async`: a sample per pending task (sampling::tasks), appended to
    /// `out`, whose samples are the kept threads' in `thread_raws` order.
    /// A tick whose tasks cannot be read keeps its thread samples.
    fn sample_tasks(&mut self, entries: &[ThreadEntry], out: &mut Vec<ThreadSample>) {
        let debug = self.tasks.debug(&self.process, &self.reader);
        self.reader.mem.begin_group(Some(TASKS_GROUP));
        let read = self.reader.read_task_stacks(
            debug.as_ref(),
            entries,
            tasks::MAX_TASKS_PER_TICK,
            TASKS_GROUP,
        );
        let (stacks, cut) = match read {
            Ok(read) => read,
            Err(e) => {
                self.reader.mem.begin_group(None);
                self.tasks.failed.get_or_insert(e.to_string());
                return;
            }
        };
        if cut {
            self.tasks.cut = true;
        }
        let raws = std::mem::take(&mut self.thread_raws);
        let places = tasks::frame_places(&raws);
        for stack in stacks {
            self.raw.clear();
            let thread = places.get(&stack.task_frame).copied();
            match thread.and_then(|(i, at)| raws.get(i)?.get(..=at)) {
                Some(inner) => self.raw.extend_from_slice(inner),
                None => self.raw.extend_from_slice(&stack.own),
            }
            self.raw.extend_from_slice(&stack.awaiters);
            // A task whose code cannot be read (freed under us) is left out.
            let Ok((frames, _)) = self.cache_raw_codes().and_then(|()| self.frame_ids(false))
            else {
                continue;
            };
            match thread.and_then(|(i, _)| out.get_mut(i)) {
                Some(sample) => {
                    sample.frames = frames;
                    sample.truncated |= stack.truncated;
                }
                None => out.push(ThreadSample {
                    tid: None,
                    ident: stack.event_loop,
                    name: Some(tasks::TASKS_THREAD.into()),
                    active: true,
                    owns_gil: false,
                    frames,
                    truncated: stack.truncated,
                }),
            }
        }
        self.thread_raws = raws;
        self.reader.mem.begin_group(None);
    }

    /// Reads one thread's frames, held still for the read when pausing:
    /// - a thread asleep in the kernel cannot change its own stack, so it is
    ///   read without a pause, and the read stands if its switch count
    ///   (sampling::activity) is the same afterwards, i.e. it did not run;
    ///   if it did, it is read again, paused;
    /// - any other thread is paused (one at a time, see process::pause) for
    ///   as long as its frames are read and new code objects resolved.
    ///
    /// None: the thread is gone. The `Held` returned resumes it when dropped;
    /// the read group of a held thread is still open (the caller ends it).
    fn read_thread(
        &mut self,
        entry: &ThreadEntry,
        active: bool,
        config: &SamplerConfig,
    ) -> Result<Option<ThreadRead>> {
        let pid = self.process.pid;
        let Some(tid) = entry.tid.filter(|_| config.blocking) else {
            // Not pausing, or no OS id to pause it by: read as it runs.
            let raw = match config.blocking {
                true => self.grouped_raw_frames(entry),
                false => self.raw_frames(entry, false),
            };
            return Ok(Some((raw, pause::Held::Running)));
        };
        let codes_before = self.sample_codes.len();
        if let Some(count) = (!active).then(|| self.activity.asleep_count(tid)).flatten() {
            let raw = self.grouped_raw_frames(entry);
            if self.activity.still_asleep(tid, count) {
                return Ok(Some((raw, pause::Held::Running)));
            }
            // Ended now, so that its next copy is planned before the pause.
            self.reader.mem.begin_group(None);
            // It ran meanwhile: what it fingerprinted is not trusted either.
            self.sample_codes.truncate(codes_before);
            self.sample_fingerprints.truncate(codes_before);
        }
        let wait = sampler_cpus::stop_wait_for(self.activity.last_cpu(tid));
        let held = pause::pause_thread(pid, tid, wait)?;
        if matches!(held, pause::Held::Gone) {
            return Ok(None);
        }
        Ok(Some((self.grouped_raw_frames(entry), held)))
    }

    /// `raw_frames` of a thread held still, in a read group of its own,
    /// left open (see `read_thread`).
    fn grouped_raw_frames(&mut self, entry: &ThreadEntry) -> Result<bool> {
        self.reader.mem.begin_group(Some(entry.state.addr));
        self.raw_frames(entry, true)
    }

    /// What must be read of one thread while it is held: its frames (into
    /// `self.raw`) and the code objects they run. Returns whether the stack
    /// was cut. `fresh`: read its innermost frame again first.
    fn raw_frames(&mut self, entry: &ThreadEntry, fresh: bool) -> Result<bool> {
        self.raw.clear();
        let truncated = if fresh {
            self.reader.fresh_raw_frames(entry, &mut self.raw)?
        } else {
            self.reader.raw_frames(entry, &mut self.raw)?
        };
        self.cache_raw_codes()?;
        Ok(truncated)
    }

    /// Fingerprints and caches the code objects of `self.raw` not seen in
    /// this sample yet.
    fn cache_raw_codes(&mut self) -> Result<()> {
        // Which code objects run, fingerprinted while they cannot be freed.
        let first_new = self.sample_codes.len();
        for raw in &self.raw {
            if !self.sample_codes.contains(&raw.code) {
                self.sample_codes.push(raw.code);
            }
        }
        self.reader
            .fingerprints(&self.sample_codes[first_new..], &mut self.new_fingerprints);
        self.sample_fingerprints
            .extend_from_slice(&self.new_fingerprints);
        // A code object seen for the first time (or changed) is read now,
        // before it can be freed; known ones are a lookup.
        for i in first_new..self.sample_codes.len() {
            let fingerprint = self.sample_fingerprints.get(i).copied().unwrap_or(0);
            self.reader.cache_code(self.sample_codes[i], fingerprint)?;
        }
        Ok(())
    }

    /// `self.raw` as interned ids, innermost first. Needs no reads once
    /// `raw_frames` cached the code objects (unless the cache was full and
    /// started over meanwhile: then the code is read as it is now).
    fn frame_ids(&mut self, truncated: bool) -> Result<(Vec<FrameId>, bool)> {
        let mut frames = Vec::with_capacity(self.raw.len());
        for r in 0..self.raw.len() {
            let raw = self.raw[r];
            if let Some(id) = self.frame_id(&raw)? {
                frames.push(id);
            }
        }
        Ok((frames, truncated))
    }

    fn frame_id(&mut self, raw: &RawFrame) -> Result<Option<FrameId>> {
        let at = self.sample_codes.iter().position(|c| *c == raw.code);
        let fingerprint = at.map(|i| self.sample_fingerprints[i]).unwrap_or(0);
        if let Some(entry) = self
            .codes
            .get(&raw.code)
            .filter(|e| e.fingerprint == fingerprint)
        {
            if let Some(id) = entry.ids.get(&raw.offset) {
                return Ok(*id);
            }
        }
        let resolved = self.reader.resolve_checked(raw, Some(fingerprint))?;
        let entry = self.codes.entry(raw.code).or_default();
        if entry.fingerprint != fingerprint {
            // Another code object now lives at this address.
            entry.fingerprint = fingerprint;
            entry.ids.clear();
        }
        let Some((code, at)) = resolved else {
            entry.ids.insert(raw.offset, None);
            return Ok(None);
        };
        let info = FrameInfo {
            name: code.name.as_str().into(),
            filename: code.filename.as_str().into(),
            line: at.line,
            column: at.column,
            first_line: code.first_line,
        };
        let id = self.frames.lock().intern(info);
        if self.codes.len() > MAX_CACHED_CODES {
            self.codes.clear();
        }
        self.codes
            .entry(raw.code)
            .or_default()
            .ids
            .insert(raw.offset, Some(id));
        Ok(Some(id))
    }

    /// Keeps the sampler off the CPU of the running thread it is about to
    /// pause (the one holding the GIL, if that one runs), or lets it use
    /// all its CPUs when no running thread is to be paused
    /// (sampling::sampler_cpus).
    fn keep_off_paused_thread(&mut self, entries: &[ThreadEntry], active: &[bool], keep: &[bool]) {
        let paused = |i: &usize| active[*i] && keep[*i] && entries[*i].tid.is_some();
        let mut candidates = (0..entries.len()).filter(paused);
        let first = candidates.clone().next();
        let chosen = candidates.find(|&i| entries[i].owns_gil).or(first);
        let cpu = chosen
            .and_then(|i| entries[i].tid)
            .and_then(|tid| self.activity.last_cpu(tid));
        self.cpus.keep_off(cpu);
    }

    /// Whether a thread counts as active (what `--idle` filters on).
    ///
    /// A thread that holds the GIL runs Python code, or blocks every other
    /// thread in a call that kept it: active either way, and without
    /// reading its stat file, which after the sampler's sleep is the
    /// costliest call of a sample but one (~15–20 µs of CPU at 100 Hz here,
    /// see BENCHMARKS.md). When pausing, the sampler also needs the CPU it
    /// runs on, to keep off it: from its rseq area (`holder_cpu`) when the
    /// target publishes one, else from the stat file after all.
    fn is_active(
        &mut self,
        entry: &ThreadEntry,
        blocking: bool,
        holder_cpu: Option<usize>,
    ) -> bool {
        let pid = self.process.pid;
        let Some(tid) = entry.tid else {
            return true;
        };
        match (entry.owns_gil, blocking, holder_cpu) {
            (true, false, _) => true,
            (true, true, Some(cpu)) if self.rseq_checks.0 >= RSEQ_CHECKS => {
                self.activity.running_on(pid, tid, cpu);
                true
            }
            // Read for its CPU alone: active whatever stat says.
            (true, true, cpu) => {
                let _ = self.activity.is_running(pid, tid);
                if let Some(cpu) = cpu {
                    self.check_rseq(tid, cpu);
                }
                true
            }
            (false, _, _) => self.activity.is_running(pid, tid),
        }
    }

    /// Checks an rseq CPU against the stat file's just read. Until
    /// `RSEQ_CHECKS` were, rseq does not stand for stat (a loader that
    /// says rseq is registered, with a thread ident that is not its
    /// `struct pthread`, would give garbage); unless nearly all agree, it
    /// is given up for this process.
    fn check_rseq(&mut self, tid: i32, cpu: usize) {
        let (checked, agreed) = &mut self.rseq_checks;
        *checked += 1;
        if self.activity.last_cpu(tid) == Some(cpu) {
            *agreed += 1;
        }
        // A thread moved between the two reads disagrees once in a while.
        if *checked == RSEQ_CHECKS && *agreed + 2 < RSEQ_CHECKS {
            self.rseq = None;
        }
    }
}

/// Samples until `stop` is set or the process ends, sending events to `tx`.
pub fn run(
    mut sampler: Sampler,
    config: SamplerConfig,
    start: Instant,
    tx: Sender<Event>,
    stop: Arc<AtomicBool>,
) {
    let pid = sampler.process.pid;
    schedule::prefer_this_thread();
    if config.blocking {
        // Here rather than at attach: only pausing uses it, and attaching to
        // a program just launched is retried until its interpreter is up.
        sampler.rseq = RseqCpus::find(&sampler.process, &*sampler.reader.mem);
    }
    let _ = tx.send(Event::Started(sampler.summary()));
    let mut schedule = Schedule::new(start, config.interval);
    let mut errors_in_row = 0u32;
    let reason = loop {
        let tick = schedule.wait();
        if stop.load(Ordering::Relaxed) {
            break EndReason::Stopped;
        }
        match sampler.sample(&config) {
            Ok(threads) => {
                errors_in_row = 0;
                if sampler.tasks.cut && !sampler.tasks.cut_said {
                    sampler.tasks.cut_said = true;
                    let message = format!(
                        "more than {} asyncio tasks: samples count the first {} read each tick",
                        tasks::MAX_TASKS_PER_TICK,
                        tasks::MAX_TASKS_PER_TICK
                    );
                    let _ = tx.send(Event::Notice { pid, message });
                }
                if let (Some(e), false) = (&sampler.tasks.failed, sampler.tasks.failed_said) {
                    sampler.tasks.failed_said = true;
                    let message = format!("asyncio tasks could not be read in some samples: {e}");
                    let _ = tx.send(Event::Notice { pid, message });
                }
                let event = Event::Sample {
                    pid,
                    at: tick.due,
                    late: tick.late,
                    threads,
                };
                if tx.send(event).is_err() {
                    break EndReason::AggregatorGone;
                }
            }
            Err(e) => {
                let e = match sampler.process.explain(e) {
                    Error::ProcessExited(_) | Error::NoSuchProcess(_) => break EndReason::Exited,
                    Error::ProcessReplaced { exe, .. } => break EndReason::Replaced { exe },
                    e => e,
                };
                errors_in_row += 1;
                if errors_in_row >= MAX_CONSECUTIVE_ERRORS {
                    break EndReason::GaveUp {
                        failures: MAX_CONSECUTIVE_ERRORS,
                        last: e.to_string(),
                    };
                }
                if let Error::PermissionDenied { .. } = e {
                    break EndReason::PermissionDenied(e.to_string());
                }
                let _ = tx.send(Event::Error {
                    pid,
                    message: e.to_string(),
                });
            }
        }
    };
    let _ = tx.send(Event::Ended { pid, reason });
}
