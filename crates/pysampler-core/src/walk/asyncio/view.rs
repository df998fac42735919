//! Tasks as `dump --async` shows them: grouped by event loop, frames
//! resolved to names and lines, edges both ways.

use super::TasksRead;
use crate::walk::frames::RawFrame;
use crate::walk::Frame;
use std::collections::BTreeMap;

/// One task as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncTask {
    /// The task object's address.
    pub id: u64,
    pub name: String,
    /// Running on a thread now (else suspended).
    pub running: bool,
    /// Innermost first: for a running task, its thread's stack down to the
    /// task's coroutine; for a suspended one, its coroutine chain.
    pub frames: Vec<Frame>,
    /// Tasks this one waits for.
    pub awaiting: Vec<u64>,
    /// Tasks that wait for this one.
    pub awaited_by: Vec<u64>,
}

/// The tasks of one event loop.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLoop {
    pub addr: u64,
    pub tasks: Vec<AsyncTask>,
}

/// Every loop's tasks, in the order the tasks were found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AsyncTasks {
    pub loops: Vec<EventLoop>,
    /// More tasks than pysampler reads (`registry::MAX_TASKS`).
    pub cut: bool,
}

/// Builds the view. `resolve` names a raw frame (None: not shown);
/// `thread_frames` gives, for a running task's coroutine frame, its thread's
/// raw frames down to and including it, innermost first.
pub fn build(
    read: &TasksRead,
    mut resolve: impl FnMut(&RawFrame) -> Option<Frame>,
    mut thread_frames: impl FnMut(u64) -> Option<Vec<RawFrame>>,
) -> AsyncTasks {
    let mut awaited_by: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for t in &read.tasks {
        for a in &t.awaiting {
            awaited_by.entry(*a).or_default().push(t.task.addr);
        }
    }
    let mut loops: Vec<EventLoop> = Vec::new();
    for t in &read.tasks {
        let mut by = t.task.awaited_by.clone();
        for a in awaited_by.get(&t.task.addr).into_iter().flatten() {
            if !by.contains(a) {
                by.push(*a);
            }
        }
        let raw: Vec<RawFrame> = match t.running.and_then(|_| thread_frames(t.chain.task_frame)) {
            Some(frames) => frames,
            None => t.chain.frames.iter().rev().copied().collect(),
        };
        let task = AsyncTask {
            id: t.task.addr,
            name: t.task.name.clone(),
            running: t.running.is_some(),
            frames: raw.iter().filter_map(&mut resolve).collect(),
            awaiting: t.awaiting.clone(),
            awaited_by: by,
        };
        match loops.iter_mut().find(|l| l.addr == t.task.event_loop) {
            Some(l) => l.tasks.push(task),
            None => loops.push(EventLoop {
                addr: t.task.event_loop,
                tasks: vec![task],
            }),
        }
    }
    AsyncTasks {
        loops,
        cut: read.cut,
    }
}
