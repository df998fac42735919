//! A task's coroutine chain: its coroutine's frame, then what that frame
//! awaits (the object on top of its value stack while suspended in an
//! await), down through coroutines and generators to the future at the end.
//! Bounded and cycle-checked: the chain is read from hostile memory.

use super::objects::TypeNames;
use crate::error::Result;
use crate::interpreter::CoroutineFamily;
use crate::memory::word_at;
use crate::walk::frames::RawFrame;
use crate::walk::objects::ObjectReader;

/// Coroutines followed per chain.
pub const MAX_CHAIN: usize = 256;
/// Bytes of an embedded frame read (the fields used are in the first ~90).
const FRAME_BYTES: usize = 128;
/// `_asyncio.FutureIter.future`: the future a `FutureIter` iterates.
const FUTURE_ITER_FUTURE: u64 = 16;

/// Where the fields of coroutines and their frames are, once per dump.
#[derive(Debug, Clone, Copy)]
pub struct ChainPlan {
    family: CoroutineFamily,
    frame_state: u64,
    iframe: u64,
    code: u64,
    tag_mask: u64,
    instr_ptr: u64,
    code_adaptive: u64,
    localsplus: u64,
    /// `stacktop` (slots) or `stackpointer` (an address).
    top: Top,
}

#[derive(Debug, Clone, Copy)]
enum Top {
    Slots(u64),
    Pointer(u64),
}

impl ChainPlan {
    pub fn new(interp: &crate::interpreter::Interpreter) -> Result<ChainPlan> {
        let layout = &interp.layout;
        let top = match (layout.frame.stacktop, layout.frame.stackpointer) {
            (Some(at), _) => Top::Slots(at),
            (None, _) => Top::Pointer(crate::need!(layout, frame.stackpointer)?),
        };
        Ok(ChainPlan {
            family: interp.families.coroutines,
            frame_state: crate::need!(layout, gen.frame_state)?,
            iframe: crate::need!(layout, gen.iframe)?,
            code: layout.frame.code,
            tag_mask: interp.families.frames.tag_mask(),
            instr_ptr: crate::need!(layout, frame.instr_ptr)?,
            code_adaptive: crate::need!(layout, code.code_adaptive)?,
            localsplus: layout.frame.localsplus,
            top,
        })
    }
}

/// What a chain led to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// The coroutines' frames, outermost (the task's coroutine) first.
    pub frames: Vec<RawFrame>,
    /// The embedded frame of the task's own coroutine, to find it in a
    /// thread's stack when the task is running.
    pub task_frame: u64,
    /// The task's coroutine is executing now.
    pub running: bool,
    /// The object the innermost coroutine awaits: a future (a task, a
    /// gather's future, ...) when it came through a `FutureIter`.
    pub awaits: Option<u64>,
    /// The chain was cut at `MAX_CHAIN` or looped.
    pub cut: bool,
}

/// Follows the chain from coroutine `coro`.
pub fn follow(
    reader: &ObjectReader,
    plan: &ChainPlan,
    names: &mut TypeNames,
    coro: u64,
) -> Result<Chain> {
    let mut chain = Chain {
        task_frame: coro.wrapping_add(plan.iframe),
        ..Chain::default()
    };
    let mut current = coro;
    let mut seen: Vec<u64> = Vec::new();
    while current != 0 {
        if seen.len() >= MAX_CHAIN || seen.contains(&current) {
            chain.cut = true;
            break;
        }
        seen.push(current);
        let state = reader
            .mem
            .read_vec(current.wrapping_add(plan.frame_state), 1)?[0] as i8;
        if plan.family.finished(state) {
            break;
        }
        let iframe = current.wrapping_add(plan.iframe);
        let raw = reader.mem.read_vec(iframe, FRAME_BYTES)?;
        let word = |at: u64| word_at(&raw, at);
        let code = word(plan.code) & plan.tag_mask;
        let offset = word(plan.instr_ptr).wrapping_sub(code.wrapping_add(plan.code_adaptive));
        chain.frames.push(RawFrame {
            addr: iframe,
            code,
            offset: offset as i64,
            is_generator: true,
        });
        if plan.family.executing(state) {
            chain.running |= seen.len() == 1;
            break;
        }
        if !plan.family.awaiting(state) {
            break;
        }
        let depth = plan.family.awaited_depth();
        let slot = match plan.top {
            Top::Slots(at) => {
                let top = word(at) as u32 as i32 as i64;
                if top < depth as i64 || top > 1 << 20 {
                    break;
                }
                let index = (top as u64 - depth).wrapping_mul(8);
                iframe.wrapping_add(plan.localsplus).wrapping_add(index)
            }
            // Tag bits are masked from the pointer and from the reference.
            Top::Pointer(at) => (word(at) & !7).wrapping_sub(8 * depth),
        };
        let awaited = reader.ptr(slot)? & !7;
        if awaited == 0 {
            break;
        }
        match names.of(reader, awaited)? {
            "coroutine" | "generator" => current = awaited,
            "_asyncio.FutureIter" => {
                chain.awaits = Some(reader.ptr(awaited.wrapping_add(FUTURE_ITER_FUTURE))?);
                break;
            }
            _ => break,
        }
    }
    Ok(chain)
}
