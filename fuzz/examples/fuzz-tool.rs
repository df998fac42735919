//! Seeds and reproductions for the pysampler fuzz targets.
//!
//!     fuzz-tool seeds [--force] [LABEL…]     capture the seed snapshots (live
//!                                            interpreters running fuzz/seed_target.py)
//!                                            and write the seed corpora
//!     fuzz-tool recording-seeds              write the recording target's seed corpus
//!                                            (synthetic recordings; needs no interpreter)
//!     fuzz-tool info                         seeds, hot-set sizes
//!     fuzz-tool show TARGET FILE             run one input, print what the walker made of it
//!     fuzz-tool export TARGET FILE OUT.pysnap
//!                                            a self-contained snapshot reproducing a
//!                                            walker/walker_layout input (replay it with the
//!                                            snapshot_file target, or Snapshot::load + read)
//!
//!     fuzz-tool threads LABEL                the seed's thread states (addresses, frames, chunks)
//!     fuzz-tool layout-craft LABEL OUT [FIELD=VALUE…]
//!                                            a walker_layout input for a 3.13+ seed
//!                                            ("thread.next=0x10000000000")
//!     fuzz-tool slots LABEL                  addresses of the local variables of each
//!                                            thread's innermost frame (to aim `craft`)
//!     fuzz-tool craft LABEL OUT [ADDR=HEX…]  a walker input: the seed with these bytes
//!                                            written at these (hot) addresses
//!     fuzz-tool synth-wide OUT THREADS DEPTH a hand-made 3.12 snapshot: THREADS thread
//!                                            states sharing one DEPTH-deep frame chain
//!                                            (the product of the walker's caps)
//!
//! Run with `cargo run --release --manifest-path fuzz/Cargo.toml --example fuzz-tool -- …`
//! (fuzz/gen-seeds.sh does the `seeds` step). Capturing reads other
//! processes' memory and chroots into the Debian sid root for 3.14/3.15, so
//! it needs root (or ptrace rights and no 3.14/3.15).

use pysampler::process::locate::locate_interpreter;
use pysampler::process::memory::LiveMemory;
use pysampler::process::ProcessInfo;
use pysampler_core::interpreter::Interpreter;
use pysampler_core::snapshot::{Metadata, Snapshot, SnapshotMemory};
use pysampler_core::walk::linetable::LineTableFormat;
use pysampler_fuzz::{fuzz_dir, seed_path, Outcome, Seed, LAYOUT_SEEDS, SEEDS};
use pysampler_testkit::{pythons, Target};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Threads of fuzz/seed_target.py.
const THREADS: usize = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("seeds") => seeds(&args[1..]),
        Some("info") => info(),
        Some("recording-seeds") => recording_seeds(),
        Some("show") if args.len() == 3 => show(&args[1], Path::new(&args[2])),
        Some("export") if args.len() == 4 => {
            export(&args[1], Path::new(&args[2]), Path::new(&args[3]))
        }
        Some("threads") if args.len() == 2 => threads(&args[1]),
        Some("synth-wide") if args.len() == 4 => synth_wide(
            Path::new(&args[1]),
            args[2].parse().map_err(|_| "THREADS".to_string()).unwrap_or(16384),
            args[3].parse().map_err(|_| "DEPTH".to_string()).unwrap_or(10000),
        ),
        Some("__record") if args.len() == 4 => {
            record(&args[1], Path::new(&args[2]), Path::new(&args[3]))
        }
        Some("layout-craft") if args.len() >= 3 => layout_craft(&args[1], Path::new(&args[2]), &args[3..]),
        Some("slots") if args.len() == 2 => slots(&args[1]),
        Some("craft") if args.len() >= 3 => craft(&args[1], Path::new(&args[2]), &args[3..]),
        _ => Err("usage: fuzz-tool seeds [--force] [LABEL…] | info | show TARGET FILE | export TARGET FILE OUT.pysnap | threads LABEL | craft LABEL OUT [ADDR=HEX…]".into()),
    };
    if let Err(e) = result {
        eprintln!("fuzz-tool: {e}");
        std::process::exit(1);
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

// ---- capture -------------------------------------------------------------------

/// How long the seed target may take to be asleep once it said READY.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs fuzz/seed_target.py on Python `label` (pysampler-testkit finds the
/// interpreter and waits for the READY handshake), waits until its threads
/// all sleep, and captures it into `out`.
fn capture(label: &str, out: &Path) -> Result<(), String> {
    let python = pythons::locate(label, &fuzz_dir().join("scratch"))
        .map_err(|e| format!("Python {label}: {e}"))?;
    let target = Target::try_start(&python, repo().join("fuzz/seed_target.py"), &[])?;
    target
        .wait_until_asleep(THREADS, SETTLE_TIMEOUT)
        .map_err(|e| format!("Python {label}: {e}"))?;
    let pid = target.pid();
    let process = ProcessInfo::open(pid).map_err(|e| format!("Python {label}: {e}"))?;
    let interp = locate_interpreter(&process, &LiveMemory::new(pid).with_proc_mem_fallback())
        .map_err(|e| format!("Python {label}: cannot locate the interpreter: {e}"))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    pysampler::process::capture::capture(pid, &interp, out)
        .map_err(|e| format!("Python {label}: capture failed: {e}"))?;
    drop(target);
    Ok(())
}

// ---- seeds ---------------------------------------------------------------------

/// The recording target's seeds: recordings of synthetic event streams.
fn recording_seeds() -> Result<(), String> {
    let dir = fuzz_dir().join("seed-corpus").join("recording");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, bytes) in pysampler_fuzz::recording::seeds() {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!("wrote the recording seeds into {}", dir.display());
    Ok(())
}

fn seeds(args: &[String]) -> Result<(), String> {
    let force = args.iter().any(|a| a == "--force");
    let wanted: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let mut failures = Vec::new();
    for label in SEEDS {
        if !wanted.is_empty() && !wanted.contains(label) {
            continue;
        }
        let path = seed_path(label);
        if path.exists() && !force {
            continue;
        }
        eprintln!("capturing Python {label} into {}", path.display());
        if let Err(e) = capture(label, &path) {
            eprintln!("  {e}");
            failures.push(label.to_string());
        }
    }
    let corpus = fuzz_dir().join("seed-corpus");
    for target in ["walker", "walker_layout", "linetable", "snapshot_file"] {
        let dir = corpus.join(target);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let write = |target: &str, name: &str, bytes: &[u8]| -> Result<(), String> {
        let path = corpus.join(target).join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut max_walker = 0;
    for (i, label) in SEEDS.iter().enumerate() {
        if !seed_path(label).exists() {
            continue;
        }
        let seed = Seed::load(label)?;
        let outcome =
            pysampler_fuzz::exercise(&seed.snap.interp, seed.snap.memory(), &seed.snap.tids);
        let summary = summarize(&outcome);
        eprintln!(
            "seed {label}: {:.1} MiB snapshot, {} hot bytes in {} ranges; {summary}",
            seed.snap.memory().stored_bytes() as f64 / (1 << 20) as f64,
            seed.hot.len(),
            seed.hot.range_count(),
        );
        if !matches!(&outcome.dump, Some(Ok(stacks)) if stacks.len() == THREADS) {
            return Err(format!(
                "seed {label}: the pristine walk does not find {THREADS} threads: {summary}"
            ));
        }
        // walker: the pristine hot bytes.
        let mut input = vec![i as u8];
        input.extend_from_slice(&seed.hot.pristine);
        max_walker = max_walker.max(input.len());
        write("walker", &format!("seed-{label}"), &input)?;
        // walker_layout: every published field set to its own value.
        if let Some(sel) = LAYOUT_SEEDS.iter().position(|s| *s as usize == i) {
            write(
                "walker_layout",
                &format!("seed-{label}"),
                &pysampler_fuzz::layout_seed_input(sel as u8, &seed),
            )?;
        }
        // snapshot_file: the pristine walk's bytes as a self-contained file.
        let rec = pysampler_fuzz::RecordingMemory::new(
            seed.snap.memory(),
            u64::MAX,
            Duration::from_secs(600),
        );
        let log = rec.log();
        pysampler_fuzz::exercise(&seed.snap.interp, rec, &seed.snap.tids);
        let reads = std::mem::take(&mut log.lock().unwrap().reads);
        let reduced = pysampler_fuzz::reduced_snapshot(
            &seed.snap,
            &seed.snap.interp,
            &seed.snap.memory(),
            &reads,
        );
        let bytes = reduced.to_bytes().map_err(|e| e.to_string())?;
        eprintln!("  reduced snapshot: {} bytes", bytes.len());
        write("snapshot_file", &format!("reduced-{label}.pysnap"), &bytes)?;
        // linetable: the tables of the code objects on the stacks.
        if let Some(Ok(stacks)) = &outcome.dump {
            let format = seed.snap.interp.families.line_table;
            for (n, frame) in stacks.iter().flat_map(|s| &s.frames).enumerate().take(16) {
                let mut input = vec![format_index(format)];
                input.extend_from_slice(&frame.code.first_line.to_le_bytes());
                input.extend_from_slice(&(frame.line.wrapping_mul(2)).to_le_bytes());
                input.extend_from_slice(&frame.code.line_table);
                write("linetable", &format!("stack-{label}-{n}"), &input)?;
            }
        }
    }
    linetable_fixtures(&write)?;
    synthetic_snapshots(&write)?;
    eprintln!(
        "seed corpora in {} (longest walker input: {max_walker} bytes)",
        corpus.display()
    );
    if !failures.is_empty() {
        return Err(format!("could not capture: {}", failures.join(", ")));
    }
    Ok(())
}

fn format_index(f: LineTableFormat) -> u8 {
    match f {
        LineTableFormat::Lnotab27 => 0,
        LineTableFormat::Lnotab36 => 1,
        LineTableFormat::Linetable310 => 2,
        LineTableFormat::Locations311 => 3,
    }
}

/// Every table of crates/pysampler-core/testdata/linetables/*.json (real tables from each CPython).
fn linetable_fixtures(
    write: &dyn Fn(&str, &str, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let dir = repo().join("crates/pysampler-core/testdata/linetables");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let codes = doc["code_objects"].as_array().cloned().unwrap_or_default();
        for (n, code) in codes.iter().enumerate() {
            let format = match code["format"].as_str() {
                Some("Lnotab27") => 0u8,
                Some("Lnotab36") => 1,
                Some("Linetable310") => 2,
                Some("Locations311") => 3,
                _ => continue,
            };
            let first: u32 = code["first_line"]
                .as_u64()
                .or_else(|| code["first_line"].as_str()?.parse().ok())
                .unwrap_or(1) as u32;
            let table = unhex(code["table"].as_str().unwrap_or(""));
            let offset = code["expected"]
                .as_array()
                .and_then(|e| e.get(e.len() / 2))
                .and_then(|p| p[0].as_u64())
                .unwrap_or(0) as u32;
            let mut input = vec![format];
            input.extend_from_slice(&first.to_le_bytes());
            input.extend_from_slice(&offset.to_le_bytes());
            input.extend_from_slice(&table);
            write("linetable", &format!("fixture-{stem}-{n}"), &input)?;
        }
    }
    Ok(())
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Small hand-made snapshot files: data and zero regions, adjacent regions,
/// an empty one, each with a 3.12 and a 2.7 interpreter.
fn synthetic_snapshots(
    write: &dyn Fn(&str, &str, &[u8]) -> Result<(), String>,
) -> Result<(), String> {
    let template = SEEDS
        .iter()
        .filter(|l| seed_path(l).exists())
        .find_map(|l| Snapshot::load(&seed_path(l)).ok());
    let Some(template) = template else {
        return Ok(());
    };
    let regions = vec![
        (0x1000u64, vec![1u8; 8]),
        (0x1008, vec![2u8; 8]),
        (0x4000, (0..=255u8).collect::<Vec<u8>>()),
    ];
    let memory = SnapshotMemory::from_regions(4242, regions).map_err(|e| e.to_string())?;
    let meta = Metadata {
        pid: 4242,
        tids: vec![4242, 4243],
        mappings: Vec::new(),
        ..template.metadata()
    };
    let snap = Snapshot::from_parts(meta, memory);
    write(
        "snapshot_file",
        "synthetic-small.pysnap",
        &snap.to_bytes().map_err(|e| e.to_string())?,
    )?;
    let empty = SnapshotMemory::from_regions(1, Vec::new()).map_err(|e| e.to_string())?;
    let snap = Snapshot::from_parts(
        Metadata {
            pid: 1,
            tids: vec![1],
            mappings: Vec::new(),
            ..template.metadata()
        },
        empty,
    );
    write(
        "snapshot_file",
        "synthetic-empty.pysnap",
        &snap.to_bytes().map_err(|e| e.to_string())?,
    )?;
    Ok(())
}

// ---- info, show, export --------------------------------------------------------------

fn info() -> Result<(), String> {
    println!("fuzz dir: {}", fuzz_dir().display());
    for (i, label) in SEEDS.iter().enumerate() {
        let path = seed_path(label);
        if !path.exists() {
            println!("{i} {label}: missing ({})", path.display());
            continue;
        }
        let t = Instant::now();
        let seed = Seed::load(label)?;
        let loaded = t.elapsed();
        let t = Instant::now();
        let outcome =
            pysampler_fuzz::exercise(&seed.snap.interp, seed.memory(&[]), &seed.snap.tids);
        println!(
            "{i} {label}: {} regions, {:.1} MiB stored; hot set {} bytes in {} ranges; load+hot {:?}, one run {:?}; {}",
            seed.snap.memory().region_count(),
            seed.snap.memory().stored_bytes() as f64 / (1 << 20) as f64,
            seed.hot.len(),
            seed.hot.range_count(),
            loaded,
            t.elapsed(),
            summarize(&outcome)
        );
    }
    Ok(())
}

fn summarize(o: &Outcome) -> String {
    let dump = match &o.dump {
        Some(Ok(stacks)) => {
            let frames: usize = stacks.iter().map(|s| s.frames.len()).sum();
            let locals: usize = stacks
                .iter()
                .flat_map(|s| &s.frames)
                .map(|f| f.locals.len())
                .sum();
            let named = stacks.iter().filter(|s| s.name.is_some()).count();
            format!(
                "{} threads ({named} named), {frames} frames, {locals} locals",
                stacks.len()
            )
        }
        Some(Err(e)) => format!("error: {e}"),
        None => "not run".into(),
    };
    let samples: Vec<String> = o
        .samples
        .iter()
        .map(|s| match s {
            Ok(n) => format!("{n} frames"),
            Err(e) => format!("error: {e}"),
        })
        .collect();
    format!("dump: {dump}; samples: {}", samples.join(", "))
}

fn show(target: &str, file: &Path) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let t = Instant::now();
    let outcome = match target {
        "walker" => pysampler_fuzz::run_walker_input(&data),
        "walker_layout" => pysampler_fuzz::layout_input(&data).map(|(seed, interp)| {
            pysampler_fuzz::exercise(&interp, seed.snap.memory(), &seed.snap.tids)
        }),
        "snapshot_file" => pysampler_fuzz::run_snapshot_file(&data),
        "recording" => {
            pysampler_fuzz::recording::run_recording(&data);
            println!("the recording input runs clean ({:?})", t.elapsed());
            return Ok(());
        }
        _ => return Err(format!("no `show` for target {target}")),
    };
    let elapsed = t.elapsed();
    match outcome {
        None => println!(
            "the input does not reach the walker (missing seed, or a file that does not load)"
        ),
        Some(o) => {
            println!("{} ({elapsed:?})", summarize(&o));
            if let Some(Ok(stacks)) = &o.dump {
                for s in stacks {
                    println!(
                        "thread {:#x} tid {:?} name {:?} gil {} truncated {} unreadable {}",
                        s.ident, s.native_id, s.name, s.owns_gil, s.truncated, s.unreadable_frames
                    );
                    for f in s.frames.iter().take(40) {
                        let locals: Vec<String> = f
                            .locals
                            .iter()
                            .map(|l| format!("{}={}", l.name, l.value))
                            .collect();
                        println!(
                            "    {} ({}:{}) {}",
                            f.code.name,
                            f.code.filename,
                            f.line,
                            locals.join(" ")
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// The walker input's setting: the seed, the interpreter (patched for
/// walker_layout) and the memory (patched for walker).
fn input_setting(
    target: &str,
    data: &[u8],
) -> Result<(&'static Seed, Interpreter, pysampler_fuzz::OverlayMemory), String> {
    match target {
        "walker" => {
            let (&sel, hot) = data.split_first().ok_or("empty input")?;
            let seed = pysampler_fuzz::seed(sel).ok_or("its seed snapshot is missing")?;
            Ok((seed, seed.snap.interp.clone(), seed.memory(hot)))
        }
        "walker_layout" => {
            let (seed, interp) =
                pysampler_fuzz::layout_input(data).ok_or("the input does not reach the walker")?;
            Ok((seed, interp, seed.memory(&[])))
        }
        _ => Err(format!("no `export` for target {target}")),
    }
}

/// Runs the input in a child process (`__record`) that logs every read to a
/// file as it happens, so that a run that aborts, is killed or runs out of
/// memory still leaves its reads; then writes the snapshot of those bytes.
fn export(target: &str, file: &Path, out: &Path) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (seed, interp, mem) = input_setting(target, &data)?;
    let log_path = out.with_extension("reads.tmp");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("__record")
        .arg(target)
        .arg(file)
        .arg(&log_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status.to_string();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break "killed after 60 s".to_string();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    let reads = pysampler_fuzz::read_log_file(&std::fs::read(&log_path).unwrap_or_default());
    let _ = std::fs::remove_file(&log_path);
    let snap = pysampler_fuzz::reduced_snapshot(&seed.snap, &interp, &mem, &reads);
    snap.save(out).map_err(|e| e.to_string())?;
    println!(
        "{}: {} regions, {} bytes, from {} reads; the run: {status}",
        out.display(),
        snap.memory().region_count(),
        std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        reads.len(),
    );
    if let Some(first) = stderr.lines().find(|l| !l.trim().is_empty()) {
        println!("    {first}");
    }
    Ok(())
}

/// The child of `export`: runs the input with a read budget (256 MiB, 20 s),
/// logging each read to LOG.
fn record(target: &str, file: &Path, log: &Path) -> Result<(), String> {
    let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (seed, interp, mem) = input_setting(target, &data)?;
    let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let rec = pysampler_fuzz::RecordingMemory::new(mem, 256 << 20, Duration::from_secs(20))
        .with_file(out);
    pysampler_fuzz::exercise(&interp, rec, &seed.snap.tids);
    Ok(())
}

fn label_index(label: &str) -> Result<usize, String> {
    SEEDS
        .iter()
        .position(|l| *l == label)
        .ok_or_else(|| format!("no seed {label} (seeds: {})", SEEDS.join(", ")))
}

fn threads(label: &str) -> Result<(), String> {
    let i = label_index(label)?;
    let seed = pysampler_fuzz::seed(i as u8).ok_or("seed snapshot missing")?;
    let mut reader = seed.snap.stack_reader();
    let tids = seed.snap.tids.clone();
    let entries = reader.threads(|| tids).map_err(|e| e.to_string())?;
    for e in &entries {
        let mut raw = Vec::new();
        let _ = reader.raw_frames(e, &mut raw);
        println!(
            "tstate {:#x} ident {:#x} tid {:?} name {:?} top_frame {:#x} datastack_chunk {:#x} frames {}",
            e.state.addr, e.state.ident, e.tid, e.name, e.state.top_frame, e.state.datastack_chunk, raw.len()
        );
        for r in raw.iter().take(8) {
            println!(
                "    frame {:#x} code {:#x} offset {} generator {}",
                r.addr, r.code, r.offset, r.is_generator
            );
        }
    }
    let l = &seed.snap.interp.layout;
    println!(
        "interp_head_ptr {:#x}; thread layout {:?}; frame layout {:?}",
        seed.snap.interp.interp_head_ptr, l.thread, l.frame
    );
    Ok(())
}

fn craft(label: &str, out: &Path, patches: &[String]) -> Result<(), String> {
    let i = label_index(label)?;
    let seed = pysampler_fuzz::seed(i as u8).ok_or("seed snapshot missing")?;
    let mut hot = seed.hot.pristine.clone();
    let mut offset = 0usize;
    let ranges: Vec<(u64, u64, usize)> = seed
        .hot
        .ranges()
        .map(|(s, e)| {
            let r = (s, e, offset);
            offset += (e - s) as usize;
            r
        })
        .collect();
    for p in patches {
        let (addr, hex) = p
            .split_once('=')
            .ok_or_else(|| format!("{p}: not ADDR=HEX"))?;
        let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16)
            .map_err(|e| format!("{p}: {e}"))?;
        let bytes = unhex(hex);
        for (k, b) in bytes.iter().enumerate() {
            let a = addr + k as u64;
            let (s, _, off) = ranges
                .iter()
                .find(|(s, e, _)| *s <= a && a < *e)
                .ok_or_else(|| format!("{a:#x} is not among the bytes the walk reads"))?;
            hot[off + (a - s) as usize] = *b;
        }
    }
    let mut input = vec![i as u8];
    input.extend_from_slice(&hot);
    std::fs::write(out, &input).map_err(|e| e.to_string())?;
    println!("{}: {} bytes", out.display(), input.len());
    Ok(())
}

/// THREADS thread states in one interpreter, each of whose current frame is
/// the top of the same DEPTH-frame chain; the frames' code objects are
/// unreadable. Uses the 3.12 seed's metadata (layout, type addresses).
fn synth_wide(out: &Path, threads: usize, depth: usize) -> Result<(), String> {
    let seed = pysampler_fuzz::seed(label_index("3.12")? as u8).ok_or("seed 3.12 missing")?;
    let mut interp = seed.snap.interp.clone();
    let l = interp.layout.clone();
    let missing = |field: &str| format!("the 3.12 seed's layout has no {field}");
    let cframe_current_frame = l
        .thread
        .cframe_current_frame
        .ok_or_else(|| missing("thread.cframe_current_frame"))?;
    let cframe_at = l.thread.cframe.ok_or_else(|| missing("thread.cframe"))?;
    let native_id_at = l
        .thread
        .native_thread_id
        .ok_or_else(|| missing("thread.native_thread_id"))?;
    let instr_ptr_at = l
        .frame
        .instr_ptr
        .ok_or_else(|| missing("frame.instr_ptr"))?;
    const HEAD: u64 = 0x10000;
    const INTERP: u64 = 0x20000;
    const CFRAME: u64 = 0x30000;
    const CODE: u64 = 0x40000; // not mapped
    const TSTATES: u64 = 0x100_0000;
    const TSTATE_SIZE: u64 = 256;
    const FRAMES: u64 = 0x1000_0000;
    const FRAME_SIZE: u64 = 80;
    let put = |buf: &mut Vec<u8>, at: u64, v: u64| {
        buf[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
    };
    let mut head = vec![0u8; 8];
    put(&mut head, 0, INTERP);
    let mut istate = vec![0u8; 4096];
    put(&mut istate, l.interpreter.tstate_head, TSTATES);
    let mut cframe = vec![0u8; 64];
    put(&mut cframe, cframe_current_frame, FRAMES);
    let mut tstates = vec![0u8; threads * TSTATE_SIZE as usize];
    for i in 0..threads as u64 {
        let base = i * TSTATE_SIZE;
        let next = if i + 1 < threads as u64 {
            TSTATES + (i + 1) * TSTATE_SIZE
        } else {
            0
        };
        put(&mut tstates, base + l.thread.next, next);
        put(&mut tstates, base + cframe_at, CFRAME);
        put(&mut tstates, base + l.thread.thread_id, 0x7000_0000 + i);
        put(&mut tstates, base + native_id_at, 1000 + i);
    }
    let mut frames = vec![0u8; depth * FRAME_SIZE as usize];
    for i in 0..depth as u64 {
        let base = i * FRAME_SIZE;
        let prev = if i + 1 < depth as u64 {
            FRAMES + (i + 1) * FRAME_SIZE
        } else {
            0
        };
        put(&mut frames, base + l.frame.previous, prev);
        put(&mut frames, base + l.frame.code, CODE);
        put(&mut frames, base + instr_ptr_at, CODE + 0x100);
    }
    interp.interp_head_ptr = HEAD;
    let memory = SnapshotMemory::from_regions(
        seed.snap.pid,
        vec![
            (HEAD, head),
            (INTERP, istate),
            (CFRAME, cframe),
            (TSTATES, tstates),
            (FRAMES, frames),
        ],
    )
    .map_err(|e| e.to_string())?;
    let meta = Metadata {
        interp,
        tids: (0..threads as i32).map(|i| 1000 + i).collect(),
        mappings: Vec::new(),
        ..seed.snap.metadata()
    };
    let snap = Snapshot::from_parts(meta, memory);
    snap.save(out).map_err(|e| e.to_string())?;
    println!(
        "{}: {} bytes",
        out.display(),
        std::fs::metadata(out).map(|m| m.len()).unwrap_or(0)
    );
    Ok(())
}

fn slots(label: &str) -> Result<(), String> {
    use pysampler::process::memory::MemorySource;
    use pysampler_core::walk::objects::ObjectReader;
    let seed = pysampler_fuzz::seed(label_index(label)? as u8).ok_or("seed snapshot missing")?;
    let mem = seed.snap.memory();
    let interp = &seed.snap.interp;
    let reader = ObjectReader::new(&mem, interp);
    let mut walker = seed.snap.stack_reader();
    let tids = seed.snap.tids.clone();
    let entries = walker.threads(|| tids).map_err(|e| e.to_string())?;
    let l = &interp.layout;
    let modern = interp.families.frames != pysampler_core::interpreter::FrameFamily::FrameObjects;
    for e in &entries {
        let mut raw = Vec::new();
        let _ = walker.raw_frames(e, &mut raw);
        let Some(top) = raw.first() else { continue };
        let (count_off, names_off) = if modern {
            (l.code.nlocalsplus, l.code.localsplusnames)
        } else {
            (Some(l.code.nlocals), l.code.varnames)
        };
        let (Some(count_off), Some(names_off)) = (count_off, names_off) else {
            return Err("the seed's layout has no locals fields".into());
        };
        let count = mem.read_u32(top.code + count_off).unwrap_or(0).min(64) as usize;
        let names = reader
            .ptr(top.code + names_off)
            .and_then(|t| reader.tuple_items(t, count))
            .unwrap_or_default();
        println!(
            "thread {:?}: frame {:#x} code {:#x}",
            e.name, top.addr, top.code
        );
        for i in 0..count {
            let slot = top.addr + l.frame.localsplus + 8 * i as u64;
            let obj = mem.read_u64(slot).unwrap_or(0) & interp.families.frames.tag_mask();
            let name = names
                .get(i)
                .and_then(|n| reader.text(*n).ok())
                .unwrap_or_default();
            let repr: String = reader.short_repr(obj, 40).chars().take(60).collect();
            println!("    slot {slot:#x} {name} = {obj:#x} {repr}");
        }
    }
    Ok(())
}

fn layout_craft(label: &str, out: &Path, settings: &[String]) -> Result<(), String> {
    let i = label_index(label)? as u8;
    let sel = LAYOUT_SEEDS
        .iter()
        .position(|s| *s == i)
        .ok_or_else(|| format!("{label} publishes no layout (3.13+ only)"))?;
    let seed = pysampler_fuzz::seed(i).ok_or("seed snapshot missing")?;
    let fields: Vec<&String> = seed.snap.interp.layout.debug_offsets.keys().collect();
    let mut input = vec![sel as u8];
    for setting in settings {
        let (name, value) = setting
            .split_once('=')
            .ok_or_else(|| format!("{setting}: not FIELD=VALUE"))?;
        let value = match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => value.parse(),
        }
        .map_err(|e| format!("{setting}: {e}"))?;
        let index = fields
            .iter()
            .position(|f| f.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "{name} is not published; fields: {}",
                    fields
                        .iter()
                        .map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            })?;
        input.push(index as u8);
        input.extend_from_slice(&value.to_le_bytes());
    }
    std::fs::write(out, &input).map_err(|e| e.to_string())?;
    println!("{}: {} bytes", out.display(), input.len());
    Ok(())
}
