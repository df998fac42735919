//! Following a thread's frame chain. One walker for every version: the
//! `FrameFamily` says how a frame points to its code and instruction.
//!
//! Reading is where a profiler's cost goes, so the walker reads in bulk:
//! - 3.11+: frames live in the thread's data-stack chunks. The current chunk,
//!   up to the innermost frame, is copied in one read and frames are parsed
//!   locally; older chunks are copied whole when the chain reaches them.
//! - ≤3.10: frames are separate heap objects, read one by one. A sampler
//!   serves them from one batched copy of the regions its previous sample
//!   read (process::prefetch), so a walk costs no system call per frame;
//!   the walker once kept its own copy of the previous chain too, which
//!   only doubled that work inside the pause. Every byte used is read
//!   during this walk, so nothing is stale.

use crate::error::{Error, Result};
use crate::interpreter::FrameFamily;
use crate::memory::word_at;
use crate::walk::objects::ObjectReader;
use crate::walk::threads::ThreadState;
// foldhash: the hot path hashes addresses and ids many times per sample;
// SipHash showed in profiles, foldhash (randomly seeded) does not.
use foldhash::HashSet;

/// Frames read per thread before the stack is reported as truncated.
pub const MAX_DEPTH: usize = 10_000;

/// `_PyInterpreterFrame.owner` values from which on a frame is an
/// interpreter-internal entry/shim frame, not Python code (3.12+).
const FIRST_INTERNAL_OWNER: u8 = 3;
const OWNED_BY_GENERATOR: u8 = 1;
/// Largest data-stack chunk copied (chunks are 16 KiB unless a frame needs more).
const MAX_CHUNK_BYTES: u64 = 4 << 20;
/// Chunks followed back per walk.
const MAX_CHUNKS: usize = 4096;
/// Largest frame header read (the fields used are in the first ~80 bytes).
const MAX_BLOCK: usize = 256;
/// Frames visited per round (one walk of each thread, see `FrameWalker`)
/// before further walks are cut: `MAX_DEPTH` per thread times thousands of
/// threads would otherwise let hostile memory make one sample take seconds.
pub const MAX_ROUND_FRAMES: usize = 250_000;
/// Data-stack chunk bytes copied per round.
const MAX_ROUND_CHUNK_BYTES: u64 = 256 << 20;
/// Threads remembered per round.
const MAX_ROUND_THREADS: usize = 1 << 16;

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

/// Finds a loop in a chain without remembering every address (Brent's
/// method): the chain is compared with one saved address, saved again at
/// each power of two. A loop is found within three times the length of the
/// chain up to its end, and a chain without one costs a comparison per
/// frame, no hashing.
struct LoopCheck {
    saved: u64,
    steps: usize,
    power: usize,
}

impl Default for LoopCheck {
    fn default() -> Self {
        LoopCheck {
            saved: 0,
            steps: 0,
            power: 1,
        }
    }
}

impl LoopCheck {
    /// Whether `addr`, the next address of the chain, was seen before.
    fn revisits(&mut self, addr: u64) -> bool {
        if self.steps > 0 && addr == self.saved {
            return true;
        }
        if self.steps == self.power {
            self.saved = addr;
            self.power *= 2;
            self.steps = 0;
        }
        if self.steps == 0 {
            self.saved = addr;
        }
        self.steps += 1;
        false
    }
}

/// A copy of target memory made during one walk.
struct Window {
    start: u64,
    data: Vec<u8>,
}

impl Window {
    fn get(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let from = addr.checked_sub(self.start)? as usize;
        self.data.get(from..from.checked_add(len)?)
    }
}

/// The frame fields a walk reads, resolved from the layout once (a
/// `StackReader` keeps its interpreter's) rather than per walk or frame.
#[derive(Debug, Clone, Copy)]
pub struct FramePlan {
    previous: u64,
    code: u64,
    /// Low bits to clear from the code reference (tagged on 3.14+).
    tag_mask: u64,
    position: Position,
    /// Where the frames live in data-stack chunks (3.11+), the chunk's fields.
    chunks: Option<ChunkFields>,
    /// Bytes of a frame read, up to the last field used.
    block: usize,
}

/// `_PyStackChunk`'s fields the walker follows.
#[derive(Debug, Clone, Copy)]
struct ChunkFields {
    previous: u64,
    size: u64,
}

/// Where a frame says which instruction it runs.
#[derive(Debug, Clone, Copy)]
enum Position {
    /// ≤3.10: `f_lasti`, an index into the code in units of `unit` bytes.
    LastInstruction { lasti: u64, unit: i64 },
    /// 3.11+: a pointer into the code object's adaptive bytecode, and the
    /// frame's owner (generator, thread, C stack).
    InstructionPointer {
        instr_ptr: u64,
        owner: u64,
        code_adaptive: u64,
    },
}

impl FramePlan {
    /// Err when the layout lacks a field its frame family needs.
    pub fn new(interp: &crate::interpreter::Interpreter) -> Result<FramePlan> {
        let (layout, family) = (&interp.layout, interp.families.frames);
        let f = &layout.frame;
        let (position, chunks) = match family {
            FrameFamily::FrameObjects => {
                let position = Position::LastInstruction {
                    lasti: crate::need!(layout, frame.lasti)?,
                    // A code unit is a few bytes; a bigger unit is hostile.
                    unit: crate::need!(layout, frame.lasti_unit)?.min(16) as i64,
                };
                (position, None)
            }
            FrameFamily::InterpreterFramesViaCFrame
            | FrameFamily::InterpreterFrames
            | FrameFamily::TaggedInterpreterFrames => {
                let position = Position::InstructionPointer {
                    instr_ptr: crate::need!(layout, frame.instr_ptr)?,
                    owner: crate::need!(layout, frame.owner)?,
                    code_adaptive: crate::need!(layout, code.code_adaptive)?,
                };
                let chunks = ChunkFields {
                    previous: crate::need!(layout, chunk.previous)?,
                    size: crate::need!(layout, chunk.size)?,
                };
                (position, Some(chunks))
            }
        };
        let last = match position {
            Position::LastInstruction { lasti, .. } => lasti,
            Position::InstructionPointer {
                instr_ptr, owner, ..
            } => instr_ptr.max(owner),
        };
        let block = (f.previous.max(f.code).max(last) as usize).saturating_add(8);
        if block > MAX_BLOCK {
            return Err(Error::LayoutField {
                field: "frame header size",
                value: block as u64,
            });
        }
        Ok(FramePlan {
            previous: f.previous,
            code: f.code,
            tag_mask: family.tag_mask(),
            position,
            chunks,
            block,
        })
    }
}

/// Walks frame chains, reusing its buffers from one walk to the next.
///
/// Work is also capped per *round*: the walks since the walker last saw a
/// thread (interpreter, thread state) again, i.e. one sample of every
/// thread, or of the subset a sampler walks. A round visits at most
/// `MAX_ROUND_FRAMES` frames and copies at most `MAX_ROUND_CHUNK_BYTES`;
/// past that, walks stop early and report their stacks as truncated.
#[derive(Default)]
pub struct FrameWalker {
    /// (interpreter, thread state) of the walks of this round.
    round: HashSet<(u64, u64)>,
    round_frames: usize,
    round_chunk_bytes: u64,
    /// Data-stack chunks copied in this walk (3.11+).
    chunks: Vec<Window>,
    /// Buffers of earlier walks' chunks, reused so walks do not allocate.
    spare: Vec<Vec<u8>>,
    next_chunk: u64,
}

impl FrameWalker {
    /// Appends `thread`'s frames to `out`, innermost first; returns whether
    /// the walk stopped at `MAX_DEPTH`.
    /// `plan` is `FramePlan::new` of `reader`'s interpreter.
    pub fn walk(
        &mut self,
        reader: &ObjectReader,
        plan: &FramePlan,
        thread: &ThreadState,
        out: &mut Vec<RawFrame>,
    ) -> Result<bool> {
        // Plain locals, so the loop keeps them in registers.
        let FramePlan {
            previous: previous_at,
            code: code_at,
            tag_mask,
            position,
            chunks,
            block,
        } = *plan;
        let (modern, instr_ptr_at, owner_at, code_adaptive, lasti_at, lasti_unit) = match position {
            Position::InstructionPointer {
                instr_ptr,
                owner,
                code_adaptive,
            } => (true, instr_ptr, owner as usize, code_adaptive, 0, 0),
            Position::LastInstruction { lasti, unit } => (false, 0, 0, 0, lasti, unit),
        };
        self.start_walk(thread);
        if let Some(fields) = chunks {
            self.copy_current_chunk(reader, thread, block, fields);
        }
        let mut raw = [0u8; MAX_BLOCK];
        let mut addr = thread.top_frame;
        let mut truncated = false;
        let mut depth = 0usize;
        let mut loops = LoopCheck::default();
        while addr != 0 {
            if depth >= MAX_DEPTH || self.round_frames >= MAX_ROUND_FRAMES {
                truncated = true;
                break;
            }
            depth += 1;
            self.round_frames += 1;
            if loops.revisits(addr) {
                return Err(Error::Loop {
                    what: "frame chain",
                    addr,
                });
            }
            self.fetch(reader, addr, &mut raw[..block], chunks)?;
            let word = |at: u64| word_at(&raw, at);
            let previous = word(previous_at);
            let code = word(code_at) & tag_mask;
            if modern {
                let owner = raw.get(owner_at).copied().unwrap_or(u8::MAX);
                if owner < FIRST_INTERNAL_OWNER && code != 0 {
                    let offset =
                        word(instr_ptr_at).wrapping_sub(code.wrapping_add(code_adaptive)) as i64;
                    out.push(RawFrame {
                        addr,
                        code,
                        offset,
                        is_generator: owner == OWNED_BY_GENERATOR,
                    });
                }
            } else {
                let lasti = word(lasti_at) as i32 as i64;
                // -1: no instruction has run yet, whatever the unit.
                let offset = if lasti >= 0 {
                    lasti * lasti_unit
                } else {
                    lasti
                };
                out.push(RawFrame {
                    addr,
                    code,
                    offset,
                    is_generator: false,
                });
            }
            addr = previous;
        }
        Ok(truncated)
    }

    /// Starts a new round when `thread` was walked in this one.
    fn start_walk(&mut self, thread: &ThreadState) {
        let key = (thread.interp, thread.addr);
        if self.round.contains(&key) {
            self.round.clear();
            self.round_frames = 0;
            self.round_chunk_bytes = 0;
        }
        if self.round.len() < MAX_ROUND_THREADS {
            self.round.insert(key);
        }
    }

    /// Copies the current data-stack chunk up to the innermost frame.
    fn copy_current_chunk(
        &mut self,
        reader: &ObjectReader,
        thread: &ThreadState,
        block: usize,
        fields: ChunkFields,
    ) {
        self.spare.extend(self.chunks.drain(..).map(|w| w.data));
        self.next_chunk = 0;
        let chunk = thread.datastack_chunk;
        let top = thread.top_frame;
        if chunk == 0 || top < chunk || top - chunk > MAX_CHUNK_BYTES {
            return; // the innermost frame is elsewhere (a generator, the C stack)
        }
        let len = (top - chunk) as usize + block;
        self.copy_chunk(reader, chunk, len, fields);
    }

    fn copy_chunk(
        &mut self,
        reader: &ObjectReader,
        chunk: u64,
        len: usize,
        fields: ChunkFields,
    ) -> bool {
        if self.round_chunk_bytes.saturating_add(len as u64) > MAX_ROUND_CHUNK_BYTES {
            return false;
        }
        self.round_chunk_bytes += len as u64;
        let mut data = self.spare.pop().unwrap_or_default();
        // Filled by the read (or dropped); only growth is zeroed.
        data.resize(len, 0);
        if reader.mem.read(chunk, &mut data).is_err() {
            self.spare.push(data);
            return false;
        }
        self.next_chunk = word_at(&data, fields.previous);
        self.chunks.push(Window { start: chunk, data });
        true
    }

    /// Copies the next older chunk, if there is one. Returns false when the
    /// chain of chunks is exhausted.
    fn copy_older_chunk(&mut self, reader: &ObjectReader, fields: ChunkFields) -> bool {
        let chunk = self.next_chunk;
        // A chunk seen before means the chain loops (hostile memory).
        if chunk == 0
            || self.chunks.len() >= MAX_CHUNKS
            || self.chunks.iter().any(|w| w.start == chunk)
        {
            return false;
        }
        let copied: usize = self.chunks.iter().map(|w| w.data.len()).sum();
        if copied as u64 > MAX_CHUNK_BYTES * 16 {
            return false;
        }
        self.next_chunk = 0;
        let Ok(size) = reader.mem.read_u64(chunk.wrapping_add(fields.size)) else {
            return false;
        };
        if size == 0 || size > MAX_CHUNK_BYTES {
            return false;
        }
        self.copy_chunk(reader, chunk, size as usize, fields)
    }

    /// The first `raw.len()` bytes of the frame at `addr`, from this walk's
    /// chunk copies (when frames live in `chunks`) if they hold it, else
    /// read now.
    fn fetch(
        &mut self,
        reader: &ObjectReader,
        addr: u64,
        raw: &mut [u8],
        chunks: Option<ChunkFields>,
    ) -> Result<()> {
        let len = raw.len();
        if let Some(fields) = chunks {
            loop {
                if let Some(bytes) = self.chunks.iter().find_map(|w| w.get(addr, len)) {
                    raw.copy_from_slice(bytes);
                    return Ok(());
                }
                // Frames in older chunks are reached in order, so the next
                // older chunk is the one to copy; others (generators, C stack
                // entry frames) are read directly.
                if !self.copy_older_chunk(reader, fields) {
                    break;
                }
            }
        }
        reader.mem.read(addr, raw)
    }
}

#[cfg(test)]
mod tests {
    use super::LoopCheck;

    /// Steps until `LoopCheck` reports the chain `0, 1, …, tail + len - 1`
    /// that then loops back to `tail`, or None if it never does.
    fn found_after(tail: u64, len: u64) -> Option<usize> {
        let mut check = LoopCheck::default();
        let next = |a: u64| if a + 1 < tail + len { a + 1 } else { tail };
        let mut addr = 0;
        for step in 0..10 * (tail + len) as usize {
            if check.revisits(addr) {
                return Some(step);
            }
            addr = next(addr);
        }
        None
    }

    #[test]
    fn loops_of_every_shape_are_found_soon() {
        for tail in [0, 1, 2, 7, 100] {
            for len in [1, 2, 3, 5, 64, 65, 1000] {
                let steps = found_after(tail, len).expect("loop not found");
                assert!(
                    steps as u64 <= 3 * (tail + len) + 2,
                    "{tail}+{len}: {steps}"
                );
            }
        }
    }

    #[test]
    fn a_chain_without_a_loop_is_never_reported() {
        let mut check = LoopCheck::default();
        assert!((1..20_000u64).all(|a| !check.revisits(a * 16)));
    }
}
