//! The recording reader (`pysampler report`/`diff`'s input) on hostile
//! bytes: opened, replayed with and without filters, exported as a slice,
//! and rendered (collapsed, speedscope, Chrome trace, the table) when the
//! profile is small enough to render in a fuzzing budget. It must never
//! panic, never allocate without bound and never hang.
//!
//! Seeds are recordings the writer makes from synthetic event streams
//! (`seeds()`), written by `fuzz-tool recording-seeds`: several chunks,
//! several threads and processes, renames, errors and endings, deep stacks.

use pysampler::aggregate::{FrameInfo, FrameTable, ProcessSummary};
use pysampler::output::render::RenderOptions;
use pysampler::output::table::{report_table, Screen};
use pysampler::output::{write, Format};
use pysampler::recording::export::export;
use pysampler::recording::replay::{replay, Filters};
use pysampler::recording::writer::Writer;
use pysampler::recording::Header;
use pysampler::sampling::{EndReason, Event, ThreadSample};
use std::time::Duration;

/// Frames × stacks rendered at most: the outputs walk every stack's path.
const RENDER_BUDGET: u64 = 200_000;

/// One fuzz input: a recording file, read as it is and, so that mutations
/// reach the records behind the checksums, with its chunks stored
/// uncompressed and their checksums made right (`restore`).
pub fn run_recording(data: &[u8]) {
    run_one(data);
    if let Some(restored) = restore(data) {
        run_one(&restored);
    }
}

/// Largest chunk `restore` inflates (the reader's own limit is larger; a
/// fuzz input needs no more).
const RESTORE_LIMIT: u64 = 16 << 20;

/// The recording with each chunk re-encoded as stored bytes (inflated when
/// deflated) and its checksum recomputed; `None` when the preamble is not a
/// recording's. A chunk cut short ends the copy as it is.
pub fn restore(data: &[u8]) -> Option<Vec<u8>> {
    use std::io::Read;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
    };
    if data.get(..8)? != pysampler::recording::MAGIC {
        return None;
    }
    let header = 13 + usize::from(*data.get(12)?);
    let mut at = header.checked_add(8)?.checked_add(u32_at(header)? as usize)?;
    let mut out = data.get(..at)?.to_vec();
    while at < data.len() {
        let (Some(stored_len), Some(encoding)) = (u32_at(at), data.get(at + 8)) else {
            out.extend_from_slice(&data[at..]);
            break;
        };
        let start = at + 13;
        let end = start.saturating_add(stored_len as usize).min(data.len());
        let stored = data.get(start..end).unwrap_or(&[]);
        let raw = if *encoding == 1 {
            let mut raw = Vec::new();
            let _ = flate2::read::DeflateDecoder::new(stored)
                .take(RESTORE_LIMIT)
                .read_to_end(&mut raw);
            raw
        } else {
            stored.to_vec()
        };
        let mut head = [0u8; 9];
        head[..4].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(&raw);
        out.extend_from_slice(&head);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&raw);
        at = end;
    }
    Some(out)
}

fn run_one(data: &[u8]) {
    let everything = Filters {
        idle: true,
        ..Filters::default()
    };
    let narrow = Filters {
        pids: vec![7, 8],
        threads: vec!["MainThread".into(), "9".into(), "0x1".into()],
        from: Some(Duration::from_millis(20)),
        to: Some(Duration::from_millis(900)),
        idle: false,
        gil: true,
    };
    for (filters, timeline) in [(&everything, true), (&narrow, false)] {
        let Ok(r) = replay(data, filters, timeline) else {
            continue;
        };
        let _ = r.notices("fuzz.pysampler", filters);
        let _ = r.check_not_empty("fuzz.pysampler", filters);
        let stacks = r.profile.stacks();
        let work: u64 = stacks
            .iter()
            .map(|(_, node, _)| u64::from(r.profile.tree.depth(*node)) + 1)
            .sum();
        assert!(r.profile.total_samples() <= r.tally.thread_samples);
        if work > RENDER_BUDGET {
            continue;
        }
        let opts = RenderOptions {
            threads: true,
            processes: true,
            ..RenderOptions::default()
        };
        let mut out = std::io::sink();
        for format in [Format::Raw, Format::Speedscope, Format::Chrometrace] {
            if format.needs_timeline() && !timeline {
                continue;
            }
            write(format, &r.profile, &opts, &mut out).expect("rendering into a sink");
        }
        let _ = report_table(&r.profile, &opts, "fuzz.pysampler", &Screen::plain());
    }
    if let Ok(Ok((slice, done))) = export(data, &narrow, Vec::new()) {
        // What was exported reads back whole.
        let back = replay(slice.as_slice(), &everything, false).expect("an exported slice opens");
        assert!(back.complete && back.cut.is_none(), "an exported slice is whole");
        assert_eq!(back.tally.thread_samples, done.thread_samples);
    }
}

/// Seed recordings, by name.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (name, ticks, threads, depth, per_chunk) in [
        ("small", 20u64, 1usize, 3usize, 8usize),
        ("threads", 60, 4, 6, 25),
        ("deep", 30, 2, 120, 10),
        ("one-chunk", 40, 2, 4, 1000),
    ] {
        let bytes = synthetic(ticks, threads, depth, per_chunk);
        // Stored chunks too, whose records the fuzzer's mutations reach.
        if let Some(stored) = restore(&bytes) {
            seeds.push((format!("{name}-stored.pysampler"), stored));
        }
        seeds.push((format!("{name}.pysampler"), bytes));
    }
    seeds
}

/// A recording of two processes, `threads` threads each, stacks up to
/// `depth` deep changing with time, a chunk every `per_chunk` events.
pub fn synthetic(ticks: u64, threads: usize, depth: usize, per_chunk: usize) -> Vec<u8> {
    let mut frames = FrameTable::default();
    let ids: Vec<u32> = (0..depth.max(2) as u32 + 3)
        .map(|i| {
            frames.intern(FrameInfo {
                name: format!("f{i}").into(),
                filename: if i % 3 == 0 {
                    "/usr/lib/python3.12/threading.py".into()
                } else {
                    "/app/main.py".into()
                },
                line: 10 + i,
                first_line: 9 + i,
            })
        })
        .collect();
    let header = Header {
        command: "python main.py".into(),
        rate_hz: 100.0,
        start_unix: 1.7e9,
        subprocesses: true,
        idle: true,
        ..Header::default()
    };
    let mut w = Writer::new(Vec::new(), &header).expect("writing into memory");
    let mut events = 0usize;
    let mut emit = |w: &mut Writer<Vec<u8>>, e: Event| {
        w.event(&e);
        events += 1;
        if events % per_chunk == 0 {
            w.add_frames(&frames);
            w.chunk().expect("writing into memory");
        }
    };
    for pid in [7, 8] {
        emit(
            &mut w,
            Event::Started(ProcessSummary {
                pid,
                command_line: format!("python main.py --worker {pid}"),
                cwd: Some("/app".into()),
                python_version: "3.12.1".into(),
            }),
        );
    }
    for tick in 0..ticks {
        for pid in [7, 8] {
            let samples = (0..threads)
                .map(|t| {
                    let len = 1 + (tick as usize * 7 + t * 3) % depth.max(1);
                    ThreadSample {
                        tid: (t != 2).then_some(pid * 10 + t as i32),
                        ident: t as u64 + 1,
                        name: match (t, tick > ticks / 2) {
                            (0, _) => Some("MainThread".into()),
                            (_, true) => Some(format!("worker-{t}").into()),
                            _ => None,
                        },
                        active: (tick + t as u64) % 3 != 0,
                        owns_gil: t == (tick as usize % threads.max(1)),
                        frames: ids[..len].iter().rev().copied().collect(),
                        truncated: len == depth,
                    }
                })
                .collect();
            emit(
                &mut w,
                Event::Sample {
                    pid,
                    at: Duration::from_millis(10 * tick + u64::from(pid == 8)),
                    late: tick % 11 == 3,
                    threads: samples,
                },
            );
        }
        if tick == ticks / 3 {
            emit(
                &mut w,
                Event::Error {
                    pid: 8,
                    message: "memory changed".into(),
                },
            );
        }
    }
    emit(
        &mut w,
        Event::Ended {
            pid: 8,
            reason: EndReason::Replaced {
                exe: "/bin/sh".into(),
            },
        },
    );
    w.add_frames(&frames);
    w.finish(Duration::from_millis(10 * ticks))
        .expect("writing into memory")
}

#[cfg(test)]
mod tests {
    #[test]
    fn restored_chunks_read_the_same() {
        use pysampler::recording::replay::{replay, Filters};
        for (name, bytes) in super::seeds() {
            let restored = super::restore(&bytes).unwrap();
            let all = Filters {
                idle: true,
                ..Filters::default()
            };
            let (a, b) = (
                replay(bytes.as_slice(), &all, false).unwrap(),
                replay(restored.as_slice(), &all, false).unwrap(),
            );
            assert!(b.complete && b.cut.is_none(), "{name}");
            assert_eq!(a.profile.stacks(), b.profile.stacks(), "{name}");
        }
    }

    #[test]
    fn seeds_run_clean_and_so_do_their_cuts() {
        for (name, bytes) in super::seeds() {
            super::run_recording(&bytes);
            for len in (0..bytes.len()).step_by(13) {
                super::run_recording(&bytes[..len]);
            }
            assert!(bytes.len() > 100, "{name}");
        }
    }
}
