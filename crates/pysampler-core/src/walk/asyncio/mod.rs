//! asyncio tasks, read from outside: which tasks each event loop has, what
//! each one's coroutines are doing and what awaits what (`dump --async`).
//!
//! - `debug_section`: 3.14+'s `.AsyncioDebug`, the module's own offsets;
//! - `registry`: where the tasks are (per-thread lists on 3.14+, the
//!   `asyncio.tasks` registries on 3.8–3.13);
//! - `task`: one task's fields; `coro_chain`: its coroutines down to the
//!   future they wait on; `objects`: sets, weak references, type names;
//! - `view`: tasks as `dump --async` shows them; `stacks`: as samples.
//!
//! Everything is bounded (`registry::MAX_TASKS`, `coro_chain::MAX_CHAIN`)
//! and a task that cannot be read (freed under us) is left out.

pub mod coro_chain;
pub mod debug_section;
pub mod objects;
pub mod registry;
pub mod stacks;
pub mod task;
pub mod view;

pub use debug_section::AsyncioDebug;

use crate::error::{Error, Result};
use crate::interpreter::CoroutineFamily;
use crate::walk::objects::ObjectReader;
use crate::walk::threads::{InterpreterState, ThreadState};
use coro_chain::{Chain, ChainPlan};
use objects::TypeNames;
use task::{RawTask, TaskPlan};

/// A task as read, with its coroutine chain, before names are resolved.
#[derive(Debug, Clone)]
pub struct TaskRead {
    pub task: RawTask,
    pub chain: Chain,
    /// Running now: (the thread state running it, where known).
    pub running: Option<Option<u64>>,
    /// The tasks it waits for (a task, or a gather's children).
    pub awaiting: Vec<u64>,
}

/// Every pending task of an interpreter, as read.
#[derive(Debug, Clone, Default)]
pub struct TasksRead {
    pub tasks: Vec<TaskRead>,
    /// More tasks than `registry::MAX_TASKS`.
    pub cut: bool,
}

/// Reads the pending tasks. `debug` is the target's `.AsyncioDebug` (3.14+;
/// None there means `_asyncio` is not loaded yet: no tasks).
pub fn read_tasks(
    reader: &ObjectReader,
    debug: Option<&AsyncioDebug>,
    interps: &[InterpreterState],
    threads: &[ThreadState],
) -> Result<TasksRead> {
    read_some_tasks(reader, debug, interps, threads, registry::MAX_TASKS, None)
}

/// Tasks read per read group when sampling: a group's batched copy covers
/// a few thousand regions (memory::prefetch), a task ~15.
const TASKS_PER_GROUP: usize = 128;

/// As `read_tasks`, reading at most `limit` of the tasks found (`cut`
/// then says some were left out). With `group` (sampling), the tasks are
/// read in read groups of `TASKS_PER_GROUP` keyed below `group`, so that the
/// next sample copies each group's memory in one batch.
pub fn read_some_tasks(
    reader: &ObjectReader,
    debug: Option<&AsyncioDebug>,
    interps: &[InterpreterState],
    threads: &[ThreadState],
    limit: usize,
    group: Option<u64>,
) -> Result<TasksRead> {
    let layout = &reader.interp.layout;
    if reader.interp.families.coroutines == CoroutineFamily::Unsupported {
        return Err(Error::AsyncioUnsupported {
            version: reader.interp.version.to_string(),
        });
    }
    let mut names = TypeNames::default();
    let on_lists = layout.task.node.is_some();
    let mut found = match (on_lists, debug, interps.first()) {
        (true, Some(d), _) => registry::from_lists(reader, d, interps, threads)?,
        (true, None, _) | (false, _, None) => registry::Found::default(),
        (false, _, Some(first)) => registry::from_modules(reader, first, &mut names)?,
    };
    if found.tasks.len() > limit {
        found.tasks.truncate(limit);
        found.cut = true;
    }
    let task_plan = TaskPlan::new(reader.interp, debug, found.task_basicsize)?;
    let chain_plan = ChainPlan::new(reader.interp)?;
    let mut tasks = Vec::with_capacity(found.tasks.len());
    for (i, &addr) in found.tasks.iter().enumerate() {
        if let Some(base) = group.filter(|_| i % TASKS_PER_GROUP == 0) {
            let chunk = (i / TASKS_PER_GROUP) as u64;
            reader.mem.begin_group(Some(base.wrapping_sub(1 + chunk)));
        }
        if names
            .of(reader, addr)
            .map_or(true, |n| n == "<dummy key> type")
        {
            continue;
        }
        let Ok(raw) = task::read(reader, &task_plan, addr) else {
            continue;
        };
        if !raw.pending {
            continue;
        }
        let chain =
            coro_chain::follow(reader, &chain_plan, &mut names, raw.coro).unwrap_or_default();
        let registered = found.running.iter().find(|(t, _)| *t == addr);
        let running = match registered {
            Some((_, thread)) => Some(*thread),
            None => chain.running.then_some(None),
        };
        let waited = match (raw.fut_waiter, chain.awaits) {
            (0, None) => 0,
            (0, Some(fut)) => fut,
            (fut, _) => fut,
        };
        let mut awaiting = match waited {
            0 => Vec::new(),
            fut => task::awaited_tasks(reader, &mut names, fut),
        };
        if let (true, Some(inner)) = (awaiting.len() <= 1, chain.frames.last()) {
            awaiting.extend(task::task_group_tasks(reader, &mut names, inner));
        }
        tasks.push(TaskRead {
            task: raw,
            chain,
            running,
            awaiting,
        });
    }
    // Edges only between tasks that were read: a future that is not a task
    // (a plain Future, an Event's waiter) ends the chain without one.
    let known: foldhash::HashSet<u64> = tasks.iter().map(|t| t.task.addr).collect();
    for t in &mut tasks {
        t.awaiting
            .retain(|a| known.contains(a) && *a != t.task.addr);
        t.task.awaited_by.retain(|a| known.contains(a));
    }
    Ok(TasksRead {
        tasks,
        cut: found.cut,
    })
}
