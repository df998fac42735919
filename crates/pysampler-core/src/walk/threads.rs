//! Interpreter and thread states: the chains that lead to each thread's frames.

use crate::error::{Error, Result};
use crate::interpreter::{FrameFamily, GilSource, Interpreter};
use crate::memory::word_at;
use crate::walk::objects::ObjectReader;

/// Most interpreters (subinterpreters) followed.
pub const MAX_INTERPRETERS: usize = 256;
/// Most threads followed per interpreter.
pub const MAX_THREADS: usize = 16_384;
/// Largest thread-state header read (the fields used are in the first
/// ~300 bytes; on 3.13+ their offsets come from the target's memory).
const MAX_THREAD_STATE_BYTES: usize = 16 << 10;

/// One `PyThreadState` as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadState {
    pub addr: u64,
    pub interp: u64,
    /// `threading.get_ident()` of the thread (its `pthread_t`).
    pub ident: u64,
    /// OS thread id where the version records it (3.11+).
    pub native_id: Option<i32>,
    /// Innermost frame, before filtering (0 when the thread runs no Python code).
    pub top_frame: u64,
    /// Current data-stack chunk (3.11+), where most frames live.
    pub datastack_chunk: u64,
}

/// One `PyInterpreterState`: where its threads start and, on 3.12+, its GIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterpreterState {
    pub addr: u64,
    pub tstate_head: u64,
    /// `interp->ceval.gil` (3.12+), else 0.
    pub gil: u64,
}

/// All interpreter states, first one first. Each costs one batched read.
pub fn interpreters(reader: &ObjectReader) -> Result<Vec<InterpreterState>> {
    let l = &reader.interp.layout.interpreter;
    let mut found: Vec<InterpreterState> = Vec::new();
    let mut addr = reader.ptr(reader.interp.interp_head_ptr)?;
    while addr != 0 {
        if found.iter().any(|i| i.addr == addr) || found.len() >= MAX_INTERPRETERS {
            break;
        }
        let (mut next, mut head, mut gil) = ([0u8; 8], [0u8; 8], [0u8; 8]);
        let mut requests = [
            (addr.wrapping_add(l.next), &mut next[..]),
            (addr.wrapping_add(l.tstate_head), &mut head[..]),
            (addr.wrapping_add(l.ceval_gil.unwrap_or(0)), &mut gil[..]),
        ];
        // Without `ceval.gil` (before 3.12) the third read is not made and
        // `gil` stays 0.
        let wanted = if l.ceval_gil.is_some() { 3 } else { 2 };
        if reader.mem.read_many(&mut requests[..wanted]) < wanted {
            return Err(Error::Memory {
                pid: reader.mem.pid(),
                addr,
                len: 8,
                source: std::io::Error::from_raw_os_error(crate::memory::EFAULT),
            });
        }
        found.push(InterpreterState {
            addr,
            tstate_head: u64::from_le_bytes(head),
            gil: u64::from_le_bytes(gil),
        });
        addr = u64::from_le_bytes(next);
    }
    if found.is_empty() {
        return Err(Error::NotReady {
            pid: reader.mem.pid(),
            detail: "no interpreter state yet".into(),
        });
    }
    Ok(found)
}

/// Every thread state of `interp`, in the interpreter's order (newest first).
/// `with_top_frame: false` leaves `top_frame` at 0 where finding it costs a
/// read of its own (3.11–3.12's cframe), for callers that `reread` the
/// state anyway once the thread is paused.
pub fn thread_states(
    reader: &ObjectReader,
    plan: &StatePlan,
    interp: &InterpreterState,
    with_top_frame: bool,
) -> Result<Vec<ThreadState>> {
    let mut threads: Vec<ThreadState> = Vec::new();
    let mut addr = interp.tstate_head;
    let mut raw = vec![0u8; plan.block];
    while addr != 0 && threads.len() < MAX_THREADS {
        if threads.iter().any(|t| t.addr == addr) {
            break; // a cycle in hostile memory
        }
        reader.mem.read(addr, &mut raw)?;
        threads.push(plan.parse(reader, addr, interp.addr, &raw, with_top_frame)?);
        addr = word_at(&raw, plan.next);
    }
    Ok(threads)
}

/// `state` read again: its innermost frame as of now. Called once the
/// thread is paused, since the list was read while it ran.
pub fn reread(reader: &ObjectReader, plan: &StatePlan, state: &ThreadState) -> Result<ThreadState> {
    let block = plan.block;
    let mut raw = [0u8; MAX_FRESH_BYTES];
    let raw = raw.get_mut(..block).ok_or(Error::LayoutField {
        field: "thread state header size",
        value: block as u64,
    })?;
    reader.mem.read(state.addr, raw)?;
    plan.parse(reader, state.addr, state.interp, raw, true)
}

/// Largest thread-state header re-read per sample, on the stack.
const MAX_FRESH_BYTES: usize = 4096;

/// The thread-state fields a read uses, resolved from the layout once (a
/// `StackReader` keeps its interpreter's) rather than per read.
#[derive(Debug, Clone, Copy)]
pub struct StatePlan {
    next: u64,
    thread_id: u64,
    top_frame: TopFrame,
    native_thread_id: Option<u64>,
    datastack_chunk: Option<u64>,
    /// Bytes of a thread state read, up to the last field used.
    block: usize,
}

/// Where a thread state says which frame is innermost.
#[derive(Debug, Clone, Copy)]
enum TopFrame {
    /// ≤3.10: `tstate->frame`.
    Frame(u64),
    /// 3.11–3.12: `tstate->cframe->current_frame`.
    CFrame { cframe: u64, current_frame: u64 },
    /// 3.13+: `tstate->current_frame`.
    CurrentFrame(u64),
}

impl StatePlan {
    /// Err when the layout lacks a field its frame family needs.
    pub fn new(interp: &Interpreter) -> Result<StatePlan> {
        let layout = &interp.layout;
        let t = &layout.thread;
        let top_frame = match interp.families.frames {
            FrameFamily::FrameObjects => TopFrame::Frame(crate::need!(layout, thread.frame)?),
            FrameFamily::InterpreterFramesViaCFrame => TopFrame::CFrame {
                cframe: crate::need!(layout, thread.cframe)?,
                current_frame: crate::need!(layout, thread.cframe_current_frame)?,
            },
            FrameFamily::InterpreterFrames | FrameFamily::TaggedInterpreterFrames => {
                TopFrame::CurrentFrame(crate::need!(layout, thread.current_frame)?)
            }
        };
        let top_field = match top_frame {
            TopFrame::Frame(at) | TopFrame::CurrentFrame(at) => at,
            TopFrame::CFrame { cframe, .. } => cframe,
        };
        let fields = [
            Some(t.next),
            Some(t.interp),
            Some(top_field),
            Some(t.thread_id),
            t.native_thread_id,
            t.datastack_chunk,
        ];
        let block =
            (fields.iter().copied().flatten().max().unwrap_or(0) as usize).saturating_add(8);
        if block > MAX_THREAD_STATE_BYTES {
            return Err(Error::LayoutField {
                field: "thread state header size",
                value: block as u64,
            });
        }
        Ok(StatePlan {
            next: t.next,
            thread_id: t.thread_id,
            top_frame,
            native_thread_id: t.native_thread_id,
            datastack_chunk: t.datastack_chunk,
            block,
        })
    }

    /// A thread state from its header bytes `raw`, read at `addr`.
    fn parse(
        &self,
        reader: &ObjectReader,
        addr: u64,
        interp: u64,
        raw: &[u8],
        with_top_frame: bool,
    ) -> Result<ThreadState> {
        let word = |at: u64| word_at(raw, at);
        let top_frame = match self.top_frame {
            TopFrame::Frame(at) | TopFrame::CurrentFrame(at) => word(at),
            TopFrame::CFrame {
                cframe,
                current_frame,
            } => match word(cframe) {
                0 => 0,
                _ if !with_top_frame => 0,
                cframe => reader.ptr(cframe.wrapping_add(current_frame))?,
            },
        };
        Ok(ThreadState {
            addr,
            interp,
            ident: word(self.thread_id),
            // Versions before 3.11 do not record the OS thread id.
            native_id: self
                .native_thread_id
                .and_then(|at| Some(word(at) as i32).filter(|id| *id > 0)),
            top_frame,
            datastack_chunk: self.datastack_chunk.map_or(0, word),
        })
    }
}

/// Whether the interpreter runs with a GIL: always, except a free-threaded
/// build, whose GIL is off unless turned back on at run time (PYTHON_GIL=1,
/// or an extension that needs it).
pub fn gil_enabled(reader: &ObjectReader, interp: &InterpreterState) -> Result<bool> {
    if !reader.interp.version.free_threaded {
        return Ok(true);
    }
    let enabled_at = crate::need!(reader.interp.layout, gil.enabled)?;
    if interp.gil == 0 {
        return Ok(false);
    }
    Ok(reader.mem.read_u32(interp.gil.wrapping_add(enabled_at))? != 0)
}

/// The thread state that holds the GIL, if one does.
pub fn gil_holder(reader: &ObjectReader, interp: &InterpreterState) -> Result<Option<u64>> {
    let layout = &reader.interp.layout;
    match reader.interp.gil {
        GilSource::CurrentThreadPointer(addr) => Ok(Some(reader.ptr(addr)?).filter(|p| *p != 0)),
        GilSource::InterpreterGil => {
            if interp.gil == 0 {
                return Ok(None);
            }
            let (locked_at, holder_at) = (
                crate::need!(layout, gil.locked)?,
                crate::need!(layout, gil.last_holder)?,
            );
            let (mut locked, mut holder) = ([0u8; 4], [0u8; 8]);
            let mut requests = [
                (interp.gil.wrapping_add(locked_at), &mut locked[..]),
                (interp.gil.wrapping_add(holder_at), &mut holder[..]),
            ];
            if reader.mem.read_many(&mut requests) < 2 || u32::from_le_bytes(locked) == 0 {
                return Ok(None);
            }
            Ok(Some(u64::from_le_bytes(holder)).filter(|p| *p != 0))
        }
        GilSource::Unknown => Ok(None),
    }
}
