//! Reading next sample's memory in one syscall.
//!
//! A sample reads chains of pointers (interpreter → thread state → frame
//! chunk → code objects → their strings), each read depending on the last,
//! and almost all of them land on the same addresses as in the previous
//! sample. `Prefetching` records which regions a *group* of reads touched
//! (the thread list, one thread's walk) and, when the same group begins
//! again, copies all of them in one batched `process_vm_readv`. The group's
//! reads are then served from that copy; a read it does not cover (a pointer
//! that changed) goes to the process as before and is recorded for next time.
//!
//! Nothing read is older than the start of its group: the copy is made when
//! the group begins (after a thread is paused, when pausing) and dropped when
//! it ends, so a group sees the process as one batch at its start, then live.

use crate::error::Result;
use crate::memory::MemorySource;
use foldhash::HashMap;
use std::cell::RefCell;

/// Regions remembered per group; a group that reads more is planned in part.
const MAX_PLAN_REGIONS: usize = 4096;
/// Bytes copied per group at its start.
const MAX_PLAN_BYTES: u64 = 8 << 20;
/// Groups remembered before the plans start over (thread churn).
const MAX_GROUPS: usize = 4096;
/// Regions planned over all groups before the plans start over: thousands
/// of threads with deep ≤3.10 stacks (a region per frame) stay at 16 MiB.
const MAX_PLANNED_REGIONS: usize = 1 << 20;
/// Reads at least this long (data-stack chunks, line tables) are planned a
/// little longer, up to `PAD` bytes but never past the end of the page they
/// end in (so the padding is mapped whenever the read was): a stack one frame
/// deeper than last time is still covered.
const PAD_FROM: u64 = 256;
const PAD: u64 = 1024;
const PAGE: u64 = 4096;
/// Regions less than a page apart are copied as one: the gap then lies
/// within the two pages the regions touch, so it is mapped too, and each
/// iovec costs the kernel a page walk and pin, more than copying a few KiB
/// (3.9's heap frames, ~450 bytes apart: 62.9 → 46.0 µs per sample
/// `--nonblocking` going from a 64-byte to this gap, interleaved runs).
const MERGE_GAP: u64 = PAGE - 1;
/// Batches issued per group start: a region that failed (freed since the
/// last sample) ends a batch, and the rest is tried again after it.
const MAX_BATCHES: usize = 4;

/// A `MemorySource` that serves repeated groups of reads from one batch.
pub struct Prefetching<M: MemorySource> {
    inner: M,
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    /// The group in progress, if any.
    group: Option<u64>,
    /// Copies made at the group's start: disjoint, sorted by address.
    windows: Vec<Window>,
    data: Vec<u8>,
    /// What the group in progress has read so far.
    recorded: Vec<(u64, u64)>,
    /// Per group: the regions to copy when it next begins.
    plans: HashMap<u64, Vec<(u64, u64)>>,
    /// Regions in `plans`.
    planned_regions: usize,
    /// Batched reads issued, and reads served from a copy (for tests).
    batches: usize,
    hits: usize,
}

#[derive(Clone, Copy)]
struct Window {
    start: u64,
    len: u64,
    /// Where its bytes start in `State::data`.
    at: usize,
}

impl<M: MemorySource> Prefetching<M> {
    pub fn new(inner: M) -> Prefetching<M> {
        Prefetching {
            inner,
            state: RefCell::new(State::default()),
        }
    }

    /// (batched reads issued at group starts, reads served from them).
    pub fn counters(&self) -> (usize, usize) {
        let s = self.state.borrow();
        (s.batches, s.hits)
    }
}

impl State {
    /// The bytes at `addr..addr + len` if one window holds all of them.
    fn lookup(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let i = self
            .windows
            .partition_point(|w| w.start <= addr)
            .checked_sub(1)?;
        let w = self.windows.get(i)?;
        let from = addr - w.start;
        let to = from.checked_add(len as u64)?;
        if to > w.len {
            return None;
        }
        let at = w.at.checked_add(from as usize)?;
        self.data.get(at..at.checked_add(len)?)
    }

    fn record(&mut self, addr: u64, len: usize) {
        if self.group.is_some() && self.recorded.len() < MAX_PLAN_REGIONS && len > 0 {
            self.recorded.push((addr, len as u64));
        }
    }

    /// Ends the group in progress: what it read becomes its next plan.
    fn finish(&mut self) {
        self.windows.clear();
        if let Some(group) = self.group.take() {
            let plan = plan_regions(&mut self.recorded);
            let full = self.plans.len() >= MAX_GROUPS && !self.plans.contains_key(&group);
            if full || self.planned_regions + plan.len() > MAX_PLANNED_REGIONS {
                self.plans.clear();
                self.planned_regions = 0;
            }
            self.planned_regions += plan.len();
            self.plans.insert(group, plan);
        }
        self.recorded.clear();
    }
}

/// Sorted, padded, merged regions to copy, within the byte budget.
fn plan_regions(recorded: &mut [(u64, u64)]) -> Vec<(u64, u64)> {
    recorded.sort_unstable();
    let mut plan: Vec<(u64, u64)> = Vec::new();
    let mut bytes = 0u64;
    for &(start, len) in recorded.iter() {
        let Some(mut end) = start.checked_add(len) else {
            continue;
        };
        if len >= PAD_FROM {
            let page_end = end.div_ceil(PAGE).saturating_mul(PAGE);
            end = end.saturating_add(PAD).min(page_end).max(end);
        }
        match plan.last_mut() {
            Some((s, l)) if start <= (*s + *l).saturating_add(MERGE_GAP) => {
                let merged_end = (*s + *l).max(end);
                bytes += merged_end - (*s + *l);
                *l = merged_end - *s;
            }
            _ => {
                bytes += end - start;
                plan.push((start, end - start));
            }
        }
        if bytes > MAX_PLAN_BYTES {
            plan.pop();
            break;
        }
    }
    plan
}

impl<M: MemorySource> MemorySource for Prefetching<M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut s = self.state.borrow_mut();
        if let Some(bytes) = s.lookup(addr, buf.len()) {
            buf.copy_from_slice(bytes);
            s.hits += 1;
            s.record(addr, buf.len());
            return Ok(());
        }
        drop(s);
        self.inner.read(addr, buf)?;
        self.state.borrow_mut().record(addr, buf.len());
        Ok(())
    }

    fn pid(&self) -> i32 {
        self.inner.pid()
    }

    fn read_many(&self, requests: &mut [(u64, &mut [u8])]) -> usize {
        // Serve what the copy holds; the rest goes in one batch, in order.
        let mut misses: Vec<usize> = Vec::new();
        let mut batch: Vec<(u64, &mut [u8])> = Vec::new();
        {
            let mut s = self.state.borrow_mut();
            for (i, (addr, buf)) in requests.iter_mut().enumerate() {
                match s.lookup(*addr, buf.len()) {
                    Some(bytes) => {
                        buf.copy_from_slice(bytes);
                        s.hits += 1;
                    }
                    None => {
                        misses.push(i);
                        batch.push((*addr, &mut **buf));
                    }
                }
            }
        }
        let read = if batch.is_empty() {
            0
        } else {
            self.inner.read_many(&mut batch)
        };
        drop(batch);
        let done = misses.get(read).copied().unwrap_or(requests.len());
        let mut s = self.state.borrow_mut();
        for (addr, buf) in &requests[..done] {
            s.record(*addr, buf.len());
        }
        done
    }

    fn begin_group(&self, group: Option<u64>) {
        let mut s = self.state.borrow_mut();
        s.finish();
        let Some(group) = group else { return };
        s.group = Some(group);
        // The group's reads this time make its next plan (`finish`).
        let Some(plan) = s.plans.remove(&group) else {
            return;
        };
        s.planned_regions = s.planned_regions.saturating_sub(plan.len());
        if plan.is_empty() {
            return;
        }
        let total: u64 = plan.iter().map(|(_, l)| *l).sum();
        let mut data = std::mem::take(&mut s.data);
        // Every byte a window covers is read below; only growth is zeroed.
        data.resize(total as usize, 0);
        let mut windows = std::mem::take(&mut s.windows);
        let mut from = 0;
        for _ in 0..MAX_BATCHES {
            if from >= plan.len() {
                break;
            }
            let mut offset: usize = plan[..from].iter().map(|(_, l)| *l as usize).sum();
            let mut requests: Vec<(u64, &mut [u8])> = Vec::with_capacity(plan.len() - from);
            let mut rest = &mut data[offset..];
            for &(start, len) in &plan[from..] {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(len as usize);
                requests.push((start, head));
                rest = tail;
            }
            let read = self.inner.read_many(&mut requests);
            s.batches += 1;
            for &(start, len) in &plan[from..from + read] {
                windows.push(Window {
                    start,
                    len,
                    at: offset,
                });
                offset += len as usize;
            }
            // Skip the region that failed; it will be read (or fail) live.
            from += read + 1;
        }
        s.data = data;
        s.windows = windows;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Memory whose byte at `a` is `a as u8`, unmapped from `hole` on, and
    /// which counts the calls that reach it.
    struct Counting {
        hole: Cell<u64>,
        calls: Cell<usize>,
    }

    impl MemorySource for Counting {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
            self.calls.set(self.calls.get() + 1);
            if addr + buf.len() as u64 > self.hole.get() {
                return Err(crate::error::Error::Memory {
                    pid: 0,
                    addr,
                    len: buf.len(),
                    source: std::io::Error::from_raw_os_error(crate::memory::EFAULT),
                });
            }
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (addr + i as u64) as u8;
            }
            Ok(())
        }
        fn pid(&self) -> i32 {
            1
        }
    }

    fn memory(hole: u64) -> Prefetching<Counting> {
        Prefetching::new(Counting {
            hole: Cell::new(hole),
            calls: Cell::new(0),
        })
    }

    fn expect(addr: u64, buf: &[u8]) {
        for (i, b) in buf.iter().enumerate() {
            assert_eq!(*b, (addr + i as u64) as u8, "byte {i} of a read at {addr}");
        }
    }

    #[test]
    fn a_repeated_group_costs_one_batch() {
        let m = memory(1 << 20);
        let reads = [(100u64, 8usize), (5000, 300), (9000, 16), (5100, 8)];
        for round in 0..3 {
            let before = m.inner.calls.get();
            m.begin_group(Some(7));
            for &(addr, len) in &reads {
                let mut buf = vec![0u8; len];
                m.read(addr, &mut buf).unwrap();
                expect(addr, &buf);
            }
            let calls = m.inner.calls.get() - before;
            if round == 0 {
                assert_eq!(calls, reads.len());
            } else {
                // One batch: the default read_many makes one call per region,
                // and the four reads merge into two regions (100, and
                // 5000–9016: less than a page apart).
                assert_eq!(calls, 2, "round {round}");
                assert_eq!(m.counters().1, reads.len() * round);
            }
            m.begin_group(None);
        }
    }

    #[test]
    fn reads_outside_the_copy_go_live_and_join_the_plan() {
        let m = memory(1 << 20);
        m.begin_group(Some(1));
        let mut buf = [0u8; 8];
        m.read(64, &mut buf).unwrap();
        m.begin_group(Some(1));
        m.read(4096, &mut buf).unwrap(); // not planned: live
        expect(4096, &buf);
        assert_eq!(m.counters().1, 0);
        m.begin_group(Some(1));
        m.read(4096, &mut buf).unwrap();
        expect(4096, &buf);
        assert_eq!(m.counters().1, 1);
    }

    #[test]
    fn long_reads_are_padded_within_their_page() {
        let m = memory(1 << 20);
        m.begin_group(Some(1));
        let mut chunk = vec![0u8; 1000];
        m.read(8192, &mut chunk).unwrap();
        m.begin_group(Some(1));
        // One frame deeper: still inside the padded copy.
        let mut deeper = vec![0u8; 1100];
        m.read(8192, &mut deeper).unwrap();
        expect(8192, &deeper);
        assert_eq!(m.counters().1, 1);
        // Never past the page: 8192 + 4096 is not copied.
        let mut past = vec![0u8; 4097];
        m.read(8192, &mut past).unwrap();
        assert_eq!(m.counters().1, 1);
    }

    #[test]
    fn a_region_gone_since_ends_only_its_batch() {
        let m = memory(1 << 20);
        m.begin_group(Some(1));
        let mut buf = [0u8; 8];
        for addr in [1000u64, 50_000, 90_000] {
            m.read(addr, &mut buf).unwrap();
        }
        m.begin_group(None);
        m.inner.hole.set(60_000); // the last region is unmapped now
        m.begin_group(Some(1));
        for addr in [1000u64, 50_000] {
            m.read(addr, &mut buf).unwrap();
            expect(addr, &buf);
        }
        assert!(m.read(90_000, &mut buf).is_err());
        assert_eq!(m.counters().1, 2);
    }

    #[test]
    fn read_many_serves_hits_and_batches_misses_in_order() {
        let m = memory(70_000);
        m.begin_group(Some(1));
        let mut buf = [0u8; 8];
        m.read(2000, &mut buf).unwrap();
        m.begin_group(Some(1));
        let (mut a, mut b, mut c, mut d) = ([0u8; 8], [0u8; 8], [0u8; 8], [0u8; 8]);
        let mut requests: Vec<(u64, &mut [u8])> = vec![
            (2000, &mut a),
            (30_000, &mut b),
            (80_000, &mut c), // unmapped: ends the batch
            (2000, &mut d),
        ];
        assert_eq!(m.read_many(&mut requests), 2);
        expect(2000, &a);
        expect(30_000, &b);
    }

    #[test]
    fn nothing_is_served_outside_a_group() {
        let m = memory(1 << 20);
        m.begin_group(Some(1));
        let mut buf = [0u8; 8];
        m.read(64, &mut buf).unwrap();
        m.begin_group(Some(1));
        m.begin_group(None);
        m.read(64, &mut buf).unwrap();
        assert_eq!(m.counters().1, 0);
    }
}
