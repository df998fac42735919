//! Where the tasks are. 3.14+: a circular list per thread state (and one in
//! the interpreter state for threads that exited), found through
//! `.AsyncioDebug`. 3.8–3.13: the registries as `asyncio.tasks` holds
//! them: `_scheduled_tasks` (3.12–3.13; `_all_tasks` before, a WeakSet),
//! `_eager_tasks` (3.12+, a set) and `_current_tasks` ({loop: running task}).

use super::objects::{set_keys, weakref_target, TypeNames};
use super::AsyncioDebug;
use crate::error::{Error, Result};
use crate::walk::dict;
use crate::walk::objects::ObjectReader;
use crate::walk::threads::{InterpreterState, ThreadState};
use foldhash::HashSet;

/// Most tasks read per dump.
pub const MAX_TASKS: usize = 100_000;

/// Task addresses as found, and which of them are running.
#[derive(Debug, Default, Clone)]
pub struct Found {
    pub tasks: Vec<u64>,
    /// (running task, the thread state running it, where known).
    pub running: Vec<(u64, Option<u64>)>,
    /// More than `MAX_TASKS` were there.
    pub cut: bool,
    /// `_asyncio.Task.__basicsize__` (3.8–3.13), to check the layout by.
    pub task_basicsize: Option<u64>,
}

impl Found {
    fn add(&mut self, task: u64, seen: &mut HashSet<u64>) {
        if self.tasks.len() >= MAX_TASKS {
            self.cut = true;
        } else if task != 0 && seen.insert(task) {
            self.tasks.push(task);
        }
    }
}

/// 3.14+: every thread's list, then the interpreters' lists.
pub fn from_lists(
    reader: &ObjectReader,
    debug: &AsyncioDebug,
    interps: &[InterpreterState],
    threads: &[ThreadState],
) -> Result<Found> {
    let mut found = Found::default();
    let mut seen = HashSet::default();
    for t in threads {
        let running = reader.ptr(t.addr.wrapping_add(debug.thread_running_task))?;
        if running != 0 {
            found.running.push((running, Some(t.addr)));
        }
        let head = t.addr.wrapping_add(debug.thread_tasks_head);
        walk_list(reader, head, debug.task_node, &mut found, &mut seen)?;
    }
    for i in interps {
        let head = i.addr.wrapping_add(debug.interp_tasks_head);
        walk_list(reader, head, debug.task_node, &mut found, &mut seen)?;
    }
    Ok(found)
}

/// A circular `llist` with a sentinel at `head`: nodes are `task_node`
/// bytes into their task. A NULL link or a node seen twice is a list torn
/// while read (tasks come and go): what was read so far is kept.
fn walk_list(
    reader: &ObjectReader,
    head: u64,
    node_offset: u64,
    found: &mut Found,
    seen: &mut HashSet<u64>,
) -> Result<()> {
    let mut nodes = HashSet::default();
    let mut node = reader.ptr(head)?;
    while node != head {
        if node == 0 || !nodes.insert(node) || found.cut {
            break;
        }
        found.add(node.wrapping_sub(node_offset), seen);
        node = reader.ptr(node)?;
    }
    Ok(())
}

/// 3.8–3.13: the registries of the first interpreter's `asyncio.tasks`;
/// nothing when asyncio was not imported.
pub fn from_modules(
    reader: &ObjectReader,
    interp: &InterpreterState,
    names: &mut TypeNames,
) -> Result<Found> {
    let layout = &reader.interp.layout;
    let mut found = Found::default();
    let modules = reader.ptr(interp.addr.wrapping_add(layout.interpreter.modules))?;
    if modules == 0 {
        return Ok(found);
    }
    let Some(module) = dict::get_str(reader, modules, "asyncio.tasks")? else {
        return Ok(found);
    };
    let globals = reader.ptr(module.wrapping_add(layout.module.dict))?;
    let get = |name: &str| dict::get_str(reader, globals, name);
    let mut seen = HashSet::default();
    if let Some(ctask) = get("_CTask")? {
        let at = ctask.wrapping_add(layout.type_.basicsize);
        found.task_basicsize = Some(reader.mem.read_u64(at)?);
    }
    // Tasks stay in the WeakSet until collected; the caller drops the
    // finished ones by their state. 3.8–3.11 name it `_all_tasks`.
    let weakset = match get("_scheduled_tasks")? {
        Some(set) => Some(set),
        None => get("_all_tasks")?,
    };
    if let Some(weakset) = weakset {
        let data = dict::instance_attribute(reader, weakset, "data")?.ok_or(Error::WrongType {
            expected: "WeakSet with data",
            addr: weakset,
        })?;
        for wr in set_keys(reader, data)? {
            if let Some(task) = weakref_target(reader, names, wr) {
                found.add(task, &mut seen);
            }
        }
    }
    // An eager task is here only during its first, synchronous step.
    if let Some(eager) = get("_eager_tasks")? {
        for task in set_keys(reader, eager)? {
            found.add(task, &mut seen);
        }
    }
    if let Some(current) = get("_current_tasks")? {
        for (_, task) in dict::items(reader, current)? {
            found.running.push((task, None));
            found.add(task, &mut seen);
        }
    }
    Ok(found)
}
