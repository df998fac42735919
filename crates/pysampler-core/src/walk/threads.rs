//! Interpreter and thread states: the chains that lead to each thread's frames.

use crate::error::{Error, Result};
use crate::interpreter::{FrameFamily, GilSource};
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
        let wants_gil = l.ceval_gil != 0;
        let mut requests = [
            (addr.wrapping_add(l.next), &mut next[..]),
            (addr.wrapping_add(l.tstate_head), &mut head[..]),
            (addr.wrapping_add(l.ceval_gil), &mut gil[..]),
        ];
        let wanted = if wants_gil { 3 } else { 2 };
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
    interp: &InterpreterState,
    with_top_frame: bool,
) -> Result<Vec<ThreadState>> {
    let t = &reader.interp.layout.thread;
    let block = thread_state_block(reader)?;
    let mut threads: Vec<ThreadState> = Vec::new();
    let mut addr = interp.tstate_head;
    let mut raw = vec![0u8; block];
    while addr != 0 && threads.len() < MAX_THREADS {
        if threads.iter().any(|t| t.addr == addr) {
            break; // a cycle in hostile memory
        }
        reader.mem.read(addr, &mut raw)?;
        threads.push(parse_state(
            reader,
            addr,
            interp.addr,
            &raw,
            with_top_frame,
        )?);
        addr = word_at(&raw, t.next);
    }
    Ok(threads)
}

/// `state` read again: its innermost frame as of now. Called once the
/// thread is paused, since the list was read while it ran.
pub fn reread(reader: &ObjectReader, state: &ThreadState) -> Result<ThreadState> {
    let block = thread_state_block(reader)?;
    let mut raw = [0u8; MAX_FRESH_BYTES];
    let raw = raw.get_mut(..block).ok_or(Error::LayoutField {
        field: "thread state header size",
        value: block as u64,
    })?;
    reader.mem.read(state.addr, raw)?;
    parse_state(reader, state.addr, state.interp, raw, true)
}

/// Largest thread-state header re-read per sample, on the stack.
const MAX_FRESH_BYTES: usize = 4096;

fn thread_state_block(reader: &ObjectReader) -> Result<usize> {
    let t = &reader.interp.layout.thread;
    let fields = [
        t.next,
        t.interp,
        t.frame,
        t.cframe,
        t.current_frame,
        t.thread_id,
        t.native_thread_id,
        t.datastack_chunk,
    ];
    let block = (fields.iter().copied().max().unwrap_or(0) as usize).saturating_add(8);
    if block > MAX_THREAD_STATE_BYTES {
        return Err(Error::LayoutField {
            field: "thread state header size",
            value: block as u64,
        });
    }
    Ok(block)
}

/// A thread state from its header bytes `raw`, read at `addr`.
fn parse_state(
    reader: &ObjectReader,
    addr: u64,
    interp: u64,
    raw: &[u8],
    with_top_frame: bool,
) -> Result<ThreadState> {
    let t = &reader.interp.layout.thread;
    let family = reader.interp.frame_family();
    let word = |at: u64| word_at(raw, at);
    let top_frame = match family {
        FrameFamily::FrameObjects => word(t.frame),
        FrameFamily::InterpreterFramesViaCFrame => match word(t.cframe) {
            0 => 0,
            _ if !with_top_frame => 0,
            cframe => reader.ptr(cframe.wrapping_add(t.cframe_current_frame))?,
        },
        FrameFamily::InterpreterFrames | FrameFamily::TaggedInterpreterFrames => {
            word(t.current_frame)
        }
    };
    let native_id = if t.native_thread_id != 0 {
        Some(word(t.native_thread_id) as i32).filter(|id| *id > 0)
    } else {
        None
    };
    Ok(ThreadState {
        addr,
        interp,
        ident: word(t.thread_id),
        native_id,
        top_frame,
        datastack_chunk: if t.datastack_chunk != 0 {
            word(t.datastack_chunk)
        } else {
            0
        },
    })
}

/// The thread state that holds the GIL, if one does.
pub fn gil_holder(reader: &ObjectReader, interp: &InterpreterState) -> Result<Option<u64>> {
    let g = &reader.interp.layout.gil;
    match reader.interp.gil {
        GilSource::CurrentThreadPointer(addr) => Ok(Some(reader.ptr(addr)?).filter(|p| *p != 0)),
        GilSource::InterpreterGil => {
            if interp.gil == 0 {
                return Ok(None);
            }
            let (mut locked, mut holder) = ([0u8; 4], [0u8; 8]);
            let mut requests = [
                (interp.gil.wrapping_add(g.locked), &mut locked[..]),
                (interp.gil.wrapping_add(g.last_holder), &mut holder[..]),
            ];
            if reader.mem.read_many(&mut requests) < 2 || u32::from_le_bytes(locked) == 0 {
                return Ok(None);
            }
            Ok(Some(u64::from_le_bytes(holder)).filter(|p| *p != 0))
        }
        GilSource::Unknown => Ok(None),
    }
}
