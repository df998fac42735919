//! Recordings on real programs: `record` keeps one beside (or as) its
//! output and `report` renders the same bytes from it; `report`'s filters
//! select exactly the samples they name; a recording killed mid-run is read
//! up to its last chunk; `diff` of a 3:1 run against a 1:3 run shows both
//! functions moving by about 50 points. Bad input is in `recordings_bad`.

use crate::formats::{node, node_modules, parse_folded_line, svg_titles_and_texts};
use crate::pythons;
use crate::target::{python_command, Target, PYSAMPLER};
use pysampler::recording::replay::{self, Filters};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn out_dir(test: &str) -> PathBuf {
    let dir = pythons::scratch_dir().join("recordings").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs pysampler with `args` (and `-- command` when given); never a panic.
pub fn run(args: &[&str], command: &[String]) -> Output {
    let mut cmd = Command::new(PYSAMPLER);
    cmd.args(args);
    if !command.is_empty() {
        cmd.arg("--").args(command);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run pysampler");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    out
}

/// As `run`, and it must succeed.
pub fn ok(args: &[&str], command: &[String]) -> Output {
    let out = run(args, command);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A collapsed file as stack → samples, every line checked by the strict parser.
fn folded(path: &Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut stacks = BTreeMap::new();
    for line in text.lines() {
        let (frames, count) = parse_folded_line(line);
        *stacks.entry(frames.join(";")).or_insert(0) += count;
    }
    stacks
}

/// Record to every format from one sample stream (`--recording` keeps the
/// stream beside the output), then `report` the recording with the same
/// options: the same bytes, and each valid to its reader. The format of
/// `record` and `report` follows the output's extension here.
#[test]
fn report_renders_what_record_wrote() {
    let py = pythons::find("3.12");
    let dir = out_dir("same-stream");
    let modules = node_modules();
    let cases: [(&[&str], &str); 5] = [
        (&[], "p.txt"),
        (&["-t", "--nolineno"], "p.folded"),
        (&[], "p.svg"),
        (&["-F"], "p.json"),
        (&["-f", "chrometrace"], "p.trace.json"),
    ];
    for (options, file) in cases {
        let direct = dir.join(file);
        let recording = dir.join(format!("{file}.pysampler"));
        let mut args = vec![
            "record",
            "-r",
            "200",
            "-o",
            s(&direct),
            "--recording",
            s(&recording),
        ];
        args.extend_from_slice(options);
        ok(&args, &python_command(&py, "split.py", &["1.5", "0.75"]));
        let again = dir.join(format!("again-{file}"));
        let mut args = vec!["report", s(&recording), "-o", s(&again)];
        args.extend_from_slice(options);
        let out = ok(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("wrote {}", again.display())),
            "{stderr}"
        );
        let (a, b) = (
            std::fs::read(&direct).unwrap(),
            std::fs::read(&again).unwrap(),
        );
        assert!(
            a == b,
            "{file}: report differs from record (see {} and {})",
            direct.display(),
            again.display()
        );
        match file {
            "p.txt" | "p.folded" => {
                let stacks = folded(&again);
                assert!(stacks.keys().any(|k| k.contains("first (")), "{stacks:?}");
                if file == "p.folded" {
                    assert!(
                        stacks.keys().all(|k| k.starts_with("MainThread (")),
                        "-t: {stacks:?}"
                    );
                    assert!(
                        !stacks.keys().any(|k| k.contains(".py:")),
                        "--nolineno: {stacks:?}"
                    );
                }
            }
            "p.svg" => {
                let (titles, _) = svg_titles_and_texts(&String::from_utf8(b).unwrap());
                assert!(
                    titles
                        .keys()
                        .any(|t| t.starts_with("first (fixtures/split.py:")),
                    "{titles:?}"
                );
            }
            "p.json" => {
                node("validate_speedscope.cjs", &[&again], Some(&modules)).unwrap();
                let doc: serde_json::Value = serde_json::from_slice(&b).unwrap();
                let frames = doc["shared"]["frames"].as_array().unwrap();
                assert!(frames.iter().any(|f| f["name"] == "first"), "{doc}");
            }
            _ => {
                node("check_chrometrace.cjs", &[&again], None).unwrap();
                let doc: serde_json::Value = serde_json::from_slice(&b).unwrap();
                assert!(doc["traceEvents"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["name"] == "first"));
            }
        }
    }
}

/// An extension that names no format: a flame graph, and a notice saying so.
#[test]
fn an_unknown_extension_gets_a_flame_graph_and_a_notice() {
    let py = pythons::find("3.12");
    let dir = out_dir("unknown-extension");
    let path = dir.join("p.html");
    let out = ok(
        &["record", "-o", s(&path)],
        &python_command(&py, "exit_status.py", &["0"]),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("writing a flame graph (SVG) into"),
        "{stderr}"
    );
    let svg = std::fs::read_to_string(&path).unwrap();
    svg_titles_and_texts(&svg);
    assert!(svg.starts_with("<?xml"));
}

/// The whole recording's samples (idle included) and its length.
fn length_of(path: &Path) -> Duration {
    let all = Filters {
        idle: true,
        ..Filters::default()
    };
    let r = replay::load(path, &all, false).unwrap();
    assert!(r.complete && r.cut.is_none());
    r.length
}

/// `report -f raw -t` of `recording` with `filters`, into `name`.
fn report_raw(dir: &Path, recording: &Path, name: &str, filters: &[&str]) -> BTreeMap<String, u64> {
    let path = dir.join(name);
    let mut args = vec!["report", s(recording), "-t", "-f", "raw", "-o", s(&path)];
    args.extend_from_slice(filters);
    ok(&args, &[]);
    folded(&path)
}

/// `-s` with two worker processes and a named thread in the main one:
/// `--pid`, `--thread` (by name and by id) and `--from`/`--to` keep exactly
/// the stacks of the full report that they name.
#[test]
fn report_filters_select_exactly_the_samples_they_name() {
    let py = pythons::find("3.12");
    let dir = out_dir("filters");
    let recording = dir.join("all.pysampler");
    ok(
        &["record", "-s", "-r", "200", "-o", s(&recording)],
        &python_command(&py, "split.py", &["2.5", "0.75", "2"]),
    );
    let full = report_raw(&dir, &recording, "full.txt", &[]);
    let total: u64 = full.values().sum();
    // Roots: "process PID: command" then the thread.
    let root = |stack: &str| stack.split(';').next().unwrap().to_string();
    let mut pids: Vec<String> = full
        .keys()
        .map(|k| {
            root(k)
                .trim_start_matches("process ")
                .split(':')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "the main process and two workers: {pids:?}");
    let select = |keep: &dyn Fn(&str) -> bool| -> BTreeMap<String, u64> {
        full.iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    for pid in &pids {
        let got = report_raw(&dir, &recording, &format!("pid-{pid}.txt"), &["--pid", pid]);
        let prefix = format!("process {pid}:");
        assert_eq!(got, select(&|k| k.starts_with(&prefix)), "--pid {pid}");
        assert!(!got.is_empty());
    }
    let thread = |k: &str| k.split(';').nth(1).unwrap().to_string();
    let splitter = select(&|k| thread(k).starts_with("splitter ("));
    assert!(!splitter.is_empty(), "{full:?}");
    let got = report_raw(&dir, &recording, "splitter.txt", &["--thread", "splitter"]);
    assert_eq!(got, splitter);
    let label = thread(splitter.keys().next().unwrap());
    let tid = label.trim_start_matches("splitter (").trim_end_matches(')');
    let got = report_raw(&dir, &recording, "splitter-tid.txt", &["--thread", tid]);
    assert_eq!(got, splitter, "--thread {tid}");
    assert!(splitter.keys().any(|k| k.contains("first (")));

    // Three windows: together exactly the whole, each one not empty.
    let length = length_of(&recording).as_secs_f64();
    let (a, b) = (
        format!("{:.3}", length / 3.0),
        format!("{:.3}", 2.0 * length / 3.0),
    );
    let windows = [
        report_raw(&dir, &recording, "w1.txt", &["--to", &a]),
        report_raw(&dir, &recording, "w2.txt", &["--from", &a, "--to", &b]),
        report_raw(&dir, &recording, "w3.txt", &["--from", &b]),
    ];
    let mut sum: BTreeMap<String, u64> = BTreeMap::new();
    for w in &windows {
        assert!(w.values().sum::<u64>() > 0, "an empty window: {windows:?}");
        for (k, v) in w {
            *sum.entry(k.clone()).or_insert(0) += v;
        }
    }
    assert_eq!(sum, full, "the windows partition the samples");
    assert_eq!(sum.values().sum::<u64>(), total);
    // And the middle window's samples all lie inside it (the trace's times
    // are the samples' times; a run ends at most one interval after its last).
    let trace = dir.join("w2.json");
    ok(
        &[
            "report",
            s(&recording),
            "--from",
            &a,
            "--to",
            &b,
            "-f",
            "chrometrace",
            "-o",
            s(&trace),
        ],
        &[],
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let (from_us, to_us) = (
        a.parse::<f64>().unwrap() * 1e6,
        b.parse::<f64>().unwrap() * 1e6,
    );
    let mut events = 0;
    for e in doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
    {
        let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        assert!(
            ts >= from_us - 1.0 && ts + dur <= to_us + 5_000.0 + 1.0,
            "{e} outside {a}..{b} s"
        );
        events += 1;
    }
    assert!(events > 0);
}

/// A recorder killed with SIGKILL: its recording reads up to the last chunk
/// written, at least the samples seen in the file before the kill, and the
/// report says it was cut short.
#[test]
fn a_recording_killed_mid_run_is_reported_up_to_its_last_chunk() {
    let py = pythons::find("3.9");
    let dir = out_dir("killed");
    let target = Target::start(&py, "split.py", &["120", "0.75"]);
    let recording = dir.join("k.pysampler");
    let pid = target.pid().to_string();
    let mut rec = Command::new(PYSAMPLER)
        .args(["record", "--pid", &pid, "-r", "200", "-o", s(&recording)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(rec.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("pysampler: recording process"), "{line}");
    // Until the file holds two chunks' worth of samples (chunks come about
    // once a second): what the file shows is what must survive the kill.
    let all = Filters {
        idle: true,
        ..Filters::default()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let seen = loop {
        let bytes = std::fs::read(&recording).unwrap_or_default();
        if let Ok(r) = replay::replay(bytes.as_slice(), &all, false) {
            if r.tally.ticks >= 250 {
                break r.tally.thread_samples;
            }
        }
        assert!(Instant::now() < deadline, "the recording never grew");
        std::thread::sleep(Duration::from_millis(50));
    };
    rec.kill().unwrap();
    rec.wait().unwrap();
    let txt = dir.join("k.txt");
    let out = ok(&["report", s(&recording), "-o", s(&txt)], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("k.pysampler was cut short after"),
        "{stderr}"
    );
    let stacks = folded(&txt);
    let samples: u64 = stacks.values().sum();
    assert!(
        samples >= seen,
        "{samples} samples after the kill, {seen} seen before"
    );
    assert!(stacks.keys().any(|k| k.contains("first (")), "{stacks:?}");
    drop(target);
}

/// "Before% After% Change Function" rows of `diff`'s table, by function name.
fn diff_rows(stdout: &str) -> BTreeMap<String, (f64, f64, f64)> {
    let mut rows = BTreeMap::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 || !fields[0].ends_with('%') || !fields[1].ends_with('%') {
            continue;
        }
        let num = |f: &str| f.trim_end_matches('%').parse::<f64>().unwrap();
        rows.insert(
            fields[3..].join(" "),
            (num(fields[0]), num(fields[1]), num(fields[2])),
        );
    }
    rows
}

/// The delta of the frame titled `name (…)` in a differential flame graph:
/// "first (split.py) (120 samples, 30.00%; -45.10%)" → -45.1.
fn svg_delta(svg: &str, name: &str) -> f64 {
    let (titles, _) = svg_titles_and_texts(svg);
    let title = titles
        .keys()
        .find(|t| t.starts_with(&format!("{name} (")))
        .unwrap_or_else(|| panic!("no {name} frame: {titles:?}"));
    let delta = title.rsplit("; ").next().unwrap().trim_end_matches("%)");
    delta
        .parse()
        .unwrap_or_else(|_| panic!("no delta in {title:?}"))
}

/// Two live runs whose split moves from 3:1 to 1:3: the table shows
/// `first` down and `second` up by about 50 points, and so do the flame
/// graph's frames, read back by an XML parser.
#[test]
fn diff_of_two_runs_shows_the_split_moving() {
    let py = pythons::find("3.12");
    let dir = out_dir("diff");
    let (before, after) = (dir.join("before.pysampler"), dir.join("after.pysampler"));
    for (path, share) in [(&before, "0.75"), (&after, "0.25")] {
        ok(
            &["record", "-r", "400", "-o", s(path)],
            &python_command(&py, "split.py", &["3", share]),
        );
    }
    let svg = dir.join("diff.svg");
    let out = ok(&["diff", s(&before), s(&after), "-o", s(&svg)], &[]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        table.contains("before: ") && table.contains(" samples ("),
        "{table}"
    );
    let rows = diff_rows(&table);
    let row = |name: &str| {
        *rows
            .iter()
            .find(|(k, _)| k.starts_with(&format!("{name} (")))
            .unwrap_or_else(|| panic!("no {name} row: {table}"))
            .1
    };
    let (first, second) = (row("first"), row("second"));
    // The diff's own arithmetic: the change is after − before, in the
    // table and in the flame graph's tooltips.
    for (name, (was, is, change)) in [("first", first), ("second", second)] {
        assert!((change - (is - was)).abs() < 0.15, "{name}: {table}");
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        (svg_delta(&text, "first") - first.2).abs() < 0.15,
        "{table}"
    );
    assert!(
        (svg_delta(&text, "second") - second.2).abs() < 0.15,
        "{table}"
    );
    // The split moved from 3:1 to 1:3. Shares are judged within the work
    // (the interpreter's start, slow on a loaded machine, dilutes both);
    // ~1,000 samples a side make the standard error under 2 points.
    let within = |a: f64, b: f64| a / (a + b);
    assert!((within(first.0, second.0) - 0.75).abs() < 0.12, "{table}");
    assert!((within(first.1, second.1) - 0.25).abs() < 0.12, "{table}");
    assert!(first.2 < -25.0 && second.2 > 25.0, "{table}");

    // The view from before: widths from before, the same signs.
    let negated = dir.join("negated.svg");
    ok(
        &["diff", s(&before), s(&after), "--negate", "-o", s(&negated)],
        &[],
    );
    let text = std::fs::read_to_string(&negated).unwrap();
    assert!(
        (svg_delta(&text, "first") - first.2).abs() < 0.15,
        "{table}"
    );

    // Three-column stacks, and a collapsed file compares with a recording.
    let raw = dir.join("diff.txt");
    ok(&["diff", s(&before), s(&after), "-o", s(&raw)], &[]);
    let (mut was, mut is) = (0u64, 0u64);
    for line in std::fs::read_to_string(&raw).unwrap().lines() {
        let mut fields = line.rsplitn(3, ' ');
        let (second, first, stack) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        let (second, first): (u64, u64) = (second.parse().unwrap(), first.parse().unwrap());
        if stack.ends_with(";first (fixtures/split.py)") {
            was += first;
            is += second;
        }
    }
    assert!(was > 2 * is, "first: {was} before (scaled), {is} after");
    let after_txt = dir.join("after.txt");
    ok(&["report", s(&after), "-o", s(&after_txt)], &[]);
    let out = ok(&["diff", s(&before), s(&after_txt)], &[]);
    let rows = diff_rows(&String::from_utf8_lossy(&out.stdout));
    assert!(
        rows.iter()
            .any(|(k, v)| k.starts_with("first (") && (v.2 + 50.0).abs() < 10.0),
        "{rows:?}"
    );
}
