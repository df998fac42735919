//! A `MemorySource` that notes every range it serves: what a walk reads, so
//! that a snapshot can be cut down to those bytes (`Snapshot::trimmed`) and
//! still read the same.

use super::MemorySource;
use crate::error::Result;
use std::sync::{Arc, Mutex};

/// Serves reads from `inner` and logs the (address, length) of each one
/// that succeeded. A failed read is not logged: its bytes are not in
/// `inner`, so a copy cut down to the log fails it the same way.
pub struct RecordingMemory<M> {
    inner: M,
    log: ReadLog,
}

/// The ranges a `RecordingMemory` served; a handle shared with it, so the
/// log stays reachable after the memory was handed to a walker.
#[derive(Clone, Default)]
pub struct ReadLog(Arc<Mutex<Vec<(u64, u64)>>>);

impl ReadLog {
    /// The ranges logged so far, in the order they were read.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        // A panic elsewhere while holding the lock leaves the list intact.
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<M: MemorySource> RecordingMemory<M> {
    pub fn new(inner: M) -> RecordingMemory<M> {
        RecordingMemory {
            inner,
            log: ReadLog::default(),
        }
    }

    pub fn log(&self) -> ReadLog {
        self.log.clone()
    }
}

impl<M: MemorySource> MemorySource for RecordingMemory<M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read(addr, buf)?;
        if !buf.is_empty() {
            let mut log = self.log.0.lock().unwrap_or_else(|e| e.into_inner());
            log.push((addr, buf.len() as u64));
        }
        Ok(())
    }

    fn pid(&self) -> i32 {
        self.inner.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SnapshotMemory;

    #[test]
    fn logs_what_it_served_and_not_what_failed() {
        let inner = SnapshotMemory::from_regions(3, vec![(0x1000, vec![7; 32])]).unwrap();
        let rec = RecordingMemory::new(inner);
        let log = rec.log();
        let boxed: Box<dyn MemorySource> = Box::new(rec);
        assert_eq!(boxed.read_u64(0x1008).unwrap(), u64::from_le_bytes([7; 8]));
        assert!(boxed.read_u64(0x101c).is_err(), "runs past the region");
        let (mut a, mut b) = ([0u8; 4], [0u8; 2]);
        let mut batch = [(0x1000, &mut a[..]), (0x1010, &mut b[..])];
        assert_eq!(boxed.read_many(&mut batch), 2);
        boxed.read(0x5000, &mut []).unwrap();
        assert_eq!(log.ranges(), vec![(0x1008, 8), (0x1000, 4), (0x1010, 2)]);
        assert_eq!(boxed.pid(), 3);
    }
}
