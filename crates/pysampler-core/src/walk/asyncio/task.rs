//! One `TaskObj` read out of the target: its name, state, coroutine, what
//! it waits on and (3.14+) what awaits it. Offsets come from the layout's
//! `task` section (python-offsets), overridden on 3.14+ by `.AsyncioDebug`.

use super::objects::{set_keys, TypeNames};
use crate::error::{Error, Result};
use crate::memory::word_at;
use crate::walk::objects::ObjectReader;

/// `fut_state` of a task that is still pending (not finished or cancelled).
pub const PENDING: u32 = 0;
/// Largest task prefix read: every field used is in the first 200 bytes.
const MAX_TASK_BYTES: u64 = 512;
/// Awaiters read per task (a set of them, 3.14+).
const MAX_AWAITERS: usize = 10_000;

/// Where a task's fields are, resolved once per dump.
#[derive(Debug, Clone, Copy)]
pub struct TaskPlan {
    pub fut_loop: u64,
    pub state: u64,
    pub fut_waiter: u64,
    pub coro: u64,
    pub name: u64,
    /// 3.14+: (awaited_by, is_task, awaited_by_is_set).
    pub awaited_by: Option<(u64, u64, u64)>,
    block: usize,
}

impl TaskPlan {
    /// From the layout, with `.AsyncioDebug`'s values in place of the
    /// table's where the target publishes them.
    pub fn new(
        layout: &crate::interpreter::Layout,
        debug: Option<&super::AsyncioDebug>,
    ) -> Result<TaskPlan> {
        let mut plan = TaskPlan {
            fut_loop: crate::need!(layout, task.fut_loop)?,
            state: crate::need!(layout, task.state)?,
            fut_waiter: crate::need!(layout, task.fut_waiter)?,
            coro: crate::need!(layout, task.coro)?,
            name: crate::need!(layout, task.name)?,
            awaited_by: match (
                layout.task.awaited_by,
                layout.task.is_task,
                layout.task.awaited_by_is_set,
            ) {
                (Some(a), Some(t), Some(s)) => Some((a, t, s)),
                _ => None,
            },
            block: 0,
        };
        if let Some(d) = debug {
            plan.coro = d.task_coro;
            plan.name = d.task_name;
            plan.awaited_by = Some((d.task_awaited_by, d.task_is_task, d.task_awaited_by_is_set));
        }
        let (a, t, s) = plan.awaited_by.unwrap_or((0, 0, 0));
        let last = [
            plan.fut_loop,
            plan.state,
            plan.fut_waiter,
            plan.coro,
            plan.name,
            a,
            t,
            s,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        if last + 8 > MAX_TASK_BYTES {
            return Err(Error::LayoutField {
                field: "task size",
                value: last,
            });
        }
        plan.block = last as usize + 8;
        Ok(plan)
    }
}

/// A task as read, before its coroutine is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTask {
    pub addr: u64,
    pub event_loop: u64,
    pub pending: bool,
    pub name: String,
    pub coro: u64,
    /// The future the task is blocked on (0 while it runs or is scheduled).
    pub fut_waiter: u64,
    /// 3.14+: the tasks and futures that await this one.
    pub awaited_by: Vec<u64>,
}

/// Reads the task at `addr`. Err when what is there does not look like one.
pub fn read(reader: &ObjectReader, plan: &TaskPlan, addr: u64) -> Result<RawTask> {
    let raw = reader.mem.read_vec(addr, plan.block)?;
    let word = |at: u64| word_at(&raw, at);
    let byte = |at: u64| raw.get(at as usize).copied().unwrap_or(u8::MAX);
    let state = word(plan.state) as u32;
    if state > 2 {
        return Err(Error::WrongType {
            expected: "asyncio task",
            addr,
        });
    }
    let mut awaited_by = Vec::new();
    if let Some((at, is_task, is_set)) = plan.awaited_by {
        if byte(is_task) != 1 {
            return Err(Error::WrongType {
                expected: "asyncio task",
                addr,
            });
        }
        let waiter = word(at);
        match (waiter, byte(is_set)) {
            (0, _) => {}
            (w, 0) => awaited_by.push(w),
            (set, _) => {
                let mut keys = set_keys(reader, set)?;
                keys.truncate(MAX_AWAITERS);
                awaited_by = keys;
            }
        }
    }
    Ok(RawTask {
        addr,
        event_loop: word(plan.fut_loop),
        pending: state == PENDING,
        name: name(reader, addr, word(plan.name)),
        coro: word(plan.coro),
        fut_waiter: word(plan.fut_waiter),
        awaited_by,
    })
}

/// A task's name: the str given, or for an int N (3.12+ store the counter
/// until `get_name()` is called) the "Task-N" CPython would show.
fn name(reader: &ObjectReader, task: u64, obj: u64) -> String {
    let types = &reader.interp.types;
    let fallback = || format!("Task-0x{task:x}");
    let Ok(ty) = reader.type_of(obj) else {
        return fallback();
    };
    if ty == types.unicode_type {
        return reader.text(obj).unwrap_or_else(|_| fallback());
    }
    if ty == types.long_type {
        if let Ok(Some(n)) = reader.int_value(obj) {
            return format!("Task-{n}");
        }
    }
    fallback()
}

/// The tasks a future stands for, when a task waits on it: the task
/// itself, or a `gather`'s children (its `_GatheringFuture._children`).
pub fn awaited_tasks(reader: &ObjectReader, names: &mut TypeNames, fut: u64) -> Vec<u64> {
    let Ok(name) = names.of(reader, fut) else {
        return Vec::new();
    };
    if name == "_GatheringFuture" {
        let children = crate::walk::dict::instance_attribute(reader, fut, "_children");
        if let Ok(Some(list)) = children {
            let items = reader.interp.layout.list;
            let size = reader
                .mem
                .read_u64(list.wrapping_add(items.size))
                .unwrap_or(0);
            let at = reader.ptr(list.wrapping_add(items.items)).unwrap_or(0);
            if size <= MAX_AWAITERS as u64 && at != 0 {
                if let Ok(raw) = reader.mem.read_vec(at, size as usize * 8) {
                    return crate::walk::objects::words(&raw);
                }
            }
        }
        return Vec::new();
    }
    vec![fut]
}
