//! Interpreter and thread states: the chains that lead to each thread's frames.

use crate::error::{Error, Result};
use crate::interpreter::{FrameFamily, GilSource};
use crate::walk::objects::ObjectReader;

/// Most interpreters (subinterpreters) followed.
pub const MAX_INTERPRETERS: usize = 256;
/// Most threads followed per interpreter.
pub const MAX_THREADS: usize = 16_384;

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
}

/// All interpreter states, first one first.
pub fn interpreters(reader: &ObjectReader) -> Result<Vec<u64>> {
    let mut found = Vec::new();
    let mut interp = reader.ptr(reader.interp.interp_head_ptr)?;
    while interp != 0 {
        if found.contains(&interp) || found.len() >= MAX_INTERPRETERS {
            break;
        }
        found.push(interp);
        interp = reader.ptr(interp + reader.interp.layout.interpreter.next)?;
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
pub fn thread_states(reader: &ObjectReader, interp: u64) -> Result<Vec<ThreadState>> {
    let layout = &reader.interp.layout;
    let t = &layout.thread;
    let family = reader.interp.frame_family();
    let fields = [
        t.next,
        t.interp,
        t.frame,
        t.cframe,
        t.current_frame,
        t.thread_id,
        t.native_thread_id,
    ];
    let block = fields.iter().copied().max().unwrap_or(0) as usize + 8;
    let mut threads: Vec<ThreadState> = Vec::new();
    let mut addr = reader.ptr(interp + layout.interpreter.tstate_head)?;
    let mut raw = vec![0u8; block];
    while addr != 0 && threads.len() < MAX_THREADS {
        if threads.iter().any(|t| t.addr == addr) {
            break; // a cycle in hostile memory
        }
        reader.mem.read(addr, &mut raw)?;
        let word = |at: u64| {
            u64::from_le_bytes(
                raw[at as usize..at as usize + 8]
                    .try_into()
                    .unwrap_or([0; 8]),
            )
        };
        let top_frame = match family {
            FrameFamily::FrameObjects => word(t.frame),
            FrameFamily::InterpreterFramesViaCFrame => match word(t.cframe) {
                0 => 0,
                cframe => reader.ptr(cframe + t.cframe_current_frame)?,
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
        threads.push(ThreadState {
            addr,
            interp,
            ident: word(t.thread_id),
            native_id,
            top_frame,
        });
        addr = word(t.next);
    }
    Ok(threads)
}

/// The thread state that holds the GIL, if one does.
pub fn gil_holder(reader: &ObjectReader, interp: u64) -> Result<Option<u64>> {
    let layout = &reader.interp.layout;
    match reader.interp.gil {
        GilSource::CurrentThreadPointer(addr) => Ok(Some(reader.ptr(addr)?).filter(|p| *p != 0)),
        GilSource::InterpreterGil => {
            let gil = reader.ptr(interp + layout.interpreter.ceval_gil)?;
            if gil == 0 {
                return Ok(None);
            }
            let locked = reader.mem.read_u32(gil + layout.gil.locked)?;
            if locked == 0 {
                return Ok(None);
            }
            Ok(Some(reader.ptr(gil + layout.gil.last_holder)?).filter(|p| *p != 0))
        }
        GilSource::Unknown => Ok(None),
    }
}
