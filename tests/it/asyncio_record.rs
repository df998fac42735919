//! `record --async` on tasks suspended in known proportions and one running
//! (fixtures/async_tasks.py): each tick counts every task once, under the
//! task that awaits it, so the collapsed stacks are exact multiples.

use crate::formats::parse_folded_line;
use crate::pythons;
use crate::target::{marker_line, Target, PYSAMPLER};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};

const SCRIPT: &str = "async_tasks.py";

/// Records `label`'s fixture for a second and checks every stack.
pub fn check(label: &str) {
    check_on(&pythons::find(label), &[]);
}

/// The same under uvloop's event loop, in the venv scripts/uvloop-venv.sh
/// builds (`make test-deps`).
pub fn check_uvloop() {
    let venv = std::env::var_os("PYSAMPLER_UVLOOP_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/pysampler/uvloop-venv")
        });
    let exe = venv.join("bin/python");
    assert!(
        exe.exists(),
        "{} has no python: run `bash scripts/uvloop-venv.sh` (make test-deps does)",
        venv.display()
    );
    let py = pythons::Python {
        label: "uvloop-3.12".into(),
        major: 3,
        minor: 12,
        exe,
        root: None,
    };
    check_on(&py, &["uvloop"]);
}

fn check_on(py: &pythons::Python, args: &[&str]) {
    let label = py.label.as_str();
    let target = Target::start(py, SCRIPT, args);
    let dir = pythons::scratch_dir().join("async_record").join(label);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("tasks.txt");
    let pid = target.pid().to_string();
    let run = Command::new(PYSAMPLER)
        .args(["record", "--async", "-d", "1", "-f", "raw", "-o"])
        .arg(&out)
        .args(["--pid", &pid])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let text = std::fs::read_to_string(&out).unwrap();
    // Stacks as (function, line or 0 for the stdlib's Event.wait) per frame.
    let mut stacks: BTreeMap<Vec<(String, u64)>, u64> = BTreeMap::new();
    for line in text.lines() {
        let (frames, count) = parse_folded_line(line);
        let frames = frames
            .iter()
            .map(|f| {
                let (function, place) = f.split_once(" (").unwrap();
                // busy's line is wherever its loop was paused.
                let ours = place.starts_with(&format!("{SCRIPT}:")) && function != "busy";
                let line = match ours {
                    true => place.rsplit_once(':').unwrap().1.trim_end_matches(')'),
                    false => "0",
                };
                (function.to_string(), line.parse().unwrap())
            })
            .collect();
        *stacks.entry(frames).or_default() += count;
    }
    let wait = if py.minor >= 11 { "Event.wait" } else { "wait" };
    let line = |m| marker_line(SCRIPT, m);
    let main = ("main".to_string(), line("LINE_MAIN"));
    let ticks = stacks.get(&vec![main.clone()]).copied().unwrap_or(0);
    assert!(
        ticks >= 10,
        "{label}: main counted {ticks} times:\n{text}\n{stderr}"
    );
    let mut expected = BTreeMap::new();
    expected.insert(vec![main.clone()], ticks);
    for (function, marker, tasks) in [
        ("alpha", "LINE_ALPHA", 1),
        ("beta", "LINE_BETA", 2),
        ("gamma", "LINE_GAMMA", 3),
    ] {
        let stack = vec![
            main.clone(),
            (function.to_string(), line(marker)),
            (wait.to_string(), 0),
        ];
        expected.insert(stack, tasks * ticks);
    }
    // The running task: its thread's stack down to its coroutine, in place
    // of the thread's own sample (no `<module>` stack is left).
    let spin = vec![
        main.clone(),
        ("spin".to_string(), line("LINE_SPIN")),
        ("busy".to_string(), 0),
    ];
    expected.insert(spin, ticks);
    assert_eq!(stacks, expected, "{label}:\n{text}");
}
