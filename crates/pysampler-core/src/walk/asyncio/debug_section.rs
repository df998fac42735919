//! `.AsyncioDebug` (3.14+): the `_asyncio` module's own description of its
//! task object and of where thread and interpreter states keep their tasks
//! (`_Py_AsyncioModuleDebugOffsets`, 13 little-endian u64). It has no cookie
//! and no version, so it is validated by its shape before any value is used.

use crate::error::{Error, Result};

/// Bytes of the section: 13 × u64.
pub const SECTION_SIZE: usize = 104;
/// Largest struct the section may describe; the real ones are < 1 KiB for a
/// task and < 300 KiB for an interpreter state.
const MAX_STRUCT: u64 = 1 << 20;

/// The values of one `.AsyncioDebug` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AsyncioDebug {
    pub task_size: u64,
    pub task_name: u64,
    pub task_awaited_by: u64,
    pub task_is_task: u64,
    pub task_awaited_by_is_set: u64,
    pub task_coro: u64,
    pub task_node: u64,
    pub interp_size: u64,
    /// `llist_node` head of the tasks of threads that have exited.
    pub interp_tasks_head: u64,
    pub thread_size: u64,
    pub thread_running_loop: u64,
    pub thread_running_task: u64,
    /// `llist_node` head of the thread's own (pending) tasks.
    pub thread_tasks_head: u64,
}

impl AsyncioDebug {
    /// Parses and checks the section's bytes: every field inside its struct,
    /// pointers aligned, the two chars adjacent as CPython lays them out.
    pub fn parse(raw: &[u8]) -> Result<AsyncioDebug> {
        if raw.len() < SECTION_SIZE {
            return Err(bad("section shorter than 104 bytes"));
        }
        let w = |i: usize| crate::memory::word_at(raw, (i * 8) as u64);
        let d = AsyncioDebug {
            task_size: w(0),
            task_name: w(1),
            task_awaited_by: w(2),
            task_is_task: w(3),
            task_awaited_by_is_set: w(4),
            task_coro: w(5),
            task_node: w(6),
            interp_size: w(7),
            interp_tasks_head: w(8),
            thread_size: w(9),
            thread_running_loop: w(10),
            thread_running_task: w(11),
            thread_tasks_head: w(12),
        };
        let sizes = [d.task_size, d.interp_size, d.thread_size];
        if sizes.iter().any(|s| *s == 0 || *s > MAX_STRUCT) {
            return Err(bad("a struct size is 0 or implausible"));
        }
        let pointers = [
            (d.task_name, d.task_size, 8),
            (d.task_awaited_by, d.task_size, 8),
            (d.task_coro, d.task_size, 8),
            (d.task_node, d.task_size, 16),
            (d.interp_tasks_head, d.interp_size, 16),
            (d.thread_running_loop, d.thread_size, 8),
            (d.thread_running_task, d.thread_size, 8),
            (d.thread_tasks_head, d.thread_size, 16),
        ];
        for (at, size, width) in pointers {
            if at % 8 != 0 || at.saturating_add(width) > size {
                return Err(bad("a field lies outside its struct or is misaligned"));
            }
        }
        if d.task_is_task >= d.task_size || d.task_awaited_by_is_set != d.task_is_task + 1 {
            return Err(bad("task flags are not where CPython puts them"));
        }
        Ok(d)
    }
}

fn bad(detail: &str) -> Error {
    Error::Layout {
        version: "asyncio".into(),
        detail: format!(".AsyncioDebug: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The section of Debian's 3.14.10, as dumped from a live process.
    fn section_314() -> Vec<u8> {
        [
            168u64, 136, 96, 108, 109, 128, 152, 225864, 10880, 936, 864, 872, 880,
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
    }

    #[test]
    fn a_real_section_parses() {
        let d = AsyncioDebug::parse(&section_314()).unwrap();
        assert_eq!((d.task_coro, d.thread_tasks_head), (128, 880));
    }

    #[test]
    fn a_bad_section_is_refused() {
        assert!(AsyncioDebug::parse(&section_314()[..96]).is_err());
        for (word, value) in [
            (0, 0),
            (1, 167),
            (6, 160),
            (4, 110),
            (12, 936),
            (9, 1u64 << 40),
        ] {
            let mut raw = section_314();
            raw[word * 8..word * 8 + 8].copy_from_slice(&value.to_le_bytes());
            assert!(AsyncioDebug::parse(&raw).is_err(), "word {word} = {value}");
        }
    }
}
