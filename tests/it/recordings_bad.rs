//! Bad input to `report` and `diff`: a file that is not a recording, an
//! empty one, one cut short or damaged, one from a newer pysampler, filters
//! that match nothing, two profiles with nothing in common. Each gives one
//! clear line (or a notice and what can be read), never a panic, and never
//! an output file, whole or partial, when it fails.

use crate::recordings::{ok, out_dir, run};
use pysampler::aggregate::{FrameInfo, FrameTable, ProcessSummary};
use pysampler::recording::writer::Writer;
use pysampler::recording::Header;
use pysampler::sampling::{Event, ThreadSample};
use std::path::Path;
use std::time::Duration;

/// A recording of `ticks` samples of one thread at 100 Hz, a chunk every
/// 100 ticks; complete unless `end` is false.
fn synthetic(path: &Path, ticks: u64, end: bool) {
    let mut frames = FrameTable::default();
    let main = frames.intern(FrameInfo {
        name: "main".into(),
        filename: "/app/main.py".into(),
        line: 9,
        column: 0,
        first_line: 8,
    });
    let spin = frames.intern(FrameInfo {
        name: "spin".into(),
        filename: "/app/main.py".into(),
        line: 4,
        column: 0,
        first_line: 3,
    });
    let header = Header {
        command: "python main.py".into(),
        rate_hz: 100.0,
        ..Header::default()
    };
    let mut w = Writer::new(Vec::new(), &header).unwrap();
    w.event(&Event::Started(ProcessSummary {
        pid: 7,
        command_line: "python main.py".into(),
        cwd: Some("/app".into()),
        python_version: "3.12.1".into(),
    }));
    for i in 0..ticks {
        w.event(&Event::Sample {
            pid: 7,
            at: Duration::from_millis(10 * i),
            late: false,
            threads: vec![ThreadSample {
                tid: Some(7),
                ident: 1,
                name: Some("MainThread".into()),
                active: true,
                owns_gil: true,
                frames: vec![spin, main],
                truncated: false,
            }],
        });
        if i % 100 == 99 {
            w.add_frames(&frames);
            w.chunk().unwrap();
        }
    }
    w.add_frames(&frames);
    let bytes = if end {
        w.finish(Duration::from_millis(10 * ticks)).unwrap()
    } else {
        w.chunk().unwrap();
        w.get_ref().clone()
    };
    std::fs::write(path, bytes).unwrap();
}

/// `args` fail with one line on stderr containing `expect`, and leave no
/// file in `dir` but `keep`.
fn fails(dir: &Path, args: &[&str], expect: &str, keep: &[&str]) {
    let out = run(args, &[]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} should fail: {err}");
    assert!(err.contains(expect), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    assert!(err.starts_with("pysampler: "), "{err}");
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    left.sort();
    assert!(left.is_empty(), "{args:?} left {left:?} behind");
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

#[test]
fn report_refuses_what_it_cannot_read() {
    let dir = out_dir("bad-report");
    let d = dir.as_path();
    std::fs::write(dir.join("text.pysampler"), "spin (main.py:4) 3\n").unwrap();
    std::fs::write(dir.join("empty.pysampler"), "").unwrap();
    synthetic(&dir.join("good.pysampler"), 250, true);
    let mut newer = std::fs::read(dir.join("good.pysampler")).unwrap();
    newer[8] = 3; // format 3.1
    newer[10] = 1;
    std::fs::write(dir.join("newer.pysampler"), &newer).unwrap();
    // Only the preamble and header survive: no chunk at all.
    let header_only = &newer[..newer.len().min(13 + newer[12] as usize + 8)];
    let mut cut = header_only.to_vec();
    cut[8] = 1;
    cut[10] = 0;
    std::fs::write(dir.join("cut.pysampler"), &cut).unwrap();
    let inputs = [
        "text.pysampler",
        "empty.pysampler",
        "good.pysampler",
        "newer.pysampler",
        "cut.pysampler",
    ];
    let out = p(d, "out.svg");
    fails(
        d,
        &["report", &p(d, "text.pysampler"), "-o", &out],
        "text.pysampler is not a pysampler recording",
        &inputs,
    );
    fails(
        d,
        &["report", &p(d, "empty.pysampler"), "-o", &out],
        "is empty (0 bytes)",
        &inputs,
    );
    fails(
        d,
        &["report", &p(d, "newer.pysampler"), "-o", &out],
        &format!(
            "was written by pysampler {} (recording format 3.1); this pysampler {} reads format 1.1 and older: update pysampler",
            env!("CARGO_PKG_VERSION"),
            env!("CARGO_PKG_VERSION")
        ),
        &inputs,
    );
    fails(
        d,
        &["report", &p(d, "cut.pysampler"), "-o", &out],
        "is cut short before its first chunk",
        &inputs,
    );
    fails(
        d,
        &["report", &p(d, "missing.pysampler")],
        "could not open",
        &inputs,
    );
    let good = p(d, "good.pysampler");
    fails(
        d,
        &["report", &good, "--thread", "nope", "-o", &out],
        "no samples of",
        &inputs,
    );
    let out_err = run(&["report", &good, "--thread", "nope", "-o", &out], &[]);
    let err = String::from_utf8_lossy(&out_err.stderr);
    assert!(
        err.contains("MainThread (7)") && err.contains("250 samples over 2.5 s"),
        "{err}"
    );
    fails(
        d,
        &["report", &good, "--pid", "8", "-o", &out],
        "match --pid 8",
        &inputs,
    );
    fails(
        d,
        &["report", &good, "--from", "60", "-o", &out],
        "match --from 60",
        &inputs,
    );
    fails(
        d,
        &["report", &good, "--from", "2", "--to", "1"],
        "is not before --to",
        &inputs,
    );
    let negative = run(&["report", &good, "--from=-1"], &[]);
    assert!(!negative.status.success());
    assert!(String::from_utf8_lossy(&negative.stderr).contains("out of range"));
    fails(
        d,
        &["report", &good, "-o", &good],
        "is the recording itself",
        &inputs,
    );
    fails(
        d,
        &["report", &good, "-o", &p(d, "no/such/dir.svg")],
        "does not exist",
        &inputs,
    );
    // What a good file gives: a table on stdout.
    let table = ok(&["report", &good], &[]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("100.0%  100.0%     2.50s     2.50s  spin (main.py:3)"),
        "{text}"
    );
}

#[test]
fn report_reads_a_cut_or_damaged_recording_up_to_the_damage() {
    let dir = out_dir("cut-report");
    let d = dir.as_path();
    // Killed before it could finish: whole chunks, no end.
    synthetic(&dir.join("unfinished.pysampler"), 250, false);
    let out = ok(
        &[
            "report",
            &p(d, "unfinished.pysampler"),
            "-o",
            &p(d, "u.txt"),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unfinished.pysampler was cut short after 2.5 s"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("u.txt")).unwrap(),
        "main (main.py:9);spin (main.py:4) 250\n"
    );
    // Cut in the middle of its last chunk: the chunks before it.
    synthetic(&dir.join("whole.pysampler"), 250, true);
    let whole = std::fs::read(dir.join("whole.pysampler")).unwrap();
    std::fs::write(dir.join("cut.pysampler"), &whole[..whole.len() - 10]).unwrap();
    let out = ok(
        &["report", &p(d, "cut.pysampler"), "-o", &p(d, "c.txt")],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cut.pysampler was cut short after 2.0 s"),
        "{err}"
    );
    assert!(err.contains("2 whole chunk(s) read"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("c.txt")).unwrap(),
        "main (main.py:9);spin (main.py:4) 200\n"
    );
    // A flipped bit in the second chunk: the first.
    let mut damaged = whole.clone();
    let chunks = chunk_offsets(&whole);
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    // The middle of the second chunk's stored bytes.
    damaged[(chunks[1] + 13 + chunks[2]) / 2] ^= 0x10;
    std::fs::write(dir.join("damaged.pysampler"), &damaged).unwrap();
    let out = ok(
        &["report", &p(d, "damaged.pysampler"), "-o", &p(d, "d.txt")],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is unreadable"), "{err}");
    let text = std::fs::read_to_string(dir.join("d.txt")).unwrap();
    let n: u64 = text.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(n, 100, "{text}");
}

/// Where each chunk of a recording starts (see src/recording/mod.rs).
fn chunk_offsets(bytes: &[u8]) -> Vec<usize> {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let header = 13 + bytes[12] as usize;
    let mut at = header + 8 + u32_at(header);
    let mut chunks = Vec::new();
    while at < bytes.len() {
        chunks.push(at);
        at += 13 + u32_at(at);
    }
    chunks
}

#[test]
fn diff_refuses_what_it_cannot_compare() {
    let dir = out_dir("bad-diff");
    let d = dir.as_path();
    synthetic(&dir.join("a.pysampler"), 100, true);
    std::fs::write(
        dir.join("other.txt"),
        "run (other.py:3);loop (other.py:7) 40\n",
    )
    .unwrap();
    std::fs::write(dir.join("junk.bin"), [0u8, 159, 146, 150, 1, 2]).unwrap();
    std::fs::write(dir.join("loose.txt"), "a;b 3\nno count here\n").unwrap();
    std::fs::write(dir.join("none.txt"), "# nothing\n").unwrap();
    let inputs = [
        "a.pysampler",
        "other.txt",
        "junk.bin",
        "loose.txt",
        "none.txt",
    ];
    let out = p(d, "d.svg");
    let a = p(d, "a.pysampler");
    fails(
        d,
        &["diff", &a, &p(d, "other.txt"), "-o", &out],
        "have no function in common",
        &inputs,
    );
    fails(
        d,
        &["diff", &a, &p(d, "junk.bin"), "-o", &out],
        "neither a pysampler recording nor collapsed stacks",
        &inputs,
    );
    fails(
        d,
        &["diff", &a, &p(d, "loose.txt"), "-o", &out],
        "line 2",
        &inputs,
    );
    fails(
        d,
        &["diff", &a, &p(d, "none.txt"), "-o", &out],
        "holds no samples to compare",
        &inputs,
    );
    fails(
        d,
        &["diff", &a, &a, "-f", "raw"],
        "give the output file with -o",
        &inputs,
    );
    // The same profile on both sides: nothing moved.
    let same = ok(&["diff", &a, &a], &[]);
    let text = String::from_utf8_lossy(&same.stdout);
    assert!(
        text.contains(" 100.0%  100.0%     +0.0  spin (main.py)"),
        "{text}"
    );
}
