//! Chrome's trace event format (a JSON object with `traceEvents`), for
//! Perfetto and chrome://tracing. Needs the timeline.
//!
//! Each frame on a thread's stack is a complete event ("ph":"X", ts/dur in
//! microseconds since recording began). A run lasts from its first sample to
//! the next run when that follows within 1.5 intervals (as the timeline joins
//! samples), else one interval past its last sample. Between consecutive runs
//! the frames of the common prefix stay open, so one call is one event and
//! events on a thread nest. Events are listed in the order they open (parents
//! before children). Metadata events ("ph":"M") name processes and threads; a
//! thread without an OS thread id gets tid 2^28 + its index. The thread and
//! process options add nothing here: processes and threads are the trace's
//! own tracks.

use crate::aggregate::{NodeId, Profile, Run, ThreadIndex};
use crate::output::render::{shown_stack, RenderOptions, ShownFrame};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::time::Duration;

/// A complete event being built.
struct Event {
    frame: ShownFrame,
    ts: u64,
    dur: u64,
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// The thread's events, in opening order.
fn thread_events(
    profile: &Profile,
    thread: ThreadIndex,
    opts: &RenderOptions,
    interval: Duration,
) -> Vec<Event> {
    let runs: &[Run] = profile.runs(thread);
    let mut events: Vec<Event> = Vec::new();
    // Indices into `events` of the open frames, outermost first.
    let mut open: Vec<usize> = Vec::new();
    let mut stacks: HashMap<NodeId, Vec<ShownFrame>> = HashMap::new();
    for (i, run) in runs.iter().enumerate() {
        let start = micros(run.first);
        let stack = stacks
            .entry(run.node)
            .or_insert_with(|| shown_stack(profile, thread, run.node, opts));
        let keep = open
            .iter()
            .zip(stack.iter())
            .take_while(|(e, f)| events[**e].frame == **f)
            .count();
        for e in open.drain(keep..) {
            events[e].dur = start.saturating_sub(events[e].ts);
        }
        for frame in stack.iter().skip(keep).cloned() {
            open.push(events.len());
            events.push(Event {
                frame,
                ts: start,
                dur: 0,
            });
        }
        let next = runs.get(i + 1).map(|r| r.first);
        let joined = next.is_some_and(|n| n.saturating_sub(run.last) <= interval * 3 / 2);
        if !joined {
            let mut end = micros(run.last + interval);
            if let Some(n) = next {
                end = end.min(micros(n));
            }
            for e in open.drain(..) {
                events[e].dur = end.saturating_sub(events[e].ts);
            }
        }
    }
    events
}

fn tid(profile: &Profile, thread: ThreadIndex) -> i64 {
    match profile.threads[thread as usize].tid {
        Some(t) => i64::from(t),
        None => (1 << 28) + i64::from(thread),
    }
}

fn metadata(profile: &Profile) -> Vec<Value> {
    let pids: BTreeSet<i32> = profile.threads.iter().map(|t| t.pid).collect();
    let mut out = Vec::new();
    for pid in pids {
        let name = match profile.process(pid) {
            Some(p) if !p.command_line.is_empty() => p.command_line.clone(),
            _ => format!("pid {pid}"),
        };
        out.push(json!({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}}));
    }
    for (i, t) in profile.threads.iter().enumerate() {
        let name = t.name.clone().unwrap_or_else(|| t.label());
        let tid = tid(profile, i as ThreadIndex);
        out.push(json!({"ph": "M", "name": "thread_name", "pid": t.pid, "tid": tid, "args": {"name": name}}));
    }
    out
}

pub fn write(profile: &Profile, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
    if !profile.has_timeline() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the chrometrace format needs the timeline (record with a timeline)",
        ));
    }
    // A rate of 0 is never recorded; assume 100 Hz rather than divide by it.
    let rate = if profile.info.rate_hz > 0.0 {
        profile.info.rate_hz
    } else {
        100.0
    };
    let interval = Duration::from_secs_f64(1.0 / rate);
    // Streamed, one event per line: readable, and diffs well in golden files.
    write!(out, "{{\"traceEvents\":[")?;
    let mut sep = "\n";
    let mut emit = |out: &mut dyn io::Write, event: Value| -> io::Result<()> {
        write!(out, "{sep}{event}")?;
        sep = ",\n";
        Ok(())
    };
    for event in metadata(profile) {
        emit(out, event)?;
    }
    for thread in 0..profile.threads.len() as ThreadIndex {
        let (pid, tid) = (profile.threads[thread as usize].pid, tid(profile, thread));
        for e in thread_events(profile, thread, opts, interval) {
            let mut args = json!({"file": e.frame.file});
            if let Some(line) = e.frame.line {
                args["line"] = json!(line);
            }
            if let Some(column) = e.frame.column {
                args["column"] = json!(column);
            }
            let event = json!({
                "ph": "X", "name": e.frame.name, "cat": "python", "ts": e.ts, "dur": e.dur,
                "pid": pid, "tid": tid, "args": args,
            });
            emit(out, event)?;
        }
    }
    let other = json!({
        "command": profile.info.command,
        "exporter": format!("pysampler {}", env!("CARGO_PKG_VERSION")),
        "rate_hz": profile.info.rate_hz,
        "samples": profile.total_samples(),
    });
    writeln!(
        out,
        "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{other}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::render::fixture;

    fn x_events(opts: &RenderOptions) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        write(&fixture::profile(), opts, &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        events
            .iter()
            .filter(|e| e["ph"] == "X")
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["ts"].as_u64().unwrap(),
                    e["dur"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn shared_prefix_stays_one_event() {
        let ev = |n: &str, ts, dur| (n.to_string(), ts, dur);
        // spin:6 at 0-20 ms, spin:5 at 20-30, spin:6 at 30-40, wait at 40-60.
        assert_eq!(
            x_events(&RenderOptions::default()),
            vec![
                ev("<module>", 0, 60_000),
                ev("spin", 0, 20_000),
                ev("spin", 20_000, 10_000),
                ev("spin", 30_000, 10_000),
                ev("wait", 40_000, 20_000),
            ]
        );
        // By function, the three spin runs are one call.
        let opts = RenderOptions {
            function: true,
            ..Default::default()
        };
        assert_eq!(x_events(&opts)[1], ev("spin", 0, 40_000));
    }

    #[test]
    fn needs_timeline() {
        let err = write(
            &fixture::build(false),
            &RenderOptions::default(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let mut out = Vec::new();
        write(&Profile::new(true), &RenderOptions::default(), &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["traceEvents"], json!([]));
    }
}
