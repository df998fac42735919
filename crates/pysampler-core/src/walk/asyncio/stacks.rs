//! Tasks as samples (`record --async`, `top --async`): each pending task's
//! stack is its own coroutine chain under the chains of the tasks awaiting
//! it, so a `gather` child appears under its parent's `await gather(...)`
//! and the outermost task's coroutine is at the root, as `dump --async`
//! shows the edges.

use super::TasksRead;
use crate::walk::frames::RawFrame;
use foldhash::{HashMap, HashSet};

/// Awaiting tasks followed above a task.
const MAX_AWAITERS_DEPTH: usize = 64;
/// Frames of a task's stack, its own and its awaiters' (a bound on a
/// sample's work: 64 awaiters of 256-deep chains would be 16,384).
pub const MAX_STACK_FRAMES: usize = 1024;

/// One task's stack, innermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStack {
    pub task: u64,
    pub event_loop: u64,
    /// Running on a thread now: its frames below `task_frame` are the
    /// thread's (the caller splices them in place of `own`).
    pub running: bool,
    /// The task's coroutine frame, to find it in a thread's stack.
    pub task_frame: u64,
    /// The task's own coroutine chain, innermost first.
    pub own: Vec<RawFrame>,
    /// The awaiting tasks' chains, innermost (the nearest awaiter's await)
    /// first.
    pub awaiters: Vec<RawFrame>,
    /// Awaiters were left out (`MAX_STACK_FRAMES`, `MAX_AWAITERS_DEPTH`) or
    /// the task's own chain was cut.
    pub truncated: bool,
}

/// Every task's stack. A task awaited by several (a shared task) is shown
/// under the first.
pub fn build(read: &TasksRead) -> Vec<TaskStack> {
    let index: HashMap<u64, usize> = read
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task.addr, i))
        .collect();
    // Who awaits whom: CPython's own record (3.14+) first, then the reverse
    // of "awaiting".
    let mut awaiter: HashMap<u64, u64> = HashMap::default();
    for t in &read.tasks {
        if let Some(by) = t.task.awaited_by.iter().find(|a| index.contains_key(a)) {
            awaiter.insert(t.task.addr, *by);
        }
    }
    for t in &read.tasks {
        for a in &t.awaiting {
            awaiter.entry(*a).or_insert(t.task.addr);
        }
    }
    read.tasks
        .iter()
        .map(|t| {
            let mut awaiters = Vec::new();
            let mut seen = HashSet::default();
            seen.insert(t.task.addr);
            let mut at = t.task.addr;
            let mut truncated = t.chain.cut;
            let room = MAX_STACK_FRAMES.saturating_sub(t.chain.frames.len());
            for depth in 0..=MAX_AWAITERS_DEPTH {
                let Some(next) = awaiter.get(&at).copied() else {
                    break;
                };
                let Some(&i) = index.get(&next) else {
                    break;
                };
                let frames = &read.tasks[i].chain.frames;
                if depth == MAX_AWAITERS_DEPTH || awaiters.len() + frames.len() > room {
                    truncated = true;
                    break;
                }
                if !seen.insert(next) {
                    break;
                }
                awaiters.extend(frames.iter().rev().copied());
                at = next;
            }
            TaskStack {
                task: t.task.addr,
                event_loop: t.task.event_loop,
                running: t.running.is_some(),
                task_frame: t.chain.task_frame,
                own: t.chain.frames.iter().rev().copied().collect(),
                awaiters,
                truncated,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::asyncio::coro_chain::Chain;
    use crate::walk::asyncio::task::RawTask;
    use crate::walk::asyncio::TaskRead;

    fn frame(addr: u64) -> RawFrame {
        RawFrame {
            addr,
            code: addr,
            offset: 0,
            is_generator: true,
        }
    }

    fn task(addr: u64, frames: &[u64], awaiting: &[u64]) -> TaskRead {
        TaskRead {
            task: RawTask {
                addr,
                event_loop: 1,
                pending: true,
                name: String::new(),
                coro: 0,
                fut_waiter: 0,
                awaited_by: Vec::new(),
            },
            chain: Chain {
                frames: frames.iter().map(|f| frame(*f)).collect(),
                ..Chain::default()
            },
            running: None,
            awaiting: awaiting.to_vec(),
        }
    }

    #[test]
    fn a_gathered_task_is_under_its_parents_and_a_cycle_ends() {
        // main (10) awaits parent (20, 21), which gathers child (30, 31);
        // 40 and 50 await each other.
        let read = TasksRead {
            tasks: vec![
                task(1, &[10], &[2]),
                task(2, &[20, 21], &[3]),
                task(3, &[30, 31], &[]),
                task(4, &[40], &[5]),
                task(5, &[50], &[4]),
            ],
            cut: false,
        };
        let stacks = build(&read);
        let addrs = |f: &[RawFrame]| f.iter().map(|f| f.addr).collect::<Vec<_>>();
        assert_eq!(addrs(&stacks[2].own), [31, 30]);
        assert_eq!(addrs(&stacks[2].awaiters), [21, 20, 10]);
        assert_eq!(addrs(&stacks[0].awaiters), Vec::<u64>::new());
        assert_eq!(addrs(&stacks[3].awaiters), [50]);
        assert_eq!(addrs(&stacks[4].awaiters), [40]);
        assert!(!stacks[2].truncated);
    }

    #[test]
    fn a_long_line_of_awaiters_is_cut() {
        // Task i awaits task i + 1, each 100 frames deep: 11 fit.
        let tasks = (1..=20u64)
            .map(|i| {
                let frames: Vec<u64> = (0..100).map(|f| i * 1000 + f).collect();
                task(i, &frames, &[i + 1])
            })
            .collect();
        let stacks = build(&TasksRead { tasks, cut: false });
        let last = &stacks[19];
        assert!(last.truncated);
        assert!(last.own.len() + last.awaiters.len() <= MAX_STACK_FRAMES);
        assert_eq!(last.awaiters.len(), 900);
    }
}
