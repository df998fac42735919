//! Interning frames: each distinct (function, file, line) gets a small id, so
//! samples and the stack tree carry numbers, not strings.

use foldhash::HashMap;
use std::sync::Arc;

pub type FrameId = u32;

/// A frame as shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameInfo {
    /// Qualified name where the version has one.
    pub name: Arc<str>,
    /// Full path as the target knows it.
    pub filename: Arc<str>,
    /// Current line; 0 when unknown.
    pub line: u32,
    /// 1-based start column of the instruction (3.11+), 0 when unknown.
    /// Frames differing only here are distinct frames; the outputs that
    /// aggregate by line merge them by label (output/render.rs).
    pub column: u32,
    /// First line of the function (for `--function` aggregation).
    pub first_line: u32,
}

/// All frames seen, by id.
#[derive(Debug, Default, Clone)]
pub struct FrameTable {
    frames: Vec<FrameInfo>,
    ids: HashMap<FrameInfo, FrameId>,
}

impl FrameTable {
    pub fn intern(&mut self, frame: FrameInfo) -> FrameId {
        if let Some(id) = self.ids.get(&frame) {
            return *id;
        }
        let id = self.frames.len() as FrameId;
        self.frames.push(frame.clone());
        self.ids.insert(frame, id);
        id
    }

    pub fn get(&self, id: FrameId) -> &FrameInfo {
        &self.frames[id as usize]
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}
