//! Recordings round-trip: a fixed event stream aggregated as `record` does
//! and written, read and replayed give the same profile and the same
//! outputs; cut and damaged files keep what comes before the damage.

use super::reader::Reader;
use super::replay::{replay, Filters, Replayed};
use super::writer::Writer;
use super::*;
use crate::aggregate::{FrameInfo, FrameTable, ProcessSummary, Profile, RecordingInfo};
use crate::output::render::RenderOptions;
use crate::output::{self, Format};
use crate::sampling::{EndReason, Event, ThreadSample};

/// Two processes; pid 10 has a main thread that spins (stacks change) and
/// an idle sleeper, renamed half-way; pid 20 one thread; 100 Hz, 300 ticks.
pub fn stream() -> (FrameTable, Vec<Event>) {
    let mut frames = FrameTable::default();
    let mut frame = |name: &str, file: &str, line| {
        frames.intern(FrameInfo {
            name: name.into(),
            filename: file.into(),
            line,
            column: line % 7,
            first_line: line.saturating_sub(2).max(1),
        })
    };
    let module = frame("<module>", "/app/main.py", 30);
    let hot = frame("hot", "/app/main.py", 5);
    let hot2 = frame("hot", "/app/main.py", 6);
    let cold = frame("cold", "/app/main.py", 12);
    let sleep = frame("wait", "/usr/lib/python3.12/threading.py", 320);
    let run = frame("run", "/app/worker.py", 3);
    let summary = |pid| ProcessSummary {
        pid,
        command_line: format!("python{pid} main.py"),
        cwd: Some("/app".into()),
        python_version: "3.12.1".into(),
    };
    let sample = |tid, name: Option<&str>, active, frames: Vec<u32>| ThreadSample {
        tid: Some(tid),
        ident: tid as u64 * 16,
        name: name.map(Into::into),
        active,
        owns_gil: active,
        frames,
        truncated: false,
    };
    let mut events = vec![Event::Started(summary(10)), Event::Started(summary(20))];
    for i in 0..300u64 {
        let at = std::time::Duration::from_millis(10 * i);
        let leaf = match i % 4 {
            0 | 1 => vec![hot, module],
            2 => vec![hot2, module],
            _ => vec![cold, module],
        };
        let sleeper = if i < 150 { None } else { Some("sleeper") };
        events.push(Event::Sample {
            pid: 10,
            at,
            late: i % 50 == 7,
            threads: vec![
                sample(10, Some("MainThread"), true, leaf),
                sample(11, sleeper, false, vec![sleep, module]),
            ],
        });
        // The other process samples a little later in each tick.
        events.push(Event::Sample {
            pid: 20,
            at: at + std::time::Duration::from_micros(300),
            late: false,
            threads: vec![sample(20, Some("MainThread"), true, vec![run])],
        });
        if i == 100 {
            events.push(Event::Error {
                pid: 20,
                message: "memory changed".into(),
            });
        }
    }
    events.push(Event::Ended {
        pid: 20,
        reason: EndReason::GaveUp {
            failures: 3,
            last: "x".into(),
        },
    });
    (frames, events)
}

/// What `record`'s aggregator builds from the events (all threads kept).
pub fn aggregate(frames: &FrameTable, events: &[Event], timeline: bool) -> Profile {
    let mut p = Profile::new(timeline);
    let interval = header().interval();
    let mut ticks = 0;
    for e in events {
        match e {
            Event::Started(s) => p.processes.push(s.clone()),
            Event::Sample {
                pid, at, threads, ..
            } => {
                ticks += 1;
                for t in threads {
                    let index = p.threads.index(*pid, t.tid, t.ident, t.name.as_deref());
                    p.add(index, &t.frames, *at, interval);
                }
            }
            _ => {}
        }
    }
    p.frames = frames.clone();
    p.info = RecordingInfo {
        command: header().command,
        rate_hz: 100.0,
        start_unix: 1.7e9,
        duration: std::time::Duration::from_secs(3),
        samples: ticks,
        late_samples: 6,
        errors: 1,
    };
    p
}

pub fn header() -> Header {
    Header {
        command: "python main.py".into(),
        rate_hz: 100.0,
        start_unix: 1.7e9,
        subprocesses: true,
        idle: true,
        ..Header::default()
    }
}

/// The stream written with a chunk every `per_chunk` events.
pub fn write(frames: &FrameTable, events: &[Event], per_chunk: usize) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), &header()).unwrap();
    for (i, e) in events.iter().enumerate() {
        w.event(e);
        if (i + 1) % per_chunk == 0 {
            w.add_frames(frames);
            w.chunk().unwrap();
        }
    }
    w.add_frames(frames);
    w.finish(std::time::Duration::from_secs(3)).unwrap()
}

fn all() -> Filters {
    Filters {
        idle: true,
        ..Filters::default()
    }
}

fn replayed(bytes: &[u8], filters: &Filters, timeline: bool) -> Replayed {
    replay(bytes, filters, timeline).unwrap()
}

fn render(format: Format, p: &Profile) -> String {
    let opts = RenderOptions {
        processes: true,
        threads: true,
        ..RenderOptions::default()
    };
    let mut out = Vec::new();
    output::write(format, p, &opts, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_replay_renders_what_record_would_have() {
    let (frames, events) = stream();
    let bytes = write(&frames, &events, 64);
    for format in [
        Format::Raw,
        Format::Flamegraph,
        Format::Speedscope,
        Format::Chrometrace,
    ] {
        let timeline = format.needs_timeline();
        let direct = aggregate(&frames, &events, timeline);
        let r = replayed(&bytes, &all(), timeline);
        assert!(r.complete && r.cut.is_none());
        assert_eq!(r.profile.info, direct.info, "{format:?}");
        assert_eq!(r.profile.stacks(), direct.stacks(), "{format:?}");
        assert_eq!(
            render(format, &r.profile),
            render(format, &direct),
            "{format:?}"
        );
    }
    // Thread names as last known: the sleeper was renamed half-way.
    let r = replayed(&bytes, &all(), false);
    assert_eq!(r.profile.threads[1].label(), "sleeper (11)");
}

#[test]
fn filters_keep_what_they_name() {
    let (frames, events) = stream();
    let bytes = write(&frames, &events, 100);
    let total = |f: Filters| replayed(&bytes, &f, false).profile.total_samples();
    assert_eq!(total(all()), 900);
    assert_eq!(total(Filters::default()), 600, "the sleeper is idle");
    let r = replayed(&bytes, &Filters::default(), false);
    assert_eq!(r.tally.idle_left_out, 300);
    assert_eq!(
        total(Filters {
            pids: vec![20],
            ..all()
        }),
        300
    );
    for name in ["sleeper", "11", "0xb0"] {
        assert_eq!(
            total(Filters {
                threads: vec![name.into()],
                ..all()
            }),
            // By name only once it had one.
            if name == "sleeper" { 150 } else { 300 },
            "{name}"
        );
    }
    let window = Filters {
        from: Some(std::time::Duration::from_millis(1000)),
        to: Some(std::time::Duration::from_millis(2000)),
        pids: vec![10],
        threads: vec!["MainThread".into()],
        ..all()
    };
    let r = replayed(&bytes, &window, true);
    assert_eq!(r.profile.total_samples(), 100);
    assert_eq!(r.profile.info.duration, std::time::Duration::from_secs(1));
    assert_eq!(r.profile.info.samples, 100);
    assert_eq!(total(Filters { gil: true, ..all() }), 600);
    let none = replayed(
        &bytes,
        &Filters {
            threads: vec!["nope".into()],
            ..all()
        },
        false,
    );
    let err = none
        .check_not_empty("r.pysampler", &all())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no samples of r.pysampler match"), "{err}");
    assert!(
        err.contains("MainThread (10)") && err.contains("process 20"),
        "{err}"
    );
}

#[test]
fn every_cut_keeps_the_whole_chunks_before_it() {
    let (frames, events) = stream();
    let bytes = write(&frames, &events, 50);
    let full = replayed(&bytes, &all(), false).profile.total_samples();
    let mut last = 0;
    for len in (0..bytes.len()).step_by(7) {
        match replay(&bytes[..len], &all(), false) {
            Ok(r) => {
                assert!(!r.complete, "cut at {len}");
                let n = r.profile.total_samples();
                assert!(n >= last && n < full, "cut at {len}: {n}");
                last = n;
                let notes = r.notices("r.pysampler", &all());
                assert!(notes[0].contains("cut short after"), "{notes:?}");
            }
            Err(e) => assert!(
                matches!(e, OpenError::Truncated | OpenError::Empty),
                "{len}: {e:?}"
            ),
        }
    }
    assert!(last > full / 2);
}

#[test]
fn a_damaged_chunk_ends_the_reading() {
    let (frames, events) = stream();
    let bytes = write(&frames, &events, 200);
    let mut reader = Reader::open(bytes.as_slice()).unwrap();
    let mut ticks = 0;
    assert!(reader.read_all(|_, _| ticks += 1).is_none());
    assert!(ticks > 0);
    // Flip one byte in the last chunk: the chunks before it stay.
    let mut damaged = bytes.clone();
    let middle = damaged.len() - 5;
    damaged[middle] ^= 0x40;
    let r = replayed(&damaged, &all(), false);
    let cut = r.cut.clone().expect("cut");
    assert!(cut.chunks >= 1, "{cut:?}");
    assert!(cut.why.contains("checksum"), "{cut:?}");
    assert!((cut.offset as usize) <= middle);
    assert!(r.profile.total_samples() > 0);
    assert!(r.notices("r", &all())[0].contains("unreadable"));
}

#[test]
fn files_that_are_not_recordings_or_too_new() {
    assert_eq!(
        replay(&b""[..], &all(), false).unwrap_err(),
        OpenError::Empty
    );
    assert_eq!(
        replay(&b"spin (a.py:3) 4\n"[..], &all(), false).unwrap_err(),
        OpenError::NotARecording
    );
    let (frames, events) = stream();
    let mut bytes = write(&frames, &events, 500);
    bytes[8] = 2; // major 2
    bytes[10] = 7; // minor 7
    let err = replay(bytes.as_slice(), &all(), false).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Newer {
                major: 2,
                minor: 7,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.describe("new.pysampler");
    assert!(
        text.contains(&format!(
            "written by pysampler {}",
            env!("CARGO_PKG_VERSION")
        )) && text.contains("format 2.7")
            && text.contains("reads format 1.1"),
        "{text}"
    );
    // A damaged header.
    let mut bytes = write(&frames, &events, 500);
    bytes[30] ^= 1;
    assert!(matches!(
        replay(bytes.as_slice(), &all(), false).unwrap_err(),
        OpenError::BadHeader(_)
    ));
}

#[test]
fn a_later_minor_versions_records_and_fields_are_skipped() {
    // Format 1.1's column, then a field of some later version.
    let r = replay_one_frame(&[99, 12345]);
    assert_eq!(r.profile.total_samples(), 1);
    assert_eq!(r.profile.frames.get(0).name.as_ref(), "f");
    assert_eq!(r.profile.frames.get(0).column, 99);
}

#[test]
fn a_format_1_0_frame_has_column_0() {
    let r = replay_one_frame(&[]);
    assert_eq!(r.profile.total_samples(), 1);
    assert_eq!(r.profile.frames.get(0).line, 3);
    assert_eq!(r.profile.frames.get(0).column, 0);
}

/// A recording whose one frame ("f", /a.py:3, first line 1) has `extra`
/// fields after the first line, with an unknown record before it.
fn replay_one_frame(extra: &[u64]) -> Replayed {
    use super::codec::{put_record, put_u64};
    // Header, then one chunk of: an unknown record, a frame with an extra
    // field, a stack, a thread and a tick.
    let mut w = Writer::new(Vec::new(), &header()).unwrap();
    w.chunk().unwrap();
    let mut bytes = w.finish(std::time::Duration::ZERO).unwrap();
    // Drop the END chunk the writer made; append one of our own.
    let head_len = bytes.len() - replay_chunk_len(&bytes).expect("the writer's last chunk");
    bytes.truncate(head_len);
    let mut raw = Vec::new();
    put_record(&mut raw, 77, b"future");
    let mut frame = Vec::new();
    codec::put_str(&mut frame, "f");
    codec::put_str(&mut frame, "/a.py");
    put_u64(&mut frame, 3);
    put_u64(&mut frame, 1);
    for field in extra {
        put_u64(&mut frame, *field);
    }
    put_record(&mut raw, TAG_FRAME, &frame);
    put_record(&mut raw, TAG_STACK, &[0, 0]);
    let mut thread = Vec::new();
    codec::put_i64(&mut thread, 5);
    codec::put_opt_i32(&mut thread, Some(5));
    put_u64(&mut thread, 1);
    codec::put_opt_str(&mut thread, None);
    put_record(&mut raw, TAG_THREAD, &thread);
    put_record(&mut raw, TAG_TICK, &[10, 0, 0, 1, 0, THREAD_ACTIVE, 1]);
    bytes.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    bytes.push(writer::STORED);
    let mut crc = crc32fast::Hasher::new();
    crc.update(&bytes[bytes.len() - 9..]);
    crc.update(&raw);
    bytes.extend_from_slice(&crc.finalize().to_le_bytes());
    bytes.extend_from_slice(&raw);
    replayed(&bytes, &all(), false)
}

/// Length of the last chunk of a file with a header and one chunk.
fn replay_chunk_len(bytes: &[u8]) -> Option<usize> {
    // Preamble: magic, versions, writer version, header length + crc + JSON.
    let version_len = *bytes.get(12)? as usize;
    let at = 13 + version_len;
    let json = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
    let chunk = at + 8 + json;
    Some(bytes.len() - chunk)
}
