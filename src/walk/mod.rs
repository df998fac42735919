//! From thread states to named frames: the part of pysampler that understands
//! CPython's memory.

pub mod code;
pub mod dict;
pub mod frames;
pub mod linetable;
pub mod locals;
pub mod native_ids;
pub mod objects;
pub mod thread_names;
pub mod threads;

use crate::error::Result;
use crate::interpreter::Interpreter;
use crate::process::memory::MemorySource;
use code::CodeCache;
use locals::Local;
use objects::ObjectReader;
use std::sync::Arc;
use thread_names::ThreadNames;

/// One frame with its names resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub code: Arc<code::CodeInfo>,
    pub line: u32,
    /// Filled only when locals were asked for.
    pub locals: Vec<Local>,
}

/// One thread's stack, innermost frame first.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadStack {
    pub ident: u64,
    pub native_id: Option<i32>,
    pub name: Option<String>,
    pub owns_gil: bool,
    pub frames: Vec<Frame>,
    /// The stack was deeper than `frames::MAX_DEPTH`.
    pub truncated: bool,
    /// Frames that could not be read (freed or changing under us).
    pub unreadable_frames: usize,
}

/// Reads every thread's stack of one interpreter, keeping what can be reused
/// between reads (code objects, thread names, the tid offset).
pub struct StackReader {
    pub interp: Interpreter,
    pub mem: Box<dyn MemorySource + Send>,
    codes: CodeCache,
    names: ThreadNames,
    tid_offset: Option<Option<usize>>,
}

impl StackReader {
    pub fn new(interp: Interpreter, mem: Box<dyn MemorySource + Send>) -> StackReader {
        StackReader {
            interp,
            mem,
            codes: CodeCache::default(),
            names: ThreadNames::default(),
            tid_offset: None,
        }
    }

    /// Reads all threads. `tids` are the process's OS threads (used to map
    /// `pthread_t` to tids on ≤3.10); `with_locals` also reads local variables.
    pub fn read(&mut self, tids: &[i32], with_locals: bool) -> Result<Vec<ThreadStack>> {
        let reader = ObjectReader::new(self.mem.as_ref(), &self.interp);
        let mut stacks = Vec::new();
        for interp in threads::interpreters(&reader)? {
            let states = threads::thread_states(&reader, interp)?;
            let holder = threads::gil_holder(&reader, interp).unwrap_or(None);
            if self.tid_offset.is_none() && !states.iter().all(|s| s.native_id.is_some()) {
                let idents: Vec<u64> = states.iter().map(|s| s.ident).collect();
                self.tid_offset = Some(native_ids::find_tid_offset(reader.mem, &idents, tids));
            }
            self.names.refresh(&reader, interp, &states);
            for state in states {
                let (raw, truncated) = frames::walk(&reader, state.top_frame)?;
                let mut stack = ThreadStack {
                    ident: state.ident,
                    native_id: state.native_id.or_else(|| {
                        let offset = self.tid_offset.flatten()?;
                        native_ids::tid_at(reader.mem, state.ident, offset)
                    }),
                    name: self.names.get(state.ident),
                    owns_gil: holder == Some(state.addr),
                    frames: Vec::with_capacity(raw.len()),
                    truncated,
                    unreadable_frames: 0,
                };
                let format = self.interp.version.line_table_format();
                for frame in raw {
                    let code = match self.codes.get(&reader, frame.code) {
                        Ok(c) => c,
                        Err(_) => {
                            stack.unreadable_frames += 1;
                            continue;
                        }
                    };
                    // 3.11+: a frame whose first instructions have not run yet
                    // is incomplete and not shown, as CPython itself does.
                    if !frame.is_generator
                        && frame.offset >= 0
                        && (frame.offset as u64) < code.first_traceable as u64
                    {
                        continue;
                    }
                    let locals = if with_locals {
                        locals::read_locals(&reader, frame.addr, frame.code).unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    stack.frames.push(Frame {
                        line: code.line(format, frame.offset),
                        code,
                        locals,
                    });
                }
                stacks.push(stack);
            }
        }
        Ok(stacks)
    }
}
