//! Writes a synthetic recording, for measuring the recording format's size
//! and `pysampler report`'s speed (BENCHMARKS.md, "Recordings"):
//!
//!     cargo run --release --example synthetic_recording -- OUT SAMPLES STACKS
//!
//! One process, one thread, sampled at 1000 Hz (due times exactly 1 ms
//! apart, one tick in 50 late, one in 500 skipped, as a loaded schedule
//! gives). Every stack is 100 frames deep: 90 frames of a fixed recursion,
//! then 10 levels chosen from the digits of a pseudo-random number, 10
//! functions per level, so STACKS (at most 10^10) distinct stacks are drawn
//! at random, a new one for every sample: the worst case for the format,
//! whose per-sample cost is the stack's id. With STACKS = 1 the same
//! stack is sampled each time, its innermost line changing among 5, as in a
//! program busy in one loop.

use pysampler::aggregate::{FrameInfo, FrameTable, ProcessSummary};
use pysampler::recording::writer::Writer;
use pysampler::recording::Header;
use pysampler::sampling::{Event, ThreadSample};
use std::io::BufWriter;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 {
        eprintln!("usage: synthetic_recording OUT SAMPLES STACKS");
        std::process::exit(2);
    }
    let samples: u64 = args[1].parse().expect("SAMPLES is a number");
    let stacks: u64 = args[2].parse().expect("STACKS is a number");
    let mut frames = FrameTable::default();
    let mut frame = |name: String, line: u32| {
        frames.intern(FrameInfo {
            name: name.into(),
            filename: "/srv/app/work.py".into(),
            line,
            column: 5,
            first_line: line - 1,
        })
    };
    let base: Vec<u32> = (0..90)
        .map(|i| frame("recurse".into(), 10 + i % 2))
        .collect();
    let levels: Vec<Vec<u32>> = (0..10)
        .map(|level| {
            (0..10)
                .map(|f| frame(format!("level{level}_f{f}"), 100 + f))
                .collect()
        })
        .collect();
    let leaf_lines: Vec<u32> = (0..5).map(|l| frame("busy_leaf".into(), 200 + l)).collect();
    let header = Header {
        command: "python work.py".into(),
        rate_hz: 1000.0,
        start_unix: 1.7e9,
        ..Header::default()
    };
    let out = std::fs::File::create(&args[0]).expect("create OUT");
    let mut w = Writer::new(BufWriter::new(out), &header).expect("write header");
    w.event(&Event::Started(ProcessSummary {
        pid: 4242,
        command_line: "python work.py".into(),
        cwd: Some("/srv/app".into()),
        python_version: "3.12.1".into(),
    }));
    let mut rng: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let name: std::sync::Arc<str> = "MainThread".into();
    let started = Instant::now();
    let (mut tick, mut written) = (0u64, 0u64);
    // Root first, then reversed: samples carry the innermost frame first.
    let mut stack: Vec<u32> = Vec::with_capacity(101);
    while written < samples {
        tick += 1;
        if tick % 500 == 0 {
            continue; // a skipped tick
        }
        stack.clear();
        stack.extend_from_slice(&base);
        if stacks <= 1 {
            stack.extend(levels.iter().map(|l| l[0]));
            stack.push(leaf_lines[(next() % 5) as usize]);
        } else {
            let mut digits = next() % stacks;
            for level in &levels {
                stack.push(level[(digits % 10) as usize]);
                digits /= 10;
            }
        }
        stack.reverse();
        w.event(&Event::Sample {
            pid: 4242,
            at: Duration::from_millis(tick),
            late: tick % 50 == 0,
            threads: vec![ThreadSample {
                tid: Some(4242),
                ident: 1,
                name: Some(name.clone()),
                active: true,
                owns_gil: true,
                frames: stack.clone(),
                truncated: false,
            }],
        });
        written += 1;
        // A chunk per second of samples, as `record` writes them.
        if tick % 1000 == 1 {
            w.add_frames(&frames);
            w.chunk().expect("write chunk");
        }
    }
    w.add_frames(&frames);
    let chunks = w.chunks() + 1;
    w.finish(Duration::from_millis(tick)).expect("finish");
    let size = std::fs::metadata(&args[0]).expect("OUT written").len();
    println!(
        "{samples} samples, {stacks} distinct stacks drawn, {chunks} chunks: {size} bytes, {:.2} bytes per sample, written in {:.2} s",
        size as f64 / samples as f64,
        started.elapsed().as_secs_f64()
    );
}
