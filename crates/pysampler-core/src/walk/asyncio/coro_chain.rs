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
/// Bytes of a ≤3.10 frame object read (the fields used are in the first ~110).
const FRAME_OBJECT_BYTES: usize = 128;
/// Bytes of a ≤3.10 coroutine read (`gi_frame`, `gi_running`).
const GEN_BYTES: usize = 32;
/// `_asyncio.FutureIter.future`: the future a `FutureIter` iterates.
const FUTURE_ITER_FUTURE: u64 = 16;

/// Where the fields of coroutines and their frames are, once per dump.
#[derive(Debug, Clone, Copy)]
pub struct ChainPlan {
    family: CoroutineFamily,
    code: u64,
    tag_mask: u64,
    shape: Shape,
}

/// How a coroutine holds its frame.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// 3.11+: embedded at `iframe`, its state a byte of the coroutine.
    Embedded {
        frame_state: u64,
        iframe: u64,
        instr_ptr: u64,
        code_adaptive: u64,
        localsplus: u64,
        /// `stacktop` (slots) or `stackpointer` (an address).
        top: Top,
    },
    /// ≤3.10: a frame object at `gi_frame`.
    FrameObject {
        gi_frame: u64,
        lasti: u64,
        lasti_unit: i64,
        valuestack: u64,
        status: FrameStatus,
    },
}

/// How a frame object says it is suspended, and where its stack top is.
#[derive(Debug, Clone, Copy)]
enum FrameStatus {
    /// 3.8–3.9: the coroutine's `gi_running`, the frame's `f_stacktop`.
    Running { gi_running: u64, stacktop: u64 },
    /// 3.10: the frame's `f_state` and `f_stackdepth`.
    State { state: u64, stackdepth: u64 },
}

#[derive(Debug, Clone, Copy)]
enum Top {
    Slots(u64),
    Pointer(u64),
}

impl ChainPlan {
    pub fn new(interp: &crate::interpreter::Interpreter) -> Result<ChainPlan> {
        let layout = &interp.layout;
        let family = interp.families.coroutines;
        let shape = match family {
            CoroutineFamily::FrameObjectStackTop38 | CoroutineFamily::FrameObjectState310 => {
                let status = match family {
                    CoroutineFamily::FrameObjectStackTop38 => FrameStatus::Running {
                        gi_running: crate::need!(layout, gen.running)?,
                        stacktop: crate::need!(layout, frame.stackpointer)?,
                    },
                    _ => FrameStatus::State {
                        state: crate::need!(layout, frame.state)?,
                        stackdepth: crate::need!(layout, frame.stackdepth)?,
                    },
                };
                Shape::FrameObject {
                    gi_frame: crate::need!(layout, gen.frame)?,
                    lasti: crate::need!(layout, frame.lasti)?,
                    lasti_unit: crate::need!(layout, frame.lasti_unit)?.min(16) as i64,
                    valuestack: crate::need!(layout, frame.valuestack)?,
                    status,
                }
            }
            _ => Shape::Embedded {
                frame_state: crate::need!(layout, gen.frame_state)?,
                iframe: crate::need!(layout, gen.iframe)?,
                instr_ptr: crate::need!(layout, frame.instr_ptr)?,
                code_adaptive: crate::need!(layout, code.code_adaptive)?,
                localsplus: layout.frame.localsplus,
                top: match (layout.frame.stacktop, layout.frame.stackpointer) {
                    (Some(at), _) => Top::Slots(at),
                    (None, _) => Top::Pointer(crate::need!(layout, frame.stackpointer)?),
                },
            },
        };
        Ok(ChainPlan {
            family,
            code: layout.frame.code,
            tag_mask: interp.families.frames.tag_mask(),
            shape,
        })
    }
}

/// One coroutine of a chain, as read.
struct Step {
    frame: RawFrame,
    executing: bool,
    /// Where the awaited object's reference is, when suspended in an await.
    awaited_slot: Option<u64>,
}

/// Deepest value stack believed, in slots.
const MAX_STACK_SLOTS: i64 = 1 << 20;

/// Reads coroutine `coro`'s frame; None once it has finished.
fn step(reader: &ObjectReader, plan: &ChainPlan, coro: u64) -> Result<Option<Step>> {
    match plan.shape {
        Shape::Embedded {
            frame_state,
            iframe,
            instr_ptr,
            code_adaptive,
            localsplus,
            top,
        } => {
            let state = reader.mem.read_vec(coro.wrapping_add(frame_state), 1)?[0] as i8;
            if plan.family.finished(state) {
                return Ok(None);
            }
            let iframe = coro.wrapping_add(iframe);
            let raw = reader.mem.read_vec(iframe, FRAME_BYTES)?;
            let word = |at: u64| word_at(&raw, at);
            let code = word(plan.code) & plan.tag_mask;
            let offset = word(instr_ptr).wrapping_sub(code.wrapping_add(code_adaptive));
            let depth = plan.family.awaited_depth();
            let awaited_slot = match top {
                _ if !plan.family.awaiting(state) => None,
                Top::Slots(at) => {
                    let top = word(at) as u32 as i32 as i64;
                    (top >= depth as i64 && top <= MAX_STACK_SLOTS).then(|| {
                        let index = (top as u64 - depth).wrapping_mul(8);
                        iframe.wrapping_add(localsplus).wrapping_add(index)
                    })
                }
                // Tag bits are masked from the pointer and from the reference.
                Top::Pointer(at) => Some((word(at) & !7).wrapping_sub(8 * depth)),
            };
            Ok(Some(Step {
                frame: RawFrame {
                    addr: iframe,
                    code,
                    offset: offset as i64,
                    is_generator: true,
                },
                executing: plan.family.executing(state),
                awaited_slot,
            }))
        }
        Shape::FrameObject {
            gi_frame,
            lasti,
            lasti_unit,
            valuestack,
            status,
        } => {
            let head = reader.mem.read_vec(coro, GEN_BYTES)?;
            let frame = word_at(&head, gi_frame);
            if frame == 0 {
                return Ok(None);
            }
            let raw = reader.mem.read_vec(frame, FRAME_OBJECT_BYTES)?;
            let word = |at: u64| word_at(&raw, at);
            let base = word(valuestack);
            let (executing, depth) = match status {
                FrameStatus::Running {
                    gi_running,
                    stacktop,
                } => {
                    let running = head.get(gi_running as usize).copied().unwrap_or(0) != 0;
                    // NULL while the frame runs; else a pointer past the top.
                    let top = word(stacktop);
                    let depth = match top {
                        0 => 0,
                        top => (top.wrapping_sub(base) as i64) / 8,
                    };
                    (running, if running { 0 } else { depth })
                }
                FrameStatus::State { state, stackdepth } => {
                    let state = raw.get(state as usize).copied().unwrap_or(0) as i8;
                    if plan.family.finished(state) {
                        return Ok(None);
                    }
                    let depth = match plan.family.awaiting(state) {
                        true => word(stackdepth) as u32 as i32 as i64,
                        false => 0,
                    };
                    (plan.family.executing(state), depth)
                }
            };
            let awaited_slot = (1..=MAX_STACK_SLOTS)
                .contains(&depth)
                .then(|| base.wrapping_add((depth as u64 - 1) * 8));
            let last = word(lasti) as i32 as i64;
            Ok(Some(Step {
                frame: RawFrame {
                    addr: frame,
                    code: word(plan.code),
                    offset: if last >= 0 { last * lasti_unit } else { last },
                    is_generator: false,
                },
                executing,
                awaited_slot,
            }))
        }
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
    let mut chain = Chain::default();
    let mut current = coro;
    let mut seen: Vec<u64> = Vec::new();
    while current != 0 {
        if seen.len() >= MAX_CHAIN || seen.contains(&current) {
            chain.cut = true;
            break;
        }
        seen.push(current);
        let Some(step) = step(reader, plan, current)? else {
            break;
        };
        if seen.len() == 1 {
            chain.task_frame = step.frame.addr;
        }
        chain.frames.push(step.frame);
        if step.executing {
            chain.running |= seen.len() == 1;
            break;
        }
        let Some(slot) = step.awaited_slot else {
            break;
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
