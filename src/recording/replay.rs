//! Replaying a recording into a `Profile`, keeping the samples the filters
//! name: the same steps as `record`'s aggregator (threads registered in the
//! order first sampled, one count per thread sample, the same timeline), so
//! an unfiltered replay is the profile `record` built.

use super::reader::{Cut, Item, Reader, Tables, TickThread};
use super::{Header, OpenError};
use crate::aggregate::{Profile, RecordingInfo, ThreadIndex, ThreadInfo};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Which samples to keep: the view options and filters of `report`.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Only these processes (all when empty).
    pub pids: Vec<i32>,
    /// Only threads with one of these names or OS thread ids (all when empty).
    pub threads: Vec<String>,
    /// Only ticks at or after this time since the recording began...
    pub from: Option<Duration>,
    /// ... and before this one.
    pub to: Option<Duration>,
    /// Keep samples of idle threads (`--idle`).
    pub idle: bool,
    /// Keep only samples of the thread holding the GIL (`--gil`).
    pub gil: bool,
}

impl Filters {
    /// Whether a tick of `pid` at `at` is kept.
    pub fn keeps_tick(&self, pid: i32, at: Duration) -> bool {
        (self.pids.is_empty() || self.pids.contains(&pid)) && self.in_window(at)
    }

    /// Whether a thread's sample is kept: `Kept`, or why not.
    pub fn judge(&self, info: &ThreadInfo, t: &TickThread) -> Verdict {
        if !self.thread_matches(info) || (self.gil && !t.owns_gil()) {
            Verdict::Filtered
        } else if !self.idle && !t.active() {
            Verdict::Idle
        } else {
            Verdict::Kept
        }
    }

    fn thread_matches(&self, t: &ThreadInfo) -> bool {
        self.threads.is_empty()
            || self.threads.iter().any(|want| {
                t.name.as_deref() == Some(want.as_str())
                    || t.tid.is_some_and(|tid| want.parse::<i32>() == Ok(tid))
                    || want
                        .strip_prefix("0x")
                        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                        == Some(t.ident)
            })
    }

    fn in_window(&self, at: Duration) -> bool {
        !matches!(self.from, Some(from) if at < from) && !matches!(self.to, Some(to) if at >= to)
    }

    /// The filters as given on the command line ("--thread main --from 2").
    fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.pids.iter().map(|p| format!("--pid {p}")));
        parts.extend(self.threads.iter().map(|t| format!("--thread {t}")));
        if let Some(from) = self.from {
            parts.push(format!("--from {}", from.as_secs_f64()));
        }
        if let Some(to) = self.to {
            parts.push(format!("--to {}", to.as_secs_f64()));
        }
        if self.gil {
            parts.push("--gil".into());
        }
        parts.join(" ")
    }
}

/// What the filters say about one thread's sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Kept,
    /// Left out by `--thread` or `--gil`.
    Filtered,
    /// An idle thread, left out for want of `--idle`.
    Idle,
}

/// Counts that explain what the filters kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Ticks and thread samples in the whole recording.
    pub ticks: u64,
    pub thread_samples: u64,
    /// Thread samples kept.
    pub kept: u64,
    /// Samples of idle threads left out for want of `--idle`.
    pub idle_left_out: u64,
}

/// A replayed recording.
#[derive(Debug)]
pub struct Replayed {
    pub profile: Profile,
    pub header: Header,
    /// The pysampler version that wrote it.
    pub writer: String,
    /// Where reading stopped early, if it did.
    pub cut: Option<Cut>,
    /// The recording's length: as it ended, or up to its last whole chunk.
    pub length: Duration,
    /// Whether it ended cleanly (an END record).
    pub complete: bool,
    pub tally: Tally,
    /// Every thread the recording holds, for messages.
    pub threads: Vec<ThreadInfo>,
}

/// Reads and replays `path` (a recording); a clear error for a file that is
/// not one, or that is from a newer pysampler.
pub fn load(path: &Path, filters: &Filters, keep_timeline: bool) -> Result<Replayed> {
    let file = std::fs::File::open(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
    replay(
        std::io::BufReader::with_capacity(1 << 16, file),
        filters,
        keep_timeline,
    )
    .map_err(|e| Error::BadRecording {
        message: e.describe(&path.display().to_string()),
    })
}

/// Replays a recording from `input`.
pub fn replay<R: Read>(
    input: R,
    filters: &Filters,
    keep_timeline: bool,
) -> std::result::Result<Replayed, OpenError> {
    let mut reader = Reader::open(input)?;
    let header = reader.header.clone();
    let interval = header.interval();
    let mut profile = Profile::new(keep_timeline);
    let mut tally = Tally::default();
    // Recording thread index → profile thread index, once sampled.
    let mut registered: Vec<Option<ThreadIndex>> = Vec::new();
    let (mut ticks, mut late, mut errors) = (0u64, 0u64, 0u64);
    let mut last_at = Duration::ZERO;
    let cut = reader.read_all(|tables: &Tables, item| match item {
        Item::Process(p) => profile.processes.push(p),
        Item::Renamed(index) => {
            // A thread already in the profile takes its new name, as the
            // recorder's thread table does.
            if registered.get(index as usize).is_some_and(Option::is_some) {
                profile.threads.register(&tables.threads[index as usize]);
            }
        }
        Item::Tick {
            pid,
            at,
            late: was_late,
            threads,
        } => {
            last_at = at;
            tally.ticks += 1;
            tally.thread_samples += threads.len() as u64;
            if !filters.keeps_tick(pid, at) {
                return;
            }
            ticks += 1;
            late += u64::from(was_late);
            for t in threads {
                let info = &tables.threads[t.thread as usize];
                match filters.judge(info, t) {
                    Verdict::Kept => {}
                    Verdict::Filtered => continue,
                    Verdict::Idle => {
                        tally.idle_left_out += 1;
                        continue;
                    }
                }
                let i = t.thread as usize;
                if registered.len() <= i {
                    registered.resize(i + 1, None);
                }
                let index = *registered[i].get_or_insert_with(|| profile.threads.register(info));
                profile.add_node(index, t.node, at, interval);
                tally.kept += 1;
            }
        }
        Item::Error { pid, .. } => {
            // Errors have no time of their own: that of the tick before.
            if filters.keeps_tick(pid, last_at) {
                errors += 1;
            }
        }
        Item::Ended { .. } | Item::End(_) => {}
    });
    let complete = reader.end.is_some();
    let length = reader.end.or(reader.last_tick).unwrap_or(Duration::ZERO);
    let tables = std::mem::take(&mut reader.tables);
    profile.frames = tables.frames;
    profile.tree = tables.tree;
    let window_start = filters.from.unwrap_or(Duration::ZERO).min(length);
    let window_end = filters.to.unwrap_or(length).min(length);
    profile.info = RecordingInfo {
        command: header.command.clone(),
        rate_hz: header.rate_hz,
        start_unix: header.start_unix,
        duration: window_end.saturating_sub(window_start),
        samples: ticks,
        late_samples: late,
        errors,
    };
    Ok(Replayed {
        profile,
        header,
        writer: reader.writer.clone(),
        cut,
        length,
        complete,
        tally,
        threads: tables.threads,
    })
}

impl Replayed {
    /// Notices about what was read (stderr lines, without the "pysampler: ").
    pub fn notices(&self, file: &str, filters: &Filters) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(cut) = &self.cut {
            notes.push(format!(
                "{file} was cut short after {:.1} s (pysampler was killed, or the disk filled up, while recording): {} whole chunk(s) read; the chunk at byte {} is unreadable ({}); reporting what comes before it",
                self.length.as_secs_f64(),
                cut.chunks,
                cut.offset,
                cut.why
            ));
        } else if !self.complete {
            notes.push(format!(
                "{file} was cut short after {:.1} s (pysampler was killed while recording); reporting what it holds",
                self.length.as_secs_f64()
            ));
        }
        if self.tally.idle_left_out > 0 {
            notes.push(format!(
                "left out {} samples of idle threads (add --idle to include them)",
                self.tally.idle_left_out
            ));
        }
        if filters.idle && !self.header.idle {
            notes.push(format!(
                "{file} was recorded without --idle: idle threads were not sampled, so --idle adds nothing"
            ));
        }
        notes
    }

    /// An error when the filters kept nothing, saying what there is.
    pub fn check_not_empty(&self, file: &str, filters: &Filters) -> Result<()> {
        if self.tally.kept > 0 {
            return Ok(());
        }
        let message = if self.tally.thread_samples == 0 {
            format!("{file} holds no samples (the program ended before its interpreter could be read, or no thread was active: record with --idle to sample idle threads)")
        } else {
            let filters = match filters.describe() {
                d if d.is_empty() => "the view options".to_string(),
                d => d,
            };
            let idle = match self.tally.idle_left_out {
                0 => String::new(),
                n => format!(" ({n} of idle threads, shown with --idle)"),
            };
            format!(
                "no samples of {file} match {filters}; it holds {} samples{idle} over {:.1} s, of {}",
                self.tally.thread_samples,
                self.length.as_secs_f64(),
                self.describe_threads()
            )
        };
        Err(Error::NoMatchingSamples { message })
    }

    /// "process 12 (threads MainThread (12), worker (13))".
    fn describe_threads(&self) -> String {
        let mut pids: Vec<i32> = self.threads.iter().map(|t| t.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        let parts: Vec<String> = pids
            .iter()
            .map(|pid| {
                let names: Vec<String> = self
                    .threads
                    .iter()
                    .filter(|t| t.pid == *pid)
                    .map(|t| t.label())
                    .collect();
                format!("process {pid} (threads {})", names.join(", "))
            })
            .collect();
        if parts.is_empty() {
            "no thread".into()
        } else {
            parts.join("; ")
        }
    }
}
