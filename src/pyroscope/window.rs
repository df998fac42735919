//! Cutting the samples into windows: every sample the recorder takes in
//! goes into the current window, which is cut every `--push-every` seconds
//! (on a fixed schedule from the start, so jitter does not drift it) and
//! encoded as one pprof per process. No sample is in two windows or none.

use crate::aggregate::{FrameTable, ProcessSummary, Profile};
use crate::output::pprof::{self, Span};
use crate::output::render::RenderOptions;
use crate::sampling::ThreadSample;
use std::collections::BTreeMap;
use std::time::Duration;

/// One process's profile of one window.
pub struct Series {
    pub pid: i32,
    /// Thread samples in it.
    pub samples: u64,
    /// Gzipped pprof.
    pub pprof: Vec<u8>,
}

/// A window ready to send.
pub struct Window {
    pub from_unix: f64,
    pub until_unix: f64,
    pub series: Vec<Series>,
}

pub struct Windows {
    every: Duration,
    started_unix: f64,
    rate_hz: f64,
    interval: Duration,
    opts: RenderOptions,
    /// Start of the current window and the next cut, since recording began.
    from: Duration,
    next_cut: Duration,
    current: BTreeMap<i32, Profile>,
}

impl Windows {
    pub fn new(every: Duration, started_unix: f64, rate_hz: f64, opts: RenderOptions) -> Windows {
        Windows {
            every,
            started_unix,
            rate_hz,
            interval: Duration::from_secs_f64(1.0 / rate_hz),
            opts,
            from: Duration::ZERO,
            next_cut: every,
            current: BTreeMap::new(),
        }
    }

    pub fn sample(&mut self, pid: i32, at: Duration, threads: &[ThreadSample]) {
        let profile = self.current.entry(pid).or_default();
        // A thread seen without a Python frame has no stack to show (pprof
        // carries none), and the window's count says what it carries.
        for t in threads.iter().filter(|t| !t.frames.is_empty()) {
            let index = profile
                .threads
                .index(pid, t.tid, t.ident, t.name.as_deref());
            profile.add(index, &t.frames, at, self.interval);
        }
    }

    /// Nanoseconds since the Unix epoch of `offset` into the recording:
    /// whole numbers added, so that one window's end is the next one's start.
    fn nanos(&self, offset: Duration) -> i64 {
        (self.started_unix * 1e9) as i64 + i64::try_from(offset.as_nanos()).unwrap_or(i64::MAX)
    }

    pub fn due(&self, elapsed: Duration) -> bool {
        elapsed >= self.next_cut
    }

    /// Ends the current window at `elapsed` and encodes it; the next one
    /// starts where this one ends.
    pub fn cut(
        &mut self,
        elapsed: Duration,
        processes: &[ProcessSummary],
        frames: &FrameTable,
    ) -> Window {
        let from = self.from;
        let until = elapsed.max(from);
        self.from = until;
        while self.next_cut <= elapsed {
            self.next_cut += self.every;
        }
        let mut series = Vec::new();
        for (pid, mut profile) in std::mem::take(&mut self.current) {
            let samples = profile.total_samples();
            if samples == 0 {
                continue;
            }
            profile.processes = processes.iter().filter(|p| p.pid == pid).cloned().collect();
            profile.info.rate_hz = self.rate_hz;
            profile.info.start_unix = self.started_unix + from.as_secs_f64();
            profile.info.duration = until - from;
            profile.info.command = profile
                .processes
                .first()
                .map(|p| p.command_line.clone())
                .unwrap_or_else(|| format!("pid {pid}"));
            let span = Span {
                time_nanos: self.nanos(from),
                duration_nanos: self.nanos(until) - self.nanos(from),
            };
            match pprof::gzipped_with(&profile, frames, &self.opts, Some(span)) {
                Ok(bytes) => series.push(Series {
                    pid,
                    samples,
                    pprof: bytes,
                }),
                // Writing to memory fails only when memory does.
                Err(e) => eprintln!("pysampler: could not encode a window of pid {pid}: {e}"),
            }
        }
        Window {
            from_unix: self.started_unix + from.as_secs_f64(),
            until_unix: self.started_unix + until.as_secs_f64(),
            series,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::FrameInfo;
    use crate::output::pprof::proto;
    use flate2::read::GzDecoder;
    use prost::Message;
    use std::io::Read;

    fn thread(tid: i32, frames: Vec<u32>) -> ThreadSample {
        ThreadSample {
            tid: Some(tid),
            ident: tid as u64,
            name: Some("MainThread".into()),
            active: true,
            owns_gil: true,
            frames,
            truncated: false,
        }
    }

    fn decode(series: &Series) -> proto::Profile {
        let mut raw = Vec::new();
        GzDecoder::new(&series.pprof[..])
            .read_to_end(&mut raw)
            .unwrap();
        proto::Profile::decode(&raw[..]).unwrap()
    }

    #[test]
    fn one_series_per_process_and_windows_abut() {
        let mut frames = FrameTable::default();
        let f = frames.intern(FrameInfo {
            name: "f".into(),
            filename: "/a.py".into(),
            line: 2,
            column: 0,
            first_line: 1,
        });
        let ms = Duration::from_millis;
        let mut w = Windows::new(ms(1000), 1_700_000_000.25, 100.0, RenderOptions::default());
        assert!(!w.due(ms(999)));
        w.sample(10, ms(10), &[thread(10, vec![f]), thread(11, vec![f])]);
        w.sample(20, ms(20), &[thread(20, vec![f]), thread(21, vec![])]);
        assert!(w.due(ms(1005)));
        let first = w.cut(ms(1005), &[], &frames);
        assert_eq!(
            first
                .series
                .iter()
                .map(|s| (s.pid, s.samples))
                .collect::<Vec<_>>(),
            [(10, 2), (20, 1)]
        );
        // The next cut is on the schedule (2 s), not 1 s after this one.
        assert!(!w.due(ms(1999)) && w.due(ms(2000)));
        w.sample(10, ms(1500), &[thread(10, vec![f])]);
        let second = w.cut(ms(2001), &[], &frames);
        assert_eq!(
            second.series.len(),
            1,
            "a process without samples has no series"
        );
        let (a, b) = (decode(&first.series[0]), decode(&second.series[0]));
        // The start is a float: exact to a microsecond; the bounds after it are exact.
        assert!((a.time_nanos - 1_700_000_000_250_000_000).abs() < 1000);
        assert_eq!(a.time_nanos + a.duration_nanos, b.time_nanos);
        assert_eq!(b.duration_nanos, 996_000_000);
        assert_eq!(first.until_unix, second.from_unix);
        // Nothing since: an empty window.
        assert!(w.cut(ms(2500), &[], &frames).series.is_empty());
    }
}
