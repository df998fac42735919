//! Where the reader gets bytes from. `MemorySource` is the seam: the walker
//! reads through it, so it runs the same on a live process (pysampler's
//! `LiveMemory`), on a saved snapshot and, for tests, on hand-built memory.

pub mod prefetch;
pub mod recording;

use crate::error::Result;

/// The errno a live read of unmapped memory fails with (the same on every
/// Linux architecture): every other source fails the same way.
pub const EFAULT: i32 = 14;

/// The little-endian word at byte `at` of `data`, or 0 when `data` is too
/// short: bytes copied from the target are parsed without trusting offsets.
pub fn word_at(data: &[u8], at: u64) -> u64 {
    usize::try_from(at)
        .ok()
        .and_then(|at| data.get(at..at.checked_add(8)?))
        .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .unwrap_or(0)
}

/// Where the walker gets bytes from.
pub trait MemorySource {
    /// Fills `buf` with the bytes at `addr`, or fails without partial data.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()>;

    /// Pid of the process the memory belongs to, for messages.
    fn pid(&self) -> i32;

    /// Fills several buffers at once, in order; returns how many of them,
    /// from the first, were read completely (a failed one ends the batch).
    /// Live processes do this in one syscall.
    fn read_many(&self, requests: &mut [(u64, &mut [u8])]) -> usize {
        let mut done = 0;
        for (addr, buf) in requests.iter_mut() {
            if self.read(*addr, buf).is_err() {
                break;
            }
            done += 1;
        }
        done
    }

    /// Marks the start of a group of reads that tends to repeat from one
    /// sample to the next (the thread list, one thread's walk); `None` ends
    /// the group. A source may then serve the group from one batched copy
    /// of what it read last time (see `prefetch`).
    fn begin_group(&self, _group: Option<u64>) {}

    fn read_u64(&self, addr: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn read_u32(&self, addr: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads `len` bytes into a new vector; callers cap `len` first.
    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read(addr, &mut v)?;
        Ok(v)
    }
}
