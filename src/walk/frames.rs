//! Following a thread's frame chain. One walker for every version: the
//! `FrameFamily` says how a frame points to its code and instruction.

use crate::error::{Error, Result};
use crate::interpreter::FrameFamily;
use crate::walk::objects::ObjectReader;
use std::collections::HashSet;

/// Frames read per thread before the stack is reported as truncated.
pub const MAX_DEPTH: usize = 10_000;

/// `_PyInterpreterFrame.owner` values from which on a frame is an
/// interpreter-internal entry/shim frame, not Python code (3.12+).
const FIRST_INTERNAL_OWNER: u8 = 3;
const OWNED_BY_GENERATOR: u8 = 1;

/// One frame as found in memory, before names are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame {
    pub addr: u64,
    pub code: u64,
    /// Byte offset of the current instruction in the bytecode; -1 before the
    /// first instruction ran.
    pub offset: i64,
    /// Whether this frame belongs to a generator/coroutine (3.11+), which is
    /// never "incomplete".
    pub is_generator: bool,
}

/// Appends the frames starting at `top` to `frames`, innermost first; returns
/// whether the walk stopped at `MAX_DEPTH`.
pub fn walk(reader: &ObjectReader, top: u64, frames: &mut Vec<RawFrame>) -> Result<bool> {
    let family = reader.interp.frame_family();
    let f = &reader.interp.layout.frame;
    let fields = [f.previous, f.code, f.lasti, f.instr_ptr, f.owner];
    let block = fields.iter().copied().max().unwrap_or(0) as usize + 8;
    let mut raw = vec![0u8; block];
    let mut seen = HashSet::new();
    let mut addr = top;
    let code_adaptive = reader.interp.layout.code.code_adaptive;
    while addr != 0 {
        if seen.len() >= MAX_DEPTH {
            return Ok(true);
        }
        if !seen.insert(addr) {
            return Err(Error::BadData(format!("frame chain loops at 0x{addr:x}")));
        }
        reader.mem.read(addr, &mut raw)?;
        let word = |at: u64| {
            u64::from_le_bytes(
                raw[at as usize..at as usize + 8]
                    .try_into()
                    .unwrap_or([0; 8]),
            )
        };
        let previous = word(f.previous);
        let code = word(f.code) & family.tag_mask();
        match family {
            FrameFamily::FrameObjects => {
                let lasti = word(f.lasti) as i32 as i64;
                // 3.10 counts instructions (2 bytes each); older versions count bytes.
                let offset = if reader.interp.version.minor == 10 && lasti >= 0 {
                    lasti * 2
                } else {
                    lasti
                };
                frames.push(RawFrame {
                    addr,
                    code,
                    offset,
                    is_generator: false,
                });
            }
            _ => {
                let owner = raw[f.owner as usize];
                if owner < FIRST_INTERNAL_OWNER && code != 0 {
                    let instr = word(f.instr_ptr);
                    let offset = instr.wrapping_sub(code + code_adaptive) as i64;
                    frames.push(RawFrame {
                        addr,
                        code,
                        offset,
                        is_generator: owner == OWNED_BY_GENERATOR,
                    });
                }
            }
        }
        addr = previous;
    }
    Ok(false)
}
