//! `report RECORDING -o SLICE.pysampler`: the samples the filters keep,
//! written as a recording of their own. Times are shifted so that the slice
//! starts at 0 (and its header's start time moves with it), so a report of
//! the slice reads like a report of the original over the same window.

use super::reader::{Item, Reader, Tables};
use super::replay::{Filters, Verdict};
use super::writer::Writer;
use super::OpenError;
use crate::sampling::{Event, ThreadSample};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    pub ticks: u64,
    pub thread_samples: u64,
    /// Whether the source was cut short (its readable part was exported).
    pub source_cut: bool,
}

/// Copies the samples `filters` keep from the recording `input` to `out`.
pub fn export<R: Read, W: Write>(
    input: R,
    filters: &Filters,
    out: W,
) -> Result<io::Result<(W, Exported)>, OpenError> {
    let mut reader = Reader::open(input)?;
    let mut header = reader.header.clone();
    let shift = filters.from.unwrap_or(Duration::ZERO);
    header.start_unix += shift.as_secs_f64();
    let mut writer = match Writer::new(out, &header) {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let mut failed: Option<io::Error> = None;
    let mut done = Exported::default();
    let mut last_at = Duration::ZERO;
    let mut names: Vec<Option<Arc<str>>> = Vec::new();
    let cut = reader.read_all(|tables: &Tables, item| {
        if failed.is_some() {
            return;
        }
        let event = match item {
            Item::Process(p) => Some(Event::Started(p)),
            Item::Tick {
                pid,
                at,
                late,
                threads,
            } => {
                last_at = at;
                if !filters.keeps_tick(pid, at) {
                    return;
                }
                let kept = threads
                    .iter()
                    .filter(|t| {
                        filters.judge(&tables.threads[t.thread as usize], t) == Verdict::Kept
                    })
                    .map(|t| {
                        let info = &tables.threads[t.thread as usize];
                        let i = t.thread as usize;
                        if names.len() <= i {
                            names.resize(i + 1, None);
                        }
                        // One shared string per name, as the sampler sends them.
                        let name = match (&names[i], &info.name) {
                            (Some(known), Some(n)) if **known == **n => Some(known.clone()),
                            (_, n) => {
                                names[i] = n.as_deref().map(Arc::from);
                                names[i].clone()
                            }
                        };
                        let mut frames = tables.tree.path(t.node);
                        frames.reverse();
                        ThreadSample {
                            tid: info.tid,
                            ident: info.ident,
                            name,
                            active: t.active(),
                            owns_gil: t.owns_gil(),
                            frames,
                            truncated: t.flags & super::THREAD_TRUNCATED != 0,
                        }
                    })
                    .collect::<Vec<_>>();
                done.ticks += 1;
                done.thread_samples += kept.len() as u64;
                Some(Event::Sample {
                    pid,
                    at: at.saturating_sub(shift),
                    late,
                    threads: kept,
                })
            }
            Item::Error { pid, message } if filters.keeps_tick(pid, last_at) => {
                Some(Event::Error { pid, message })
            }
            Item::Ended { pid, reason }
                if filters.pids.is_empty() || filters.pids.contains(&pid) =>
            {
                Some(Event::Ended { pid, reason })
            }
            _ => None,
        };
        if let Some(event) = event {
            writer.event(&event);
        }
        if writer.due() {
            writer.add_frames(&tables.frames);
            if let Err(e) = writer.chunk() {
                failed = Some(e);
            }
        }
    });
    if let Some(e) = failed {
        return Ok(Err(e));
    }
    done.source_cut = cut.is_some() || reader.end.is_none();
    let length = reader.end.or(reader.last_tick).unwrap_or(Duration::ZERO);
    let end = filters.to.unwrap_or(length).min(length);
    writer.add_frames(&reader.tables.frames);
    Ok(writer
        .finish(end.saturating_sub(shift.min(end)))
        .map(|w| (w, done)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::replay::replay;
    use crate::recording::tests::{stream, write};

    #[test]
    fn a_slice_reports_as_the_original_over_its_window() {
        let (frames, events) = stream();
        let bytes = write(&frames, &events, 100);
        let filters = Filters {
            from: Some(Duration::from_millis(500)),
            to: Some(Duration::from_millis(1500)),
            threads: vec!["MainThread".into()],
            idle: true,
            ..Filters::default()
        };
        let (slice, done) = export(bytes.as_slice(), &filters, Vec::new())
            .unwrap()
            .unwrap();
        assert_eq!((done.ticks, done.thread_samples), (200, 200));
        assert!(!done.source_cut);
        let original = replay(bytes.as_slice(), &filters, true).unwrap();
        let all = Filters {
            idle: true,
            ..Filters::default()
        };
        let sliced = replay(slice.as_slice(), &all, true).unwrap();
        assert!(sliced.complete);
        assert_eq!(
            sliced.profile.total_samples(),
            original.profile.total_samples()
        );
        assert_eq!(sliced.profile.info.duration, Duration::from_secs(1));
        let folded = |p| crate::output::collapsed::lines(p, &Default::default());
        assert_eq!(folded(&sliced.profile), folded(&original.profile));
        assert_eq!(sliced.header.start_unix, original.header.start_unix + 0.5);
    }
}
