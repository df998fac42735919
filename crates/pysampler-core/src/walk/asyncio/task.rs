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
    /// `basicsize` is the target's `_asyncio.Task.__basicsize__` where it
    /// was read (3.8–3.13): on versions whose table names the size its
    /// offsets are for, a size it does not know is an error, not a guess.
    pub fn new(
        interp: &crate::interpreter::Interpreter,
        debug: Option<&super::AsyncioDebug>,
        basicsize: Option<u64>,
    ) -> Result<TaskPlan> {
        let layout = &interp.layout;
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
        let by = shift(&layout.task, basicsize).map_err(|known| Error::TaskLayout {
            version: interp.version.to_string(),
            size: basicsize.unwrap_or(0),
            known,
        })?;
        for at in [
            &mut plan.state,
            &mut plan.fut_waiter,
            &mut plan.coro,
            &mut plan.name,
        ] {
            *at = at.wrapping_sub(by);
        }
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

/// How much lower than the table says the fields after `fut_loop` are in
/// a task of `live` bytes: 0 for the table's size (or where either is not
/// known), the difference for the table's `shifted_basicsize` (an older
/// patch release). Err (the sizes known) for any other size.
fn shift(
    task: &crate::interpreter::layout::TaskOffsets,
    live: Option<u64>,
) -> std::result::Result<u64, String> {
    match (task.basicsize, task.shifted_basicsize, live) {
        (None, _, _) | (_, _, None) => Ok(0),
        (Some(e), _, Some(l)) if e == l => Ok(0),
        (Some(e), Some(s), Some(l)) if s == l && s < e => Ok(e - s),
        (Some(e), Some(s), _) => Err(format!("{e} or {s}")),
        (Some(e), None, _) => Err(e.to_string()),
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

/// The tasks of the `asyncio.TaskGroup` whose exit `frame` waits in
/// (`__aexit__`, or the `_aexit` it awaits on 3.14+), read from the group's
/// `_tasks` set (3.14+ publish these edges as awaited-by instead).
pub fn task_group_tasks(
    reader: &ObjectReader,
    names: &mut TypeNames,
    frame: &crate::walk::frames::RawFrame,
) -> Vec<u64> {
    let layout = &reader.interp.layout;
    let name = reader
        .ptr(frame.code.wrapping_add(layout.code.name))
        .and_then(|n| reader.text(n));
    if !matches!(name.as_deref(), Ok("__aexit__" | "_aexit")) {
        return Vec::new();
    }
    // `self` is the first local; 3.14+ tag references in the low bits.
    let Ok(group) = reader.ptr(frame.addr.wrapping_add(layout.frame.localsplus)) else {
        return Vec::new();
    };
    let group = group & !7;
    if names.of(reader, group).ok() != Some("TaskGroup") {
        return Vec::new();
    }
    match crate::walk::dict::instance_attribute(reader, group, "_tasks") {
        Ok(Some(set)) => {
            let mut tasks = set_keys(reader, set).unwrap_or_default();
            tasks.truncate(MAX_AWAITERS);
            tasks
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::shift;
    use crate::interpreter::tables::layout_for;
    use crate::interpreter::Version;

    fn task_offsets(minor: u32) -> crate::interpreter::layout::TaskOffsets {
        layout_for(&Version::new(3, minor, None)).unwrap().task
    }

    #[test]
    fn an_older_3_10_task_is_read_with_its_fields_lower() {
        let t = task_offsets(10);
        assert_eq!(shift(&t, Some(192)), Ok(0));
        assert_eq!(shift(&t, Some(184)), Ok(8));
        assert_eq!(shift(&t, Some(200)), Err("192 or 184".into()));
        assert_eq!(shift(&t, None), Ok(0));
    }

    #[test]
    fn a_task_of_unknown_size_is_refused() {
        assert_eq!(shift(&task_offsets(9), Some(184)), Ok(0));
        assert_eq!(shift(&task_offsets(9), Some(192)), Err("184".into()));
        // No size in the table (3.14+ publish their offsets): not checked.
        assert_eq!(shift(&task_offsets(14), Some(1)), Ok(0));
    }
}
