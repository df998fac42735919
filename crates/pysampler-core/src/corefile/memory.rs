//! The memory of a crashed process: the core's `PT_LOAD` segments, and for
//! what the core left out (the binaries' code and read-only data, which the
//! kernel's default filter does not dump), the mapped files themselves at the
//! offsets the core's `NT_FILE` table gives.

use crate::error::{Error, Result};
use crate::memory::{MemorySource, EFAULT};
use std::sync::Arc;

/// Bytes shared between readers: a memory-mapped core or binary.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A range of addresses and where its bytes are in `bytes`.
#[derive(Clone)]
struct Piece {
    start: u64,
    end: u64,
    /// Position of `start`'s byte in `bytes`.
    at: u64,
    bytes: SharedBytes,
}

impl Piece {
    /// Copies what this piece holds of `addr..` into the front of `buf`;
    /// how many bytes, 0 when it holds none.
    fn copy(&self, addr: u64, buf: &mut [u8]) -> usize {
        if addr < self.start || addr >= self.end {
            return 0;
        }
        let data = (*self.bytes).as_ref();
        let from = self.at.saturating_add(addr - self.start);
        let n = (self.end - addr).min(buf.len() as u64);
        let Some(src) = usize::try_from(from)
            .ok()
            .and_then(|f| data.get(f..f.checked_add(n as usize)?))
        else {
            return 0;
        };
        buf[..src.len()].copy_from_slice(src);
        src.len()
    }
}

/// Memory read from a core file, then from the files it maps.
#[derive(Clone)]
pub struct CoreMemory {
    pid: i32,
    /// The core's segments (their stored part), sorted by address.
    core: Vec<Piece>,
    /// File-backed ranges, sorted by address.
    files: Vec<Piece>,
    /// Ranges the core was to hold but that are past its end (a truncated
    /// core): the files on disk hold what the program started with there,
    /// not what it had, so these are not read from them.
    lost: Vec<(u64, u64)>,
}

impl CoreMemory {
    /// The memory of `core`'s segments, each (address, stored length,
    /// offset in the core's bytes); a segment past the end of the bytes (a
    /// truncated core) keeps what is there.
    pub(crate) fn new(pid: i32, core: SharedBytes, segments: &[(u64, u64, u64)]) -> CoreMemory {
        let len = (*core).as_ref().len() as u64;
        let lost = segments
            .iter()
            .filter(|(_, stored, offset)| offset.saturating_add(*stored) > len)
            .map(|&(start, stored, offset)| {
                let kept = len.saturating_sub(offset).min(stored);
                (start.saturating_add(kept), start.saturating_add(stored))
            })
            .collect();
        let mut pieces: Vec<Piece> = segments
            .iter()
            .filter(|(_, _, offset)| *offset < len)
            .filter_map(|&(start, stored, offset)| {
                let stored = stored.min(len - offset);
                Some(Piece {
                    start,
                    end: start.checked_add(stored)?,
                    at: offset,
                    bytes: core.clone(),
                })
            })
            .filter(|p| p.end > p.start)
            .collect();
        pieces.sort_by_key(|p| p.start);
        CoreMemory {
            pid,
            core: pieces,
            files: Vec::new(),
            lost,
        }
    }

    /// Adds a file's bytes mapped at `start..end` from its byte `offset`
    /// (read only where the core has nothing).
    pub fn add_file(&mut self, start: u64, end: u64, offset: u64, bytes: SharedBytes) {
        if end > start {
            self.files.push(Piece {
                start,
                end,
                at: offset,
                bytes,
            });
            self.files.sort_by_key(|p| p.start);
        }
    }

    /// Reads from the core's own bytes only (what the process held, not
    /// what the files on disk hold now).
    pub fn read_core_only(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.read_from(&[&self.core], addr, buf)
    }

    /// The addresses of the core segment that holds `addr`.
    pub fn core_range(&self, addr: u64) -> Option<(u64, u64)> {
        find(&self.core, addr).map(|p| (p.start, p.end))
    }

    fn read_from(&self, sources: &[&Vec<Piece>], addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        // Each turn copies at least one byte or fails: bounded by buf.len().
        while done < buf.len() {
            let at = addr
                .checked_add(done as u64)
                .ok_or_else(|| self.fault(addr, buf.len()))?;
            let copied = sources
                .iter()
                .find_map(|pieces| {
                    let n = find(pieces, at)?.copy(at, &mut buf[done..]);
                    (n > 0).then_some(n)
                })
                .ok_or_else(|| self.fault(addr, buf.len()))?;
            done += copied;
        }
        Ok(())
    }

    #[cold]
    fn fault(&self, addr: u64, len: usize) -> Error {
        Error::Memory {
            pid: self.pid,
            addr,
            len,
            source: std::io::Error::from_raw_os_error(EFAULT),
        }
    }
}

/// The piece holding `addr`.
fn find(pieces: &[Piece], addr: u64) -> Option<&Piece> {
    let after = pieces.partition_point(|p| p.start <= addr);
    pieces[..after].last().filter(|p| addr < p.end)
}

impl MemorySource for CoreMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let end = addr.saturating_add(buf.len() as u64);
        if self.lost.iter().any(|(s, e)| addr < *e && *s < end) {
            buf.fill(0);
            return Err(self.fault(addr, buf.len()));
        }
        let result = self.read_from(&[&self.core, &self.files], addr, buf);
        if result.is_err() {
            buf.fill(0);
        }
        result
    }

    fn pid(&self) -> i32 {
        self.pid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_first_then_files_across_pieces() {
        let core: SharedBytes = Arc::new((0..=255u8).collect::<Vec<u8>>());
        // 0x1000..0x1010 from core bytes 16..32; a segment past the end is cut.
        let mut mem = CoreMemory::new(5, core, &[(0x1000, 16, 16), (0x3000, 100, 250)]);
        let file: SharedBytes = Arc::new(vec![0xee; 64]);
        mem.add_file(0x1000, 0x1040, 0, file.clone());
        let mut buf = [0u8; 20];
        mem.read(0x100e, &mut buf).unwrap();
        assert_eq!(&buf[..2], &[30, 31]);
        assert!(buf[2..].iter().all(|b| *b == 0xee));
        assert!(mem.read_core_only(0x100e, &mut buf).is_err());
        let mut six = [0u8; 6];
        mem.read(0x3000, &mut six).unwrap();
        assert_eq!(six, [250, 251, 252, 253, 254, 255]);
        assert!(mem.read(0x3000, &mut [0u8; 7]).is_err());
        // Cut short: not read from a file mapped there either.
        mem.add_file(0x3000, 0x4000, 0, file);
        assert!(mem.read(0x3010, &mut [0u8; 1]).is_err());
        assert!(mem.read(0x103f, &mut [0u8; 2]).is_err());
        assert!(mem.read(u64::MAX, &mut [0u8; 2]).is_err());
        assert_eq!(mem.pid(), 5);
    }
}
