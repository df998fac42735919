//! What the view knows: the processes, threads and counts so far, fed by the
//! session's events.

use crate::aggregate::{FrameTable, ProcessSummary, ThreadTable};
use crate::output::filenames::FileNames;
use crate::sampling::{EndReason, Event, ThreadSample};
use crate::top::stats::{FunctionId, Functions, Stack, Tally, ThreadId};
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// How a process's sampling ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub pid: i32,
    pub reason: EndReason,
}

pub struct Top {
    /// The process given with --pid, or the launched one.
    pub root: i32,
    pub rate_hz: f64,
    /// Time one sample stands for.
    pub sample_time: Duration,
    pub subprocesses: bool,
    pub processes: Vec<ProcessSummary>,
    pub endings: Vec<Ending>,
    pub samples: u64,
    pub errors: u64,
    pub functions: Functions,
    pub threads: ThreadTable,
    pub tally: Tally,
    /// When the current interval began, and how long the last one was.
    interval_start: Instant,
    pub last_interval: Duration,
    pub started: Instant,
    pub file_names: FileNames,
    full_filenames: bool,
    stack: Vec<FunctionId>,
}

impl Top {
    pub fn new(root: i32, rate_hz: f64, subprocesses: bool, full_filenames: bool) -> Top {
        let now = Instant::now();
        Top {
            root,
            rate_hz,
            sample_time: Duration::from_secs_f64(1.0 / rate_hz),
            subprocesses,
            processes: Vec::new(),
            endings: Vec::new(),
            samples: 0,
            errors: 0,
            functions: Functions::default(),
            threads: ThreadTable::default(),
            tally: Tally::default(),
            interval_start: now,
            last_interval: Duration::ZERO,
            started: now,
            file_names: FileNames::new(None, full_filenames),
            full_filenames,
            stack: Vec::new(),
        }
    }

    pub fn handle(&mut self, event: Event, frames: &Mutex<FrameTable>) {
        match event {
            Event::Started(summary) => {
                if summary.pid == self.root || self.processes.is_empty() {
                    // File names are shortened relative to the main program's folder.
                    self.file_names = FileNames::new(summary.cwd.clone(), self.full_filenames);
                }
                self.processes.push(summary);
            }
            Event::Sample { pid, threads, .. } => self.add_sample(pid, &threads, frames),
            Event::Error { .. } => self.errors += 1,
            Event::Notice { .. } => {}
            Event::Ended { pid, reason } => self.endings.push(Ending { pid, reason }),
        }
    }

    fn add_sample(&mut self, pid: i32, threads: &[ThreadSample], frames: &Mutex<FrameTable>) {
        self.samples += 1;
        // One buffer of functions for all threads, sliced per thread below.
        self.stack.clear();
        let mut spans = Vec::with_capacity(threads.len());
        for t in threads {
            let thread = self.thread_id(pid, t);
            let start = self.stack.len();
            for &frame in &t.frames {
                if let Some(f) = self.functions.of_frame(frame, frames) {
                    self.stack.push(f);
                }
            }
            spans.push((thread, t.active, t.owns_gil, start, self.stack.len()));
        }
        let stacks: Vec<Stack> = spans
            .iter()
            .map(|&(thread, active, owns_gil, start, end)| Stack {
                thread,
                active,
                owns_gil,
                functions: &self.stack[start..end],
            })
            .collect();
        self.tally.add_tick(pid, &stacks);
    }

    fn thread_id(&mut self, pid: i32, t: &ThreadSample) -> ThreadId {
        self.threads.index(pid, t.tid, t.ident, t.name.as_deref())
    }

    /// Ends the current interval.
    pub fn roll(&mut self, now: Instant) {
        self.tally.roll();
        self.last_interval = now.saturating_duration_since(self.interval_start);
        self.interval_start = now;
    }

    /// Threads in the order the filter goes through them: by process, then
    /// by thread id (the main thread, usually first).
    pub fn thread_order(&self) -> Vec<ThreadId> {
        let mut ids: Vec<ThreadId> = (0..self.threads.len() as ThreadId).collect();
        ids.sort_by_key(|&id| {
            let t = &self.threads[id as usize];
            (t.pid, t.tid, t.ident)
        });
        ids
    }

    /// The root process's summary, once its sampler started.
    pub fn root_summary(&self) -> Option<&ProcessSummary> {
        self.processes
            .iter()
            .find(|p| p.pid == self.root)
            .or(self.processes.first())
    }

    /// Processes being sampled now.
    pub fn running_processes(&self) -> usize {
        self.processes
            .iter()
            .filter(|p| !self.endings.iter().any(|e| e.pid == p.pid))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::FrameInfo;

    fn sample(tid: i32, frames: Vec<u32>) -> ThreadSample {
        ThreadSample {
            tid: Some(tid),
            ident: tid as u64,
            name: Some("MainThread".into()),
            active: true,
            owns_gil: true,
            frames,
            truncated: false,
        }
    }

    #[test]
    fn samples_become_function_counts_per_thread() {
        let table = Mutex::new(FrameTable::default());
        let frame = |name: &str, line| {
            table.lock().intern(FrameInfo {
                name: name.into(),
                filename: "/app/t.py".into(),
                line,
                column: 0,
                first_line: 1,
            })
        };
        let (a1, a2, b) = (frame("a", 2), frame("a", 3), frame("b", 9));
        let mut top = Top::new(7, 100.0, false, false);
        for frames in [vec![a1, a2, b], vec![b]] {
            let event = Event::Sample {
                pid: 7,
                at: Duration::ZERO,
                late: false,
                threads: vec![sample(70, frames), sample(71, vec![b])],
            };
            top.handle(event, &table);
        }
        assert_eq!(top.samples, 2);
        assert_eq!(top.threads.len(), 2);
        let all = top.tally.cumulative.by_function(None);
        let a = top.functions.of_frame(a1, &table).unwrap();
        let fb = top.functions.of_frame(b, &table).unwrap();
        // a recursed (two lines of it on one stack): once for total
        assert_eq!((all[&a].own, all[&a].total), (1, 1));
        assert_eq!((all[&fb].own, all[&fb].total), (3, 4));
        let second = top.tally.cumulative.by_function(Some(1));
        assert_eq!((second[&fb].own, second[&fb].total), (2, 2));
    }
}
