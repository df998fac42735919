//! The whole command line of a crashed process, from its initial stack:
//! the core's `NT_PRPSINFO` keeps only the first 80 bytes. The kernel lays
//! the stack out as argc, argv[], NULL, envp[], NULL, then the auxiliary
//! vector, which the core also holds as its `NT_AUXV` note: finding those
//! bytes on the stack leads back to argv.

use super::{CoreFile, AT_EXECFN};
use crate::memory::word_at;

/// How far below `AT_EXECFN` the auxiliary vector is looked for (the
/// argument and environment strings lie between, at most a few MiB).
const SEARCH_BYTES: u64 = 8 << 20;
/// Most arguments and environment entries walked over.
const MAX_POINTERS: usize = 1 << 20;
/// Longest command line returned.
const MAX_BYTES: usize = 1 << 20;

pub fn from_stack(core: &CoreFile) -> Option<String> {
    let execfn = core.auxv_value(AT_EXECFN)?;
    let (start, _) = core.memory.core_range(execfn)?;
    let from = start.max(execfn.saturating_sub(SEARCH_BYTES)) & !7;
    let mut stack = vec![0u8; usize::try_from(execfn - from).ok()?];
    core.memory.read_core_only(from, &mut stack).ok()?;
    // The vector as the note holds it, AT_NULL excluded: the stack's copy
    // is found by its first pairs (the vDSO address makes them unique).
    let needle: Vec<u8> = core
        .auxv
        .iter()
        .take(4)
        .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
        .collect();
    if needle.is_empty() {
        return None;
    }
    let auxv_at = stack
        .windows(needle.len())
        .enumerate()
        .step_by(8)
        .find(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i as u64)?;
    let word = |at: u64| word_at(&stack, at);
    // envp's NULL, then envp backwards to argv's NULL.
    let mut at = auxv_at.checked_sub(8)?;
    if word(at) != 0 {
        return None;
    }
    for _ in 0..MAX_POINTERS {
        at = at.checked_sub(8)?;
        if word(at) == 0 {
            break;
        }
    }
    // argv backwards until the word that counts them.
    let argv_end = at;
    let mut argv = Vec::new();
    for _ in 0..MAX_POINTERS {
        at = at.checked_sub(8)?;
        let w = word(at);
        if w == argv.len() as u64 {
            break;
        }
        argv.push(w);
    }
    if argv.is_empty() || word(argv_end) != 0 {
        return None;
    }
    argv.reverse();
    let mut args = Vec::with_capacity(argv.len());
    let mut total = 0;
    for ptr in argv {
        let arg = c_string(core, ptr, MAX_BYTES - total)?;
        total += arg.len() + 1;
        args.push(arg);
    }
    Some(args.join(" "))
}

/// The NUL-terminated string at `addr`, read a chunk at a time.
fn c_string(core: &CoreFile, addr: u64, limit: usize) -> Option<String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 256];
    while bytes.len() < limit {
        let at = addr.checked_add(bytes.len() as u64)?;
        // Near the end of the stack a whole chunk may not be there.
        let n = (0..=8)
            .map(|shift| 256usize >> shift)
            .find(|n| core.memory.read_core_only(at, &mut chunk[..*n]).is_ok())?;
        match chunk[..n].iter().position(|b| *b == 0) {
            Some(end) => {
                bytes.extend_from_slice(&chunk[..end]);
                return Some(String::from_utf8_lossy(&bytes).into_owned());
            }
            None => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    None
}
