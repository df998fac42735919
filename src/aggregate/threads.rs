//! Threads numbered in the order they are first seen, by their identity
//! (process, Python ident, OS thread id): one table for the recorder's
//! profile and for `top`.

use foldhash::HashMap;
use pysampler_core::labels::ThreadName;
use std::ops::Deref;

pub type ThreadIndex = u32;

/// A thread as outputs name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    pub pid: i32,
    /// OS thread id, when known.
    pub tid: Option<i32>,
    /// Python's `threading.get_ident()`.
    pub ident: u64,
    pub name: Option<String>,
}

impl ThreadInfo {
    pub fn name(&self) -> ThreadName<'_> {
        ThreadName {
            name: self.name.as_deref(),
            tid: self.tid,
            ident: self.ident,
        }
    }

    /// "MainThread (1234)" or "thread 0x7f…" when nameless.
    pub fn label(&self) -> String {
        self.name().label()
    }
}

/// (pid, Python ident, OS thread id): what makes a thread the same thread.
type ThreadKey = (i32, u64, Option<i32>);

/// The threads seen so far; derefs to them, in index order.
#[derive(Debug, Clone, Default)]
pub struct ThreadTable {
    threads: Vec<ThreadInfo>,
    keys: HashMap<ThreadKey, ThreadIndex>,
}

impl ThreadTable {
    /// The index of the thread with this identity, registering it on first
    /// sight. A new name replaces the one known (threads rename themselves);
    /// a sample without a name keeps it.
    pub fn index(
        &mut self,
        pid: i32,
        tid: Option<i32>,
        ident: u64,
        name: Option<&str>,
    ) -> ThreadIndex {
        if let Some(&index) = self.keys.get(&(pid, ident, tid)) {
            let known = &mut self.threads[index as usize];
            if let Some(name) = name.filter(|n| known.name.as_deref() != Some(*n)) {
                known.name = Some(name.to_string());
            }
            return index;
        }
        let index = self.threads.len() as ThreadIndex;
        self.threads.push(ThreadInfo {
            pid,
            tid,
            ident,
            name: name.map(str::to_string),
        });
        self.keys.insert((pid, ident, tid), index);
        index
    }

    /// `index` for a thread described in full.
    pub fn register(&mut self, thread: &ThreadInfo) -> ThreadIndex {
        self.index(thread.pid, thread.tid, thread.ident, thread.name.as_deref())
    }
}

impl Deref for ThreadTable {
    type Target = [ThreadInfo];

    fn deref(&self) -> &[ThreadInfo] {
        &self.threads
    }
}

#[cfg(test)]
mod tests {
    use super::ThreadTable;

    #[test]
    fn same_identity_same_index_and_the_latest_name() {
        let mut table = ThreadTable::default();
        let main = table.index(1, Some(1), 0xa, Some("MainThread"));
        let worker = table.index(1, Some(2), 0xb, None);
        assert_eq!((main, worker), (0, 1));
        // Another process's thread with the same ids is another thread.
        assert_eq!(table.index(2, Some(1), 0xa, Some("MainThread")), 2);
        assert_eq!(table.index(1, Some(2), 0xb, Some("renamed")), worker);
        assert_eq!(table[1].label(), "renamed (2)");
        // A sample that lacks the name keeps the known one.
        assert_eq!(table.index(1, Some(2), 0xb, None), worker);
        assert_eq!(table[1].name.as_deref(), Some("renamed"));
        assert_eq!(table.len(), 3);
    }
}
