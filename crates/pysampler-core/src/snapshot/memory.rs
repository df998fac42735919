//! The memory of a snapshot: sorted regions, read by binary search.

use crate::error::{Error, Result};
use crate::memory::{MemorySource, EFAULT};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The memory of a snapshot. Cheap to clone (shared), `Send + Sync`.
pub struct SnapshotMemory {
    pid: i32,
    image: Arc<Image>,
    /// Index of the span the last read hit: the walker's reads cluster, so
    /// most reads skip the binary search.
    last: AtomicUsize,
}

impl Clone for SnapshotMemory {
    fn clone(&self) -> Self {
        SnapshotMemory::new(self.pid, self.image.clone())
    }
}

pub(crate) struct Image {
    /// Sorted, non-overlapping, each non-empty.
    pub(crate) spans: Vec<Span>,
    /// Bytes the spans point into (for a loaded file, the whole file).
    pub(crate) data: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Position of the span's first byte in `Image::data` (0 for zero spans).
    pub(crate) offset: usize,
    /// All zero bytes, not stored.
    pub(crate) zero: bool,
}

impl Span {
    /// Copies `buf.len()` bytes at `addr` (inside this span) into `buf`.
    #[inline]
    fn copy(&self, data: &[u8], addr: u64, buf: &mut [u8]) {
        if self.zero {
            buf.fill(0);
        } else {
            let from = self.offset + (addr - self.start) as usize;
            buf.copy_from_slice(&data[from..from + buf.len()]);
        }
    }
}

impl std::fmt::Debug for SnapshotMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotMemory")
            .field("pid", &self.pid)
            .field("regions", &self.image.spans.len())
            .field("bytes", &self.total_bytes())
            .field("stored_bytes", &self.stored_bytes())
            .finish()
    }
}

impl SnapshotMemory {
    pub(crate) fn new(pid: i32, image: Arc<Image>) -> SnapshotMemory {
        SnapshotMemory {
            pid,
            image,
            last: AtomicUsize::new(0),
        }
    }

    /// The same memory, reported as belonging to `pid` (in messages).
    pub fn with_pid(self, pid: i32) -> SnapshotMemory {
        SnapshotMemory::new(pid, self.image)
    }

    /// Memory made of the given regions (start address, bytes), for tests that
    /// build a process image by hand. Regions may come in any order; empty ones
    /// are dropped; overlapping ones are an error.
    pub fn from_regions(pid: i32, mut regions: Vec<(u64, Vec<u8>)>) -> Result<SnapshotMemory> {
        regions.retain(|(_, b)| !b.is_empty());
        regions.sort_by_key(|(start, _)| *start);
        let total: usize = regions.iter().map(|(_, b)| b.len()).sum();
        let mut data = Vec::with_capacity(total);
        let mut spans = Vec::with_capacity(regions.len());
        for (start, bytes) in &regions {
            let span = Span {
                start: *start,
                end: start.checked_add(bytes.len() as u64).ok_or_else(|| {
                    Error::SnapshotRegions(format!(
                        "region at 0x{start:x} runs past the address space"
                    ))
                })?,
                offset: data.len(),
                zero: false,
            };
            if let Some(prev) = spans.last() {
                let prev: &Span = prev;
                if span.start < prev.end {
                    return Err(Error::SnapshotRegions(format!(
                        "regions 0x{:x}-0x{:x} and 0x{:x}-0x{:x} overlap",
                        prev.start, prev.end, span.start, span.end
                    )));
                }
            }
            data.extend_from_slice(bytes);
            spans.push(span);
        }
        Ok(SnapshotMemory::new(pid, Arc::new(Image { spans, data })))
    }

    /// (start, end) of each region, in address order.
    pub fn regions(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.image.spans.iter().map(|s| (s.start, s.end))
    }

    /// Each region as (start, length, its bytes or None when all zero).
    pub(crate) fn pieces(&self) -> impl ExactSizeIterator<Item = (u64, u64, Option<&[u8]>)> + '_ {
        self.image.spans.iter().map(|s| {
            let len = s.end - s.start;
            let bytes = (!s.zero).then(|| &self.image.data[s.offset..s.offset + len as usize]);
            (s.start, len, bytes)
        })
    }

    pub fn region_count(&self) -> usize {
        self.image.spans.len()
    }

    /// Bytes of address space covered (zero regions included).
    pub fn total_bytes(&self) -> u64 {
        self.image.spans.iter().map(|s| s.end - s.start).sum()
    }

    /// Bytes actually stored (zero regions excluded).
    pub fn stored_bytes(&self) -> u64 {
        self.image
            .spans
            .iter()
            .filter(|s| !s.zero)
            .map(|s| s.end - s.start)
            .sum()
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

    /// A read that does not fit in the first region: spans adjacent regions.
    #[cold]
    fn read_spanning(&self, first: usize, addr: u64, buf: &mut [u8]) -> Result<()> {
        let spans = &self.image.spans;
        let len = buf.len();
        let Some(end) = addr.checked_add(len as u64) else {
            return Err(self.fault(addr, len));
        };
        // Check the whole range is covered before writing anything.
        let mut i = first;
        let mut covered = spans[i].end;
        while covered < end {
            i += 1;
            match spans.get(i) {
                Some(s) if s.start == covered => covered = s.end,
                _ => return Err(self.fault(addr, len)),
            }
        }
        let mut at = addr;
        let mut done = 0;
        for s in &spans[first..=i] {
            let n = ((s.end - at) as usize).min(len - done);
            s.copy(&self.image.data, at, &mut buf[done..done + n]);
            done += n;
            at += n as u64;
        }
        Ok(())
    }
}

impl MemorySource for SnapshotMemory {
    #[inline]
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        if len == 0 {
            return Ok(());
        }
        let spans = &self.image.spans;
        let last = self.last.load(Ordering::Relaxed);
        let i = match spans.get(last) {
            Some(s) if s.start <= addr && addr < s.end => last,
            _ => {
                // The last span starting at or before `addr`.
                let after = spans.partition_point(|s| s.start <= addr);
                if after == 0 || addr >= spans[after - 1].end {
                    return Err(self.fault(addr, len));
                }
                self.last.store(after - 1, Ordering::Relaxed);
                after - 1
            }
        };
        let s = spans[i];
        if s.end - addr >= len as u64 {
            s.copy(&self.image.data, addr, buf);
            return Ok(());
        }
        self.read_spanning(i, addr, buf)
    }

    fn pid(&self) -> i32 {
        self.pid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::tests::memory;

    #[test]
    fn reads_inside_and_across_adjacent_regions() {
        let m = memory();
        assert_eq!(m.read_u64(0x1000).unwrap(), u64::from_le_bytes([0xaa; 8]));
        let mut buf = [0u8; 8];
        m.read(0x200c, &mut buf).unwrap();
        assert_eq!(buf, [12, 13, 14, 15, 16, 17, 18, 19]);
        assert_eq!(
            m.read_vec(0x2000, 32).unwrap(),
            (0..32u8).collect::<Vec<_>>()
        );
        assert_eq!(m.read_u32(0x3000).unwrap(), 0x04030201);
        m.read(0x5000, &mut []).unwrap();
    }

    #[test]
    fn reads_outside_fail_with_efault() {
        let m = memory();
        for (addr, len) in [
            (0u64, 1usize),
            (0xfff, 2),
            (0x1004, 8),
            (0x2018, 16),
            (0x3002, 4),
            (0x4000, 1),
            (u64::MAX - 2, 8),
        ] {
            let mut buf = vec![0u8; len];
            match m.read(addr, &mut buf) {
                Err(Error::Memory {
                    source,
                    addr: a,
                    len: l,
                    pid,
                }) => {
                    assert_eq!(source.raw_os_error(), Some(EFAULT));
                    assert_eq!((a, l, pid), (addr, len, 7));
                }
                other => panic!("read at 0x{addr:x}: {other:?}"),
            }
            assert!(buf.iter().all(|b| *b == 0), "no partial data");
        }
    }

    #[test]
    fn overlapping_regions_are_refused() {
        assert!(
            SnapshotMemory::from_regions(1, vec![(0x10, vec![0; 8]), (0x14, vec![0; 8])]).is_err()
        );
    }

    #[test]
    fn memory_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SnapshotMemory>();
        check::<crate::snapshot::Snapshot>();
    }
}
