//! OS thread ids for versions that only record the `pthread_t` (≤3.10).
//!
//! `pthread_t` is the address of glibc's `struct pthread`, whose `tid` field
//! sits at a fixed offset for a given libc build. The offset is found once by
//! looking for the place where every Python thread's struct holds one of the
//! process's thread ids, each a different one.

use crate::memory::MemorySource;

/// Bytes of `struct pthread` searched for the tid field.
const SEARCH_BYTES: usize = 2048;
/// glibc's offset on x86-64 since 2.x, tried first.
const USUAL_OFFSET: usize = 0x2d0;

/// Finds the offset of `tid` inside `struct pthread`, given the `pthread_t`s
/// of Python's threads and the tids listed in `/proc/PID/task`.
pub fn find_tid_offset(mem: &dyn MemorySource, idents: &[u64], tids: &[i32]) -> Option<usize> {
    let blocks: Vec<Vec<u8>> = idents
        .iter()
        .filter(|i| **i != 0)
        .filter_map(|i| mem.read_vec(*i, SEARCH_BYTES).ok())
        .collect();
    if blocks.is_empty() {
        return None;
    }
    let fits = |offset: usize| {
        let mut values: Vec<i32> = blocks
            .iter()
            .map(|b| i32::from_le_bytes(b[offset..offset + 4].try_into().unwrap_or([0; 4])))
            .collect();
        if !values.iter().all(|v| tids.contains(v)) {
            return false;
        }
        values.sort_unstable();
        values.windows(2).all(|w| w[0] != w[1])
    };
    if fits(USUAL_OFFSET) {
        return Some(USUAL_OFFSET);
    }
    (0..SEARCH_BYTES - 4).step_by(4).find(|o| fits(*o))
}

/// Reads the tid of the thread whose `pthread_t` is `ident`.
pub fn tid_at(mem: &dyn MemorySource, ident: u64, offset: usize) -> Option<i32> {
    if ident == 0 {
        return None;
    }
    mem.read_u32(ident.wrapping_add(offset as u64))
        .ok()
        .map(|v| v as i32)
        .filter(|v| *v > 0)
}
