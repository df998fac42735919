//! The four `record` output formats, rendered from a fixed profile: compared
//! with golden files (`PYSAMPLER_BLESS=1` rewrites them) and checked by the
//! tools that read them: inferno and a strict parser (raw), an XML parser
//! (flamegraph), speedscope's own JSON schema with ajv (speedscope) and a
//! trace event validator (chrometrace). The node tools are installed by the
//! test into ~/.cache/pysampler/node (or $PYSAMPLER_CACHE/node) when absent.

use pysampler::aggregate::{FrameInfo, ProcessSummary, Profile, ThreadInfo};
use pysampler::output::collapsed;
use pysampler::output::render::{collapsed_stacks, RenderOptions};
use pysampler::output::{write, Format};
use quick_xml::events::Event;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const FORMATS: [Format; 4] = [
    Format::Raw,
    Format::Flamegraph,
    Format::Speedscope,
    Format::Chrometrace,
];

/// Two processes, four threads, 100 Hz, with a gap, a `;` in a thread name,
/// a nameless thread ("thread 4301") and a thread without an OS id. Made up:
/// the versions are data for the writers, not interpreters of this machine.
fn profile(keep_timeline: bool) -> Profile {
    let mut p = Profile::new(keep_timeline);
    p.info.command = "python3 busy.py --n 10".into();
    p.info.rate_hz = 100.0;
    p.info.start_unix = 1_700_000_000.0;
    p.info.duration = Duration::from_millis(200);
    p.processes.push(ProcessSummary {
        pid: 4242,
        command_line: "python3 busy.py --n 10".into(),
        cwd: Some("/home/u/proj".into()),
        python_version: "3.12.1".into(),
    });
    p.processes.push(ProcessSummary {
        pid: 4300,
        command_line: "python2 -c 'import a; a.run()'".into(),
        cwd: None,
        python_version: "2.7.18".into(),
    });
    let mut frame = |name: &str, file: &str, line, first_line| {
        p.frames.intern(FrameInfo {
            name: name.into(),
            filename: file.into(),
            line,
            column: 0,
            first_line,
        })
    };
    let module = frame("<module>", "/home/u/proj/busy.py", 12, 1);
    let main = frame("main", "/home/u/proj/busy.py", 9, 8);
    let spin6 = frame("spin", "/home/u/proj/busy.py", 6, 4);
    let spin5 = frame("spin", "/home/u/proj/busy.py", 5, 4);
    let wait = frame("wait", "/usr/lib/python3.12/threading.py", 331, 300);
    let boot = frame("_bootstrap", "/usr/lib/python3.12/threading.py", 1030, 1010);
    let get = frame(
        "get",
        "/venv/lib/python3.12/site-packages/requests/api.py",
        73,
        62,
    );
    let a_mod = frame("<module>", "<string>", 1, 1);
    let run = frame("run", "/tmp/a.py", 3, 1);

    let thread = |pid, tid, ident, name: Option<&str>| ThreadInfo {
        pid,
        tid,
        ident,
        name: name.map(Into::into),
    };
    let main_t = p.thread_index(&thread(4242, Some(4242), 0x7f01, Some("MainThread")));
    let fetch_t = p.thread_index(&thread(4242, Some(4250), 0x7f02, Some("Thread-1 (fetch)")));
    let odd_t = p.thread_index(&thread(4242, None, 0x7f03, Some("worker;2")));
    let other_t = p.thread_index(&thread(4300, Some(4301), 0x7f04, None));

    let interval = Duration::from_millis(10);
    let at = |i: u64| Duration::from_millis(10 * i);
    // (thread, first sample index, repeats, stack innermost first)
    let plan: Vec<(u32, u64, u64, Vec<u32>)> = vec![
        (main_t, 0, 5, vec![spin6, main, module]),
        (main_t, 5, 2, vec![spin5, main, module]),
        (main_t, 7, 3, vec![spin6, main, module]),
        // not seen for 5 intervals, then waiting
        (main_t, 15, 4, vec![wait, main, module]),
        (fetch_t, 0, 6, vec![get, boot]),
        (fetch_t, 6, 2, vec![wait, boot]),
        (odd_t, 2, 3, vec![spin6, boot]),
        (other_t, 0, 4, vec![run, a_mod]),
    ];
    for (t, start, n, stack) in plan {
        for i in start..start + n {
            p.add(t, &stack, at(i), interval);
        }
    }
    p.info.samples = p.total_samples();
    p
}

/// Named option sets used for golden files and checks.
fn option_sets() -> Vec<(&'static str, RenderOptions)> {
    vec![
        ("default", RenderOptions::default()),
        (
            "function",
            RenderOptions {
                function: true,
                ..Default::default()
            },
        ),
        (
            "nolineno",
            RenderOptions {
                nolineno: true,
                ..Default::default()
            },
        ),
        (
            "threads-processes-full",
            RenderOptions {
                threads: true,
                processes: true,
                full_filenames: true,
                ..Default::default()
            },
        ),
    ]
}

fn render(format: Format, p: &Profile, opts: &RenderOptions) -> String {
    let mut out = Vec::new();
    write(format, p, opts, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Comparable text: the version and inferno's bundled script are left out,
/// and SVG elements go one per line so differences read well.
fn normalise(format: Format, text: &str) -> String {
    let text = text.replace(
        &format!("pysampler {}", env!("CARGO_PKG_VERSION")),
        "pysampler VERSION",
    );
    if format != Format::Flamegraph {
        return text;
    }
    let open = "<script type=\"text/ecmascript\">";
    let (head, rest) = text.split_once(open).expect("svg has a script");
    let (_, tail) = rest.split_once("</script>").expect("script ends");
    format!("{head}{open}[inferno's script]</script>{tail}").replace("><", ">\n<")
}

#[test]
fn golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("PYSAMPLER_BLESS").is_some_and(|v| v == "1");
    let p = profile(true);
    let mut stale = Vec::new();
    for (name, opts) in option_sets() {
        for format in FORMATS {
            let file =
                dir.join(format!("{name}.{:?}.{}", format, format.extension()).to_lowercase());
            let got = normalise(format, &render(format, &p, &opts));
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&file, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&file).unwrap_or_default();
            if got != want {
                let actual = Path::new(env!("CARGO_TARGET_TMPDIR")).join(file.file_name().unwrap());
                std::fs::write(&actual, &got).unwrap();
                stale.push(format!("{} (see {})", file.display(), actual.display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "output differs from golden files (PYSAMPLER_BLESS=1 rewrites them):\n{}",
        stale.join("\n")
    );
}

/// "a;b;c 42" → (["a", "b", "c"], 42), refusing anything loose.
pub fn parse_folded_line(line: &str) -> (Vec<&str>, u64) {
    let (stack, count) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("no count: {line:?}"));
    assert!(
        !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()),
        "count: {line:?}"
    );
    let frames: Vec<&str> = stack.split(';').collect();
    for f in &frames {
        assert!(!f.is_empty() && f.trim() == *f, "frame {f:?} in {line:?}");
        assert!(!f.chars().any(char::is_control), "control char in {line:?}");
        let last_word = f.rsplit(' ').next().unwrap();
        assert!(
            !last_word.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
            "frame ends in a number: {line:?}"
        );
    }
    assert!(!line.starts_with("# "), "reads as a comment: {line:?}");
    (frames, count.parse().unwrap())
}

#[test]
fn raw_is_read_by_a_strict_parser_and_by_inferno() {
    let p = profile(true);
    for (name, opts) in option_sets() {
        let text = render(Format::Raw, &p, &opts);
        let lines: Vec<&str> = text.lines().collect();
        let parsed: Vec<_> = lines.iter().map(|l| parse_folded_line(l)).collect();
        let total: u64 = parsed.iter().map(|(_, n)| n).sum();
        assert_eq!(total, p.total_samples(), "{name}");
        assert_eq!(
            parsed.len(),
            collapsed_stacks(&p, &opts).len(),
            "{name}: one line per stack"
        );

        let mut svg = Vec::new();
        let mut options = inferno::flamegraph::Options::default();
        inferno::flamegraph::from_lines(&mut options, lines.iter().copied(), &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(
            svg.contains(&format!("total_samples=\"{total}\"")),
            "{name}: inferno's total"
        );
    }
    let labels = render(Format::Raw, &p, &option_sets()[3].1);
    assert!(labels.contains("worker,2 (0x7f03)"), "';' replaced");
    assert!(
        labels.contains("thread\u{a0}4301;"),
        "number-ending label escaped"
    );
}

/// "label (N samples, P%)" for every node of the merged stack tree.
fn expected_titles(p: &Profile, opts: &RenderOptions) -> BTreeMap<String, usize> {
    let total = p.total_samples();
    let mut nodes: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for (labels, count) in collapsed_stacks(p, opts) {
        let labels: Vec<String> = labels.iter().map(|l| collapsed::escape_label(l)).collect();
        for depth in 1..=labels.len() {
            *nodes.entry(labels[..depth].to_vec()).or_insert(0) += count;
        }
    }
    let mut titles = BTreeMap::new();
    *titles
        .entry(format!("all ({total} samples, 100%)"))
        .or_insert(0) += 1;
    for (path, n) in nodes {
        let pct = 100.0 * n as f64 / total as f64;
        *titles
            .entry(format!("{} ({n} samples, {pct:.2}%)", path.last().unwrap()))
            .or_insert(0) += 1;
    }
    titles
}

/// The texts of <title> elements of the frame <g>s, and the SVG's texts.
pub fn svg_titles_and_texts(svg: &str) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut reader = quick_xml::Reader::from_str(svg);
    let (mut path, mut titles, mut texts) = (Vec::<String>::new(), BTreeMap::new(), Vec::new());
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => path.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap()),
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t.unescape().unwrap().to_string();
                let n = path.len();
                if n >= 2 && path[n - 1] == "title" && path[n - 2] == "g" {
                    *titles.entry(text.clone()).or_insert(0) += 1;
                }
                texts.push(text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(path.is_empty(), "unclosed elements: {path:?}");
    (titles, texts)
}

#[test]
fn flamegraph_is_xml_with_one_g_per_frame() {
    let p = profile(true);
    for (name, opts) in option_sets() {
        let svg = render(Format::Flamegraph, &p, &opts);
        let (titles, texts) = svg_titles_and_texts(&svg);
        assert_eq!(titles, expected_titles(&p, &opts), "{name}");
        assert!(
            texts
                .iter()
                .any(|t| t == "pysampler: python3 busy.py --n 10"),
            "{name}: title"
        );
        assert!(
            texts
                .iter()
                .any(|t| t == "29 samples at 100 Hz over 200 ms"),
            "{name}: subtitle"
        );
        assert!(
            svg.contains("<script") && svg.contains("function search("),
            "{name}: interactive"
        );
    }
    let spin = "spin (busy.py:6) (8 samples, 27.59%)";
    assert!(
        svg_titles_and_texts(&render(Format::Flamegraph, &p, &RenderOptions::default()))
            .0
            .contains_key(spin)
    );

    let mut empty = Profile::new(false);
    empty.info.command = "python3 -c 'pass' <&>".into();
    let (_, texts) = svg_titles_and_texts(&render(
        Format::Flamegraph,
        &empty,
        &RenderOptions::default(),
    ));
    assert!(
        texts.iter().any(|t| t.starts_with("No samples")),
        "{texts:?}"
    );
    assert!(texts
        .iter()
        .any(|t| t == "pysampler: python3 -c 'pass' <&>"));
}

/// node_modules with ajv and speedscope, as `make node-modules`
/// (scripts/node-modules.sh, every package pinned by a lockfile) installs
/// them: the test run itself downloads nothing.
pub fn node_modules() -> PathBuf {
    let cache = crate::pythons::cache_dir();
    let modules = cache.join("node/node_modules");
    assert!(
        modules.join("ajv/package.json").exists()
            && modules
                .join("speedscope/dist/release/file-format-schema.json")
                .exists(),
        "ajv and speedscope are missing from {}: run `make node-modules` (make test does)",
        modules.display()
    );
    modules
}

/// Runs tests/formats/<script> on `files`; Ok(stdout) or Err(stdout + stderr).
pub fn node<P: AsRef<std::ffi::OsStr>>(
    script: &str,
    files: &[P],
    node_path: Option<&Path>,
) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/formats")
        .join(script);
    let mut cmd = Command::new("node");
    cmd.arg(script).args(files);
    if let Some(m) = node_path {
        cmd.env("NODE_PATH", m);
    }
    let out = cmd.output().expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Every option set in `format`, written to files in `dir`.
fn rendered_files(format: Format, profiles: &[(&str, Profile)], dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (pname, p) in profiles {
        for (name, opts) in option_sets() {
            let file = dir.join(format!("{pname}-{name}.json"));
            std::fs::write(&file, render(format, p, &opts)).unwrap();
            files.push(file);
        }
    }
    files
}

#[test]
fn speedscope_matches_the_official_schema() {
    let modules = node_modules();
    let dir = tempfile::tempdir().unwrap();
    let profiles = [
        ("timeline", profile(true)),
        ("counts", profile(false)),
        ("empty", Profile::new(true)),
    ];
    let files = rendered_files(Format::Speedscope, &profiles, dir.path());
    let report =
        node("validate_speedscope.cjs", &files, Some(&modules)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.matches("ok ").count(), files.len(), "{report}");

    // The validator does refuse bad files.
    let bad = dir.path().join("bad.json");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(
        &bad,
        text.replace("\"type\":\"sampled\"", "\"type\":\"sample\""),
    )
    .unwrap();
    assert!(node("validate_speedscope.cjs", &[&bad], Some(&modules)).is_err());
    std::fs::write(&bad, text.replace("\"weights\":[", "\"weights\":[1,")).unwrap();
    assert!(node("validate_speedscope.cjs", &[&bad], Some(&modules)).is_err());
}

#[test]
fn chrometrace_passes_the_trace_event_validator() {
    let dir = tempfile::tempdir().unwrap();
    let files = rendered_files(
        Format::Chrometrace,
        &[("timeline", profile(true))],
        dir.path(),
    );
    let report = node("check_chrometrace.cjs", &files, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.matches("ok ").count(), files.len(), "{report}");

    // The validator does refuse partial overlap and a missing thread name.
    let bad = dir.path().join("bad.json");
    let overlap = r#"{"traceEvents":[
        {"ph":"M","name":"process_name","pid":1,"tid":0,"args":{"name":"p"}},
        {"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":"t"}},
        {"ph":"X","name":"a","ts":0,"dur":10,"pid":1,"tid":1},
        {"ph":"X","name":"b","ts":5,"dur":10,"pid":1,"tid":1}]}"#;
    std::fs::write(&bad, overlap).unwrap();
    assert!(node("check_chrometrace.cjs", &[&bad], None).is_err());
    std::fs::write(
        &bad,
        overlap.replace("\"thread_name\"", "\"thread_sort_index\""),
    )
    .unwrap();
    assert!(node("check_chrometrace.cjs", &[&bad], None).is_err());
}

/// The speedscope profile of each thread is named as py-spy names it, so
/// scripts written for py-spy's files find their threads.
#[test]
fn speedscope_profiles_are_named_as_py_spy_names_them() {
    let names = |p: &Profile| -> Vec<String> {
        let doc: serde_json::Value =
            serde_json::from_str(&render(Format::Speedscope, p, &RenderOptions::default()))
                .unwrap();
        doc["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    // Two processes: each name starts with its process.
    assert_eq!(
        names(&profile(true)),
        [
            "Process 4242 Thread 4242 \"MainThread\"",
            "Process 4242 Thread 4250 \"Thread-1 (fetch)\"",
            // No OS thread id: Python's ident, in hex.
            "Process 4242 Thread 0x7f03 \"worker;2\"",
            // No name: no quotes.
            "Process 4300 Thread 4301",
        ]
    );
    // One process: the thread alone.
    let mut one = Profile::new(true);
    one.info.rate_hz = 100.0;
    one.processes.push(ProcessSummary {
        pid: 10,
        command_line: "python3 x.py".into(),
        cwd: None,
        python_version: "3.12.1".into(),
    });
    let frame = one.frames.intern(FrameInfo {
        name: "f".into(),
        filename: "/x.py".into(),
        line: 1,
        column: 0,
        first_line: 1,
    });
    for (tid, name) in [(10, Some("MainThread")), (11, None)] {
        let t = one.thread_index(&ThreadInfo {
            pid: 10,
            tid: Some(tid),
            ident: tid as u64,
            name: name.map(Into::into),
        });
        one.add(t, &[frame], Duration::ZERO, Duration::from_millis(10));
    }
    assert_eq!(names(&one), ["Thread 10 \"MainThread\"", "Thread 11"]);
}
