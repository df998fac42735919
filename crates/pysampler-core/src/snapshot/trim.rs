//! Cutting a snapshot down to the bytes a walk read (logged by
//! `memory::recording::RecordingMemory`): a few hundred KB instead of
//! megabytes, small enough to commit as a test fixture, and read exactly as
//! the full snapshot by the same walk.

use super::{Metadata, Snapshot, SnapshotMemory};
use crate::error::Result;
use crate::memory::MemorySource;

impl Snapshot {
    /// A copy holding only the bytes of `ranges` (address, length), each
    /// widened to whole blocks of `granule` bytes (rounded up to a power of
    /// two), wherever this snapshot has them. The widening gives a walker
    /// that later reads a field or two beyond what it read when the ranges
    /// were logged a chance to find them. Bytes this snapshot lacks stay
    /// missing, so a read that failed here fails on the copy too. The copy
    /// keeps the metadata but the list of mappings, which described the
    /// whole process.
    pub fn trimmed(&self, ranges: &[(u64, u64)], granule: u64) -> Result<Snapshot> {
        let kept = intersect(&blocks(ranges, granule), self.regions.regions());
        let mut regions = Vec::with_capacity(kept.len());
        for (start, end) in kept {
            let mut bytes = vec![0u8; (end - start) as usize];
            self.regions.read(start, &mut bytes)?;
            regions.push((start, bytes));
        }
        let memory = SnapshotMemory::from_regions(self.pid, regions)?;
        let meta = Metadata {
            mappings: Vec::new(),
            ..self.metadata()
        };
        Ok(Snapshot::from_parts(meta, memory))
    }
}

/// `ranges` widened to `granule`-aligned blocks, sorted, overlapping and
/// touching ones merged: (start, end) pairs.
fn blocks(ranges: &[(u64, u64)], granule: u64) -> Vec<(u64, u64)> {
    let g = granule
        .max(1)
        .checked_next_power_of_two()
        .unwrap_or(1 << 63);
    let mut spans: Vec<(u64, u64)> = ranges
        .iter()
        .filter(|(_, len)| *len > 0)
        .map(|&(addr, len)| {
            let end = addr.saturating_add(len);
            let end = end.checked_next_multiple_of(g).unwrap_or(u64::MAX);
            (addr & !(g - 1), end)
        })
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// The parts of `wanted` (sorted, disjoint) inside `have` (sorted, disjoint),
/// in address order. A part that runs over adjacent regions of `have` comes
/// out as one piece per region.
fn intersect(wanted: &[(u64, u64)], have: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut w = wanted.iter().peekable();
    for (hs, he) in have {
        while let Some(&&(ws, we)) = w.peek() {
            if we <= hs {
                w.next(); // ends before this region: done with it
                continue;
            }
            if ws >= he {
                break; // starts after this region: look at the next region
            }
            out.push((ws.max(hs), we.min(he)));
            if we <= he {
                w.next();
            } else {
                break; // goes on into the next region
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::tests::{memory, metadata};

    #[test]
    fn blocks_are_aligned_and_merged() {
        let ranges = [
            (0x1005, 2),
            (0x1040, 0x40),
            (0x1000, 1),
            (0x2001, 0),
            (0x30ff, 2),
        ];
        assert_eq!(
            blocks(&ranges, 64),
            vec![(0x1000, 0x1080), (0x30c0, 0x3140)]
        );
        assert_eq!(
            blocks(&ranges, 1),
            vec![
                (0x1000, 0x1001),
                (0x1005, 0x1007),
                (0x1040, 0x1080),
                (0x30ff, 0x3101)
            ]
        );
        // 48 is taken as 64; a range at the top of the address space stays in it.
        assert_eq!(
            blocks(&[(u64::MAX - 3, 2)], 48),
            vec![(u64::MAX - 63, u64::MAX)]
        );
    }

    #[test]
    fn intersection_keeps_only_what_exists() {
        let have = [
            (0x1000, 0x1008),
            (0x1008, 0x1010),
            (0x2000, 0x2020),
            (0x3000, 0x3004),
        ];
        let wanted = [
            (0x0, 0x1004),
            (0x1006, 0x100a),
            (0x1fff, 0x2001),
            (0x2010, 0x4000),
        ];
        assert_eq!(
            intersect(&wanted, have.into_iter()),
            vec![
                (0x1000, 0x1004),
                (0x1006, 0x1008),
                (0x1008, 0x100a),
                (0x2000, 0x2001),
                (0x2010, 0x2020),
                (0x3000, 0x3004)
            ]
        );
        assert!(intersect(&[], have.into_iter()).is_empty());
    }

    #[test]
    fn a_trimmed_snapshot_reads_the_kept_bytes_and_nothing_else() {
        // Regions of `memory()`: 0x1000+8 (0xaa), 0x2000+16 and 0x2010+16
        // (0, 1, 2, …), 0x3000+4.
        let snap = Snapshot::from_parts(metadata(), memory());
        let trimmed = snap
            .trimmed(&[(0x200e, 4), (0x3001, 1), (0x5000, 8)], 4)
            .unwrap();
        let m = trimmed.memory();
        assert_eq!(
            m.regions().collect::<Vec<_>>(),
            vec![(0x200c, 0x2010), (0x2010, 0x2014), (0x3000, 0x3004)]
        );
        assert_eq!(
            m.read_vec(0x200c, 8).unwrap(),
            (12..20u8).collect::<Vec<_>>()
        );
        assert_eq!(m.read_u32(0x3000).unwrap(), 0x04030201);
        for (addr, len) in [(0x1000, 1), (0x200b, 1), (0x2014, 1), (0x5000, 1)] {
            assert!(m.read_vec(addr, len).is_err(), "0x{addr:x} is not kept");
        }
        assert_eq!(trimmed.tids, snap.tids);
        assert_eq!(trimmed.command_line, snap.command_line);
        // And it survives its file format.
        let back = Snapshot::from_bytes(trimmed.to_bytes().unwrap()).unwrap();
        assert_eq!(
            back.memory().read_vec(0x200c, 8).unwrap(),
            (12..20u8).collect::<Vec<_>>()
        );
    }
}
