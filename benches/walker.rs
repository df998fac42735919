//! Micro-benchmarks of the sampling hot path without a live target: the
//! walker on saved memory snapshots of real interpreters, line-table
//! decoding, and aggregation into a `Profile`.
//!
//! At start-up each interpreter runs `fixtures/bench_deep_sleep.py` (a
//! 100-deep stack through three functions into a ~400-line function, asleep)
//! and is captured into `target/bench/snapshots/deep-<version>.pysnap`; the
//! benchmarks then read only the snapshot. The interpreters are pyenv's 3.9
//! (frame objects, ≤ 3.10), 3.12 (3.11/3.12 frames in the data stack), 3.13,
//! and 3.14 in the Debian sid root (`make sid-root`, run with chroot, so
//! capturing needs root). A missing interpreter stops the benchmark with a
//! message saying how to install it. `PYSAMPLER_BENCH_PYTHONS=3.12,3.13`
//! picks a subset.
//!
//!     cargo bench --bench walker                 # everything
//!     cargo bench --bench walker -- walk/3.12     # one group

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pysampler::aggregate::{FrameId, FrameInfo, FrameTable, Profile, ThreadInfo};
use pysampler::process::locate::locate_interpreter;
use pysampler::process::memory::LiveMemory;
use pysampler::process::ProcessInfo;
use pysampler_core::snapshot::Snapshot;
use pysampler_core::walk::frames::RawFrame;
use pysampler_core::walk::linetable::location_for_offset;
use pysampler_core::walk::{StackReader, ThreadEntry};
use pysampler_testkit::{pythons, Target};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

const FIXTURE: &str = "bench_deep_sleep.py";
/// Depth of the fixture's stack (frames of the main thread).
const DEPTH: usize = 100;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// How long the fixture may take to be asleep once it said READY.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the fixture on Python `version` ("3.12"), waits until it sleeps at
/// its known point, and captures it into `path`.
fn capture(version: &str, path: &Path) {
    let python = pythons::locate(version, Path::new(env!("CARGO_TARGET_TMPDIR"))).unwrap_or_else(|e| {
        panic!("Python {version} is required by the walker benchmarks: {e} (pyenv install {version}, or `make sid-root` for 3.14/3.15)")
    });
    let target = Target::start(&python, FIXTURE, &[]);
    // READY is printed just before the fixture's only thread sleeps.
    target
        .wait_until_asleep(1, SETTLE_TIMEOUT)
        .unwrap_or_else(|e| panic!("Python {version}: {FIXTURE}: {e}"));
    let pid = target.pid();
    let process = ProcessInfo::open(pid).unwrap_or_else(|e| panic!("Python {version}: {e}"));
    let interp = locate_interpreter(&process, &LiveMemory::new(pid).with_proc_mem_fallback())
        .unwrap_or_else(|e| panic!("Python {version}: cannot locate the interpreter: {e}"));
    pysampler::process::capture::capture(pid, &interp, path)
        .unwrap_or_else(|e| panic!("Python {version}: capture failed: {e}"));
    drop(target);
}

/// One interpreter's snapshot, and what the benchmarks need from it.
struct Loaded {
    version: String,
    snap: Snapshot,
    /// The thread with the 100-deep stack.
    entry: ThreadEntry,
}

fn versions() -> Vec<String> {
    let list = std::env::var("PYSAMPLER_BENCH_PYTHONS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "3.9,3.12,3.13,3.14".to_string());
    list.split(',').map(|v| v.trim().to_string()).collect()
}

fn load_all() -> Vec<Loaded> {
    let dir = repo().join("target/bench/snapshots");
    std::fs::create_dir_all(&dir).expect("cannot create target/bench/snapshots");
    versions()
        .into_iter()
        .map(|version| {
            let path = dir.join(format!("deep-{version}.pysnap"));
            capture(&version, &path);
            let snap = Snapshot::load(&path)
                .unwrap_or_else(|e| panic!("Python {version}: cannot load {path:?}: {e}"));
            let mut reader = snap.stack_reader();
            let tids = snap.tids.clone();
            let entries = reader
                .threads(|| tids)
                .unwrap_or_else(|e| panic!("Python {version}: no threads in the snapshot: {e}"));
            let mut raw = Vec::new();
            let entry = entries
                .into_iter()
                .find(|e| {
                    raw.clear();
                    reader.raw_frames(e, &mut raw).is_ok() && raw.len() >= DEPTH - 2
                })
                .unwrap_or_else(|| {
                    panic!("Python {version}: no thread with a {DEPTH}-deep stack in the snapshot")
                });
            eprintln!(
                "walker bench: Python {version} snapshot {} ({} frames on the main thread)",
                path.display(),
                raw.len()
            );
            Loaded {
                version,
                snap,
                entry,
            }
        })
        .collect()
}

/// The stack-walking benchmarks, per interpreter:
/// - `threads`: find the thread states (interpreter list, thread list, names);
/// - `raw_frames`: the part of a sample read while the thread is paused;
/// - `sample`: threads + raw frames + resolving every frame to (code, line)
///   with warm caches — a whole sample as the walker does it;
/// - `read_cold`: a new reader's first `read` (every code object read).
fn walk(c: &mut Criterion, all: &[Loaded]) {
    for l in all {
        let mut group = c.benchmark_group(format!("walk/{}", l.version));
        group.throughput(Throughput::Elements(DEPTH as u64));
        let tids = l.snap.tids.clone();

        let mut reader = l.snap.stack_reader();
        group.bench_function("threads", |b| {
            b.iter(|| black_box(reader.threads(|| tids.clone()).unwrap()))
        });

        let mut reader = l.snap.stack_reader();
        let mut raw: Vec<RawFrame> = Vec::with_capacity(256);
        group.bench_function("raw_frames", |b| {
            b.iter(|| {
                raw.clear();
                black_box(reader.raw_frames(&l.entry, &mut raw).unwrap());
                black_box(raw.len())
            })
        });

        let mut reader = l.snap.stack_reader();
        group.bench_function("sample", |b| {
            b.iter(|| {
                let entries = reader.threads(|| tids.clone()).unwrap();
                let mut lines = 0u64;
                for entry in &entries {
                    raw.clear();
                    reader.raw_frames(entry, &mut raw).unwrap();
                    for frame in &raw {
                        if let Ok(Some((_, at))) = reader.resolve(frame) {
                            lines += u64::from(at.line) + u64::from(at.column);
                        }
                    }
                }
                black_box(lines)
            })
        });

        group.bench_function("read_cold", |b| {
            b.iter_batched(
                || l.snap.stack_reader(),
                |mut reader: StackReader| black_box(reader.read(&tids, false).unwrap()),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

/// Line-table decoding on the snapshot's real code objects: the ~400-line
/// leaf function at its last line (the whole table is walked), and a short
/// recursive function.
fn linetable(c: &mut Criterion, all: &[Loaded]) {
    for l in all {
        let mut group = c.benchmark_group(format!("linetable/{}", l.version));
        let format = l.snap.interp.families.line_table;
        let mut reader = l.snap.stack_reader();
        let mut raw = Vec::new();
        reader.raw_frames(&l.entry, &mut raw).unwrap();
        let resolved: Vec<_> = raw
            .iter()
            .filter_map(|f| Some((reader.resolve(f).ok()??, f.offset)))
            .collect();
        let pick = |name: &str| {
            resolved
                .iter()
                .find(|((code, _), _)| code.name.ends_with(name))
                .unwrap_or_else(|| panic!("Python {}: no frame {name} in the snapshot", l.version))
                .clone()
        };
        for name in ["long_leaf", "step_a"] {
            let ((code, line), offset) = pick(name);
            let offset = offset.max(0) as u32;
            // The decoder agrees with the walker before it is timed.
            assert_eq!(
                location_for_offset(format, &code.line_table, code.first_line, offset)
                    .unwrap_or_default(),
                line
            );
            group.throughput(Throughput::Bytes(code.line_table.len() as u64));
            group.bench_function(name, |b| {
                b.iter(|| {
                    location_for_offset(
                        format,
                        black_box(&code.line_table),
                        code.first_line,
                        black_box(offset),
                    )
                })
            });
        }
        group.finish();
    }
}

fn frame(name: &str, line: u32) -> FrameInfo {
    FrameInfo {
        name: name.into(),
        filename: "/srv/app/bench_module.py".into(),
        line,
        column: 0,
        first_line: 1,
    }
}

/// Aggregation: `Profile::add` with the same 100-frame stack each time (the
/// common case), cycling through 10,000 distinct stacks (the RSS fixture's
/// shape: ten functions, four levels), with a timeline (speedscope/Chrome
/// trace) and without (flame graph, raw); and interning 100 frames.
fn aggregate(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregate");
    let thread = ThreadInfo {
        pid: 1,
        tid: Some(1),
        ident: 1,
        name: Some("MainThread".into()),
    };
    let interval = Duration::from_millis(1);

    let mut table = FrameTable::default();
    let deep: Vec<FrameId> = (0..DEPTH as u32)
        .map(|i| table.intern(frame(if i == 0 { "leaf" } else { "descend" }, 10 + i % 3)))
        .collect();
    for timeline in [false, true] {
        let name = if timeline {
            "add_same_100_deep_timeline"
        } else {
            "add_same_100_deep"
        };
        let mut profile = Profile::new(timeline);
        let index = profile.thread_index(&thread);
        let mut tick = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                tick += 1;
                profile.add(index, black_box(&deep), interval * tick as u32, interval)
            })
        });
    }

    let funcs: Vec<FrameId> = (0..10)
        .map(|f| table.intern(frame(&format!("f{f}"), 20 + f)))
        .collect();
    let base = [
        table.intern(frame("<module>", 100)),
        table.intern(frame("run", 90)),
    ];
    let stacks: Vec<Vec<FrameId>> = (0..10_000u32)
        .map(|k| {
            // Innermost first: spin, f<d0>, f<d1>, f<d2>, f<d3>, run, <module>.
            let mut s = vec![table.intern(frame("spin", 15))];
            for level in 0..4 {
                s.push(funcs[((k / 10u32.pow(level)) % 10) as usize]);
            }
            s.extend_from_slice(&[base[1], base[0]]);
            s
        })
        .collect();
    for timeline in [false, true] {
        let name = if timeline {
            "add_10000_stacks_timeline"
        } else {
            "add_10000_stacks"
        };
        let mut profile = Profile::new(timeline);
        let index = profile.thread_index(&thread);
        let mut tick = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                tick += 1;
                let stack = &stacks[(tick % stacks.len() as u64) as usize];
                profile.add(index, black_box(stack), interval * tick as u32, interval)
            })
        });
    }

    let frames: Vec<FrameInfo> = (0..DEPTH as u32)
        .map(|i| frame(&format!("function_{i}"), i))
        .collect();
    let mut table = FrameTable::default();
    for f in &frames {
        table.intern(f.clone());
    }
    group.throughput(Throughput::Elements(DEPTH as u64));
    group.bench_function("intern_100_known_frames", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for f in &frames {
                sum = sum.wrapping_add(table.intern(f.clone()));
            }
            black_box(sum)
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    aggregate(c);
    let all = load_all();
    walk(c, &all);
    linetable(c, &all);
}

criterion_group! {
    name = walker;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(walker);
