//! `Profile`: everything recorded, aggregated: frames, the stack tree, counts
//! per thread and stack, and (for formats that show time) a compact timeline.

use crate::aggregate::frames::{FrameId, FrameTable};
use crate::aggregate::stack_tree::{NodeId, StackTree, ROOT};
use crate::aggregate::threads::{ThreadIndex, ThreadInfo, ThreadTable};
use foldhash::HashMap;
use std::time::Duration;

/// A profiled process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSummary {
    pub pid: i32,
    pub command_line: String,
    /// Working directory inside the process's root, for shortening file names.
    pub cwd: Option<String>,
    pub python_version: String,
}

/// Consecutive identical samples of one thread, kept for timeline formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub node: NodeId,
    /// Time of the first and the last sample of the run, since recording began.
    pub first: Duration,
    pub last: Duration,
    pub samples: u32,
}

/// Facts about the recording as a whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordingInfo {
    /// What was profiled (the command, or "pid 1234").
    pub command: String,
    pub rate_hz: f64,
    /// Wall-clock start, seconds since the Unix epoch.
    pub start_unix: f64,
    pub duration: Duration,
    pub samples: u64,
    pub late_samples: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub frames: FrameTable,
    pub tree: StackTree,
    pub processes: Vec<ProcessSummary>,
    pub threads: ThreadTable,
    pub info: RecordingInfo,
    counts: HashMap<(ThreadIndex, NodeId), u64>,
    /// Per thread index; `None` when no output needs time.
    timeline: Option<Vec<Vec<Run>>>,
    /// Per thread index: its last stack and node. A thread's stack rarely
    /// changes between samples; comparing is cheaper than walking the tree.
    last_stack: Vec<(Vec<FrameId>, NodeId)>,
}

impl Profile {
    pub fn new(keep_timeline: bool) -> Profile {
        Profile {
            timeline: keep_timeline.then(Vec::new),
            ..Profile::default()
        }
    }

    /// The index of `thread`, registering it (and updating its name) on first sight.
    pub fn thread_index(&mut self, thread: &ThreadInfo) -> ThreadIndex {
        self.threads.register(thread)
    }

    /// Counts one sample of `thread` in the stack given innermost frame first.
    pub fn add(
        &mut self,
        thread: ThreadIndex,
        innermost_first: &[FrameId],
        at: Duration,
        interval: Duration,
    ) {
        let t = thread as usize;
        if self.last_stack.len() <= t {
            self.last_stack.resize_with(t + 1, || (Vec::new(), ROOT));
        }
        let (last_frames, last_node) = &mut self.last_stack[t];
        let node = if last_frames.as_slice() == innermost_first && *last_node != ROOT {
            *last_node
        } else {
            let node = self.tree.insert(innermost_first.iter().rev().copied());
            last_frames.clear();
            last_frames.extend_from_slice(innermost_first);
            *last_node = node;
            node
        };
        self.add_node(thread, node, at, interval);
    }

    /// Counts one sample of `thread` in the stack `node` of `self.tree`
    /// (a replayed recording knows its stacks' nodes already).
    pub fn add_node(
        &mut self,
        thread: ThreadIndex,
        node: NodeId,
        at: Duration,
        interval: Duration,
    ) {
        *self.counts.entry((thread, node)).or_insert(0) += 1;
        if let Some(timeline) = &mut self.timeline {
            let t = thread as usize;
            if timeline.len() <= t {
                timeline.resize_with(t + 1, Vec::new);
            }
            let runs = &mut timeline[t];
            match runs.last_mut() {
                // A gap of more than ~1.5 intervals means the thread was not
                // seen (idle, filtered) in between: start a new run.
                Some(run)
                    if run.node == node && at.saturating_sub(run.last) <= interval * 3 / 2 =>
                {
                    run.last = at;
                    run.samples += 1;
                }
                _ => runs.push(Run {
                    node,
                    first: at,
                    last: at,
                    samples: 1,
                }),
            }
        }
    }

    /// (thread, stack node, samples), in a stable order.
    pub fn stacks(&self) -> Vec<(ThreadIndex, NodeId, u64)> {
        let mut all: Vec<_> = self.counts.iter().map(|((t, n), c)| (*t, *n, *c)).collect();
        all.sort_unstable();
        all
    }

    /// Runs of one thread, in time order (empty without a timeline).
    pub fn runs(&self, thread: ThreadIndex) -> &[Run] {
        self.timeline
            .as_ref()
            .and_then(|t| t.get(thread as usize))
            .map(|r| r.as_slice())
            .unwrap_or(&[])
    }

    pub fn has_timeline(&self) -> bool {
        self.timeline.is_some()
    }

    pub fn total_samples(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn process(&self, pid: i32) -> Option<&ProcessSummary> {
        self.processes.iter().find(|p| p.pid == pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_runs() {
        let mut p = Profile::new(true);
        let t = p.thread_index(&ThreadInfo {
            pid: 1,
            tid: Some(1),
            ident: 7,
            name: None,
        });
        let ms = Duration::from_millis;
        p.add(t, &[2, 1], ms(0), ms(10));
        p.add(t, &[2, 1], ms(10), ms(10));
        p.add(t, &[3, 1], ms(20), ms(10));
        p.add(t, &[2, 1], ms(100), ms(10));
        assert_eq!(p.total_samples(), 4);
        assert_eq!(p.stacks().len(), 2);
        let runs = p.runs(t);
        assert_eq!(runs.len(), 3);
        assert_eq!((runs[0].samples, runs[0].last), (2, ms(10)));
        assert_eq!(p.tree.path(runs[0].node), vec![1, 2]);
        let again = p.thread_index(&ThreadInfo {
            pid: 1,
            tid: Some(1),
            ident: 7,
            name: Some("w".into()),
        });
        assert_eq!(again, t);
        assert_eq!(p.threads[0].label(), "w (1)");
    }
}
