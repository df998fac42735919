//! Own and total sample counts per function, kept per thread so the view can
//! filter by thread, in windows of samples (the last interval, since start).
//!
//! Own: the function is the innermost frame of a thread's stack. Total: the
//! function is anywhere on the stack, counted once per stack even when it
//! recurses, so a total never exceeds the number of samples.

use crate::aggregate::{FrameId, FrameTable};
use foldhash::HashMap;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Index into `Functions`.
pub type FunctionId = u32;
/// Index into the view's list of threads.
pub type ThreadId = u32;

/// What the table aggregates by: a function, identified by its name, its
/// file and the line it starts on (two lambdas in one file stay apart).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Function {
    pub name: Arc<str>,
    pub filename: Arc<str>,
    /// 0 when unknown.
    pub first_line: u32,
}

/// Every function seen, and which function each interned frame belongs to.
#[derive(Debug, Default)]
pub struct Functions {
    list: Vec<Function>,
    ids: HashMap<Function, FunctionId>,
    /// By frame id; `None` until that frame is first looked up.
    of_frame: Vec<Option<FunctionId>>,
}

impl Functions {
    /// The function of `frame`; locks the frame table only for frames not
    /// seen before. `None` for an id the table does not have.
    pub fn of_frame(&mut self, frame: FrameId, table: &Mutex<FrameTable>) -> Option<FunctionId> {
        let index = frame as usize;
        if let Some(Some(id)) = self.of_frame.get(index) {
            return Some(*id);
        }
        let function = {
            let table = table.lock();
            if index >= table.len() {
                return None;
            }
            let info = table.get(frame);
            Function {
                name: info.name.clone(),
                filename: info.filename.clone(),
                first_line: info.first_line,
            }
        };
        let id = self.intern(function);
        if self.of_frame.len() <= index {
            self.of_frame.resize(index + 1, None);
        }
        self.of_frame[index] = Some(id);
        Some(id)
    }

    pub fn intern(&mut self, function: Function) -> FunctionId {
        if let Some(id) = self.ids.get(&function) {
            return *id;
        }
        let id = self.list.len() as FunctionId;
        self.list.push(function.clone());
        self.ids.insert(function, id);
        id
    }

    pub fn get(&self, id: FunctionId) -> &Function {
        &self.list[id as usize]
    }
}

/// One thread's stack in one tick, as functions, innermost first.
#[derive(Debug, Clone, Copy)]
pub struct Stack<'a> {
    pub thread: ThreadId,
    pub active: bool,
    pub owns_gil: bool,
    pub functions: &'a [FunctionId],
}

/// How often something was running / holding the GIL.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub samples: u64,
    pub active: u64,
    pub gil: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub own: u64,
    pub total: u64,
}

/// The samples of a span of time.
#[derive(Debug, Default, Clone)]
pub struct Window {
    /// Per process: ticks, and ticks in which any thread was active / held the GIL.
    processes: BTreeMap<i32, Activity>,
    /// Per thread: samples of it, and how many found it active / holding the GIL.
    threads: BTreeMap<ThreadId, Activity>,
    counts: HashMap<(ThreadId, FunctionId), Counts>,
}

impl Window {
    /// Adds one tick of process `pid`.
    pub fn add_tick(&mut self, pid: i32, stacks: &[Stack]) {
        let process = self.processes.entry(pid).or_default();
        process.samples += 1;
        process.active += u64::from(stacks.iter().any(|s| s.active));
        process.gil += u64::from(stacks.iter().any(|s| s.owns_gil));
        let mut distinct = Vec::new();
        for stack in stacks {
            let thread = self.threads.entry(stack.thread).or_default();
            thread.samples += 1;
            thread.active += u64::from(stack.active);
            thread.gil += u64::from(stack.owns_gil);
            if let Some(&innermost) = stack.functions.first() {
                self.counts
                    .entry((stack.thread, innermost))
                    .or_default()
                    .own += 1;
            }
            distinct.clear();
            distinct.extend_from_slice(stack.functions);
            distinct.sort_unstable();
            distinct.dedup();
            for &function in &distinct {
                self.counts
                    .entry((stack.thread, function))
                    .or_default()
                    .total += 1;
            }
        }
    }

    /// Ticks in the window: those of the process sampled most, so that 100%
    /// means one thread busy for the whole window, as in `top`.
    pub fn ticks(&self) -> u64 {
        self.processes
            .values()
            .map(|p| p.samples)
            .max()
            .unwrap_or(0)
    }

    /// Activity of one thread, or of all processes (a tick counts as active
    /// when any of its threads was).
    pub fn activity(&self, thread: Option<ThreadId>) -> Activity {
        match thread {
            Some(t) => self.threads.get(&t).copied().unwrap_or_default(),
            None => self
                .processes
                .values()
                .fold(Activity::default(), |sum, p| Activity {
                    samples: sum.samples + p.samples,
                    active: sum.active + p.active,
                    gil: sum.gil + p.gil,
                }),
        }
    }

    /// Threads that appeared in the window.
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// Counts per function, of one thread or of all.
    pub fn by_function(&self, thread: Option<ThreadId>) -> HashMap<FunctionId, Counts> {
        let mut out: HashMap<FunctionId, Counts> = HashMap::default();
        for (&(t, function), counts) in &self.counts {
            if thread.is_none() || thread == Some(t) {
                let sum = out.entry(function).or_default();
                sum.own += counts.own;
                sum.total += counts.total;
            }
        }
        out
    }
}

/// The windows the view shows: the interval being filled, the last complete
/// one, and everything since start.
#[derive(Debug, Default)]
pub struct Tally {
    pub current: Window,
    pub last: Window,
    pub cumulative: Window,
}

impl Tally {
    pub fn add_tick(&mut self, pid: i32, stacks: &[Stack]) {
        self.current.add_tick(pid, stacks);
        self.cumulative.add_tick(pid, stacks);
    }

    /// Ends the current interval: it becomes the last one.
    pub fn roll(&mut self) {
        self.last = std::mem::take(&mut self.current);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(thread: ThreadId, functions: &[FunctionId]) -> Stack<'_> {
        Stack {
            thread,
            active: true,
            owns_gil: true,
            functions,
        }
    }

    #[test]
    fn own_is_the_innermost_frame_only() {
        let mut w = Window::default();
        // innermost first: 2 called by 1 called by 0
        w.add_tick(1, &[stack(0, &[2, 1, 0])]);
        w.add_tick(1, &[stack(0, &[1, 0])]);
        let f = w.by_function(None);
        assert_eq!(f[&2], Counts { own: 1, total: 1 });
        assert_eq!(f[&1], Counts { own: 1, total: 2 });
        assert_eq!(f[&0], Counts { own: 0, total: 2 });
    }

    #[test]
    fn recursion_counts_once_for_total() {
        let mut w = Window::default();
        // fib -> fib -> fib -> main
        w.add_tick(1, &[stack(0, &[7, 7, 7, 3])]);
        let f = w.by_function(None);
        assert_eq!(f[&7], Counts { own: 1, total: 1 });
        assert_eq!(f[&3], Counts { own: 0, total: 1 });
    }

    #[test]
    fn threads_count_separately_and_filter() {
        let mut w = Window::default();
        w.add_tick(1, &[stack(0, &[5]), stack(1, &[5, 6])]);
        assert_eq!(w.ticks(), 1);
        assert_eq!(w.thread_count(), 2);
        // two threads in 5 at once: 200% of one tick, like top's CPU%
        assert_eq!(w.by_function(None)[&5], Counts { own: 2, total: 2 });
        assert_eq!(w.by_function(Some(1))[&5], Counts { own: 1, total: 1 });
        assert_eq!(w.by_function(Some(1))[&6], Counts { own: 0, total: 1 });
        assert!(!w.by_function(Some(0)).contains_key(&6));
    }

    #[test]
    fn activity_per_tick_and_per_thread() {
        let mut w = Window::default();
        let idle = Stack {
            thread: 1,
            active: false,
            owns_gil: false,
            functions: &[4],
        };
        w.add_tick(1, &[stack(0, &[5]), idle]);
        w.add_tick(1, &[idle]);
        w.add_tick(1, &[]);
        let all = w.activity(None);
        assert_eq!((all.samples, all.active, all.gil), (3, 1, 1));
        let one = w.activity(Some(1));
        assert_eq!((one.samples, one.active, one.gil), (2, 0, 0));
    }

    #[test]
    fn ticks_are_those_of_the_busiest_process() {
        let mut w = Window::default();
        for _ in 0..3 {
            w.add_tick(1, &[stack(0, &[5])]);
        }
        w.add_tick(2, &[stack(1, &[5])]);
        assert_eq!(w.ticks(), 3);
        assert_eq!(w.activity(None).samples, 4);
    }

    #[test]
    fn interval_resets_and_cumulative_keeps_growing() {
        let mut t = Tally::default();
        t.add_tick(1, &[stack(0, &[5])]);
        t.add_tick(1, &[stack(0, &[5])]);
        t.roll();
        t.add_tick(1, &[stack(0, &[6])]);
        assert_eq!(t.last.ticks(), 2);
        assert_eq!(t.last.by_function(None)[&5].own, 2);
        assert_eq!(t.current.ticks(), 1);
        assert!(!t.current.by_function(None).contains_key(&5));
        t.roll();
        assert_eq!(t.last.by_function(None)[&6].own, 1);
        assert!(!t.last.by_function(None).contains_key(&5));
        assert_eq!(t.cumulative.ticks(), 3);
        assert_eq!(t.cumulative.by_function(None)[&5].own, 2);
        assert_eq!(t.cumulative.by_function(None)[&6].own, 1);
    }

    #[test]
    fn frames_map_to_functions_by_name_file_and_first_line() {
        use crate::aggregate::FrameInfo;
        let table = Mutex::new(FrameTable::default());
        let frame = |line| FrameInfo {
            name: "work".into(),
            filename: "/app/main.py".into(),
            line,
            column: 0,
            first_line: 10,
        };
        let a = table.lock().intern(frame(11));
        let b = table.lock().intern(frame(12));
        let mut functions = Functions::default();
        let fa = functions.of_frame(a, &table);
        assert!(fa.is_some());
        assert_eq!(fa, functions.of_frame(b, &table));
        assert_eq!(functions.of_frame(99, &table), None);
    }
}
