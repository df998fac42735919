//! `--async`: what the sampler keeps between ticks to sample asyncio tasks.
//! Each tick every pending task (at most `MAX_TASKS_PER_TICK`, read once
//! per tick in a read group of their own, so the next tick's reads come in
//! one batched copy) becomes a sample of its own: its coroutine chain under
//! the tasks awaiting it (pysampler_core::walk::asyncio::stacks). A running
//! task's own part is its thread's real stack down to its coroutine, and
//! takes the place of that thread's sample: running is told by the
//! coroutine's frame being in the thread's stack as sampled, as the tasks
//! are read after the threads (and without pausing them).

use crate::process::ProcessInfo;
use foldhash::HashMap;
use pysampler_core::walk::asyncio::AsyncioDebug;
use pysampler_core::walk::frames::RawFrame;
use pysampler_core::walk::StackReader;
use std::time::{Duration, Instant};

/// Tasks read per tick and process: a bound on a tick's cost (about a
/// microsecond per task, see docs/progress/asyncio-part1.md), said in the summary
/// when reached.
pub const MAX_TASKS_PER_TICK: usize = 2_000;

/// The name of the pseudo-thread suspended tasks are counted under.
pub const TASKS_THREAD: &str = "asyncio tasks";

/// How often `.AsyncioDebug` (3.14+) is looked for until found: it appears
/// when the program imports asyncio, and looking reads every mapped file.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The sampler's asyncio state for one process.
#[derive(Default)]
pub struct TaskSampling {
    debug: Option<AsyncioDebug>,
    looked: Option<Instant>,
    /// Some tick had more tasks than `MAX_TASKS_PER_TICK`.
    pub cut: bool,
    /// The notice saying so was sent.
    pub cut_said: bool,
    /// The first error reading the tasks (a tick without task samples),
    /// and whether a notice said it (once per process).
    pub failed: Option<String>,
    pub failed_said: bool,
}

impl TaskSampling {
    /// The target's `.AsyncioDebug`, looked for at most once a second until
    /// found (None before 3.14, and until `_asyncio` is loaded).
    pub fn debug(&mut self, process: &ProcessInfo, reader: &StackReader) -> Option<AsyncioDebug> {
        if reader.interp.layout.task.node.is_none() || self.debug.is_some() {
            return self.debug;
        }
        if self.looked.is_some_and(|at| at.elapsed() < LOOK_EVERY) {
            return None;
        }
        self.looked = Some(Instant::now());
        self.debug = crate::process::asyncio::find_debug_section(
            process,
            &reader.interp,
            reader.mem.as_ref(),
        )
        .ok()
        .flatten();
        self.debug
    }
}

/// Where each frame of this tick's thread samples is: (thread, position).
/// A task whose coroutine frame is among them was running on that thread
/// when it was sampled, whatever the task list, read later, says.
pub fn frame_places(thread_raws: &[Vec<RawFrame>]) -> HashMap<u64, (usize, usize)> {
    let mut places = HashMap::default();
    for (i, raw) in thread_raws.iter().enumerate() {
        for (at, frame) in raw.iter().enumerate() {
            places.entry(frame.addr).or_insert((i, at));
        }
    }
    places
}
