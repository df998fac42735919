//! Unusual names: huge, non-ASCII, odd characters, in functions, files and
//! threads.

use super::harness::*;
use super::judge::*;
use super::procfs::*;
use super::spawn::*;
use crate::pythons;
use crate::target::Target;
use serde_json::Value;
use std::time::Duration;

/// Longest string pysampler reads (src/walk/objects.rs MAX_STRING_CHARS).
const MAX_STRING_CHARS: usize = 4096;

/// `shown` is `real`, or `real` cut to the documented limit (an ellipsis
/// marking the cut is allowed).
fn cut_ok(shown: &str, real: &str) -> bool {
    let real_len = real.chars().count();
    if real_len <= MAX_STRING_CHARS {
        return shown == real;
    }
    let kept = shown.trim_end_matches(['…', '.']);
    let kept_len = kept.chars().count();
    real.starts_with(kept)
        && kept_len >= MAX_STRING_CHARS - 100
        && shown.chars().count() <= MAX_STRING_CHARS + 3
}

fn short(s: &str) -> String {
    let n = s.chars().count();
    if n <= 60 {
        s.to_string()
    } else {
        format!("{}…({n} chars)", s.chars().take(40).collect::<String>())
    }
}

fn check_names(doc: &Value, expect: &serde_json::Map<String, Value>) -> Result<(), String> {
    for (thread, want) in expect {
        let t = doc["threads"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["name"] == thread.as_str()))
            .ok_or_else(|| format!("no thread {thread:?}"))?;
        let f = &t["frames"][0];
        let (function, file, line) = (
            f["function"].as_str().unwrap_or(""),
            f["filename"].as_str().unwrap_or(""),
            f["line"].as_u64().unwrap_or(0),
        );
        let (wf, wfile, wline) = (
            want["function"].as_str().unwrap(),
            want["filename"].as_str().unwrap(),
            want["line"].as_u64().unwrap(),
        );
        if !cut_ok(function, wf) {
            return Err(format!(
                "{thread}: function {} instead of {}",
                short(function),
                short(wf)
            ));
        }
        if !cut_ok(file, wfile) {
            return Err(format!(
                "{thread}: file {} instead of {}",
                short(file),
                short(wfile)
            ));
        }
        if line != wline {
            return Err(format!("{thread}: line {line} instead of {wline}"));
        }
    }
    Ok(())
}

fn unusual_names(label: &str) {
    let (mut tally, _) = Tally::new("unusual_names");
    let py = pythons::find(label);
    let target = Target::start(&py, "faults_names.py", &[]);
    let pid = target.pid();
    let expect_line = target_line(&target, "EXPECT ", Duration::from_secs(30)).unwrap();
    let expect: Value = serde_json::from_str(&expect_line["EXPECT ".len()..]).unwrap();
    let expect = expect.as_object().unwrap().clone();
    let case = format!("dump/{label}");
    let dump = || -> Result<Value, String> {
        let out = run_bounded(&dump_args(pid), Duration::from_secs(30));
        no_panic(&out.stderr, out.status)?;
        if !out.status.is_some_and(|s| s.success()) {
            return Err(format!("dump failed: {}", out.stderr));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("invalid JSON: {e}"))
    };
    // Each thread may still be between its handshake and its sleep.
    let mut settled = Err(String::new());
    for _ in 0..50 {
        settled = dump().and_then(|d| check_names(&d, &expect));
        if settled.is_ok() {
            break;
        }
    }
    tally.add(&case, "settle", settled.map(|_| String::new()));
    for i in 0..iterations() {
        let r = dump().and_then(|d| check_names(&d, &expect));
        tally.add(&case, &format!("#{i}"), r.map(|_| String::new()));
    }
    // The text form and a recording take them too.
    let pid_s = pid.to_string();
    let out = run_bounded(&["dump", "--pid", &pid_s], Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let result = if !out.status.is_some_and(|s| s.success()) {
        Err(format!("text dump failed: {}", out.stderr))
    } else {
        expect
            .iter()
            .find(|(_, w)| {
                let f = w["function"].as_str().unwrap();
                let head: String = f.chars().take(200).collect();
                !text.contains(&head)
            })
            .map_or(Ok(String::new()), |(t, _)| {
                Err(format!("text dump lacks {t}'s function"))
            })
    };
    tally.add(&format!("text/{label}"), "", result);
    let dir = tally.dir(&format!("names-{label}"));
    let path = dir.join("p.txt");
    let out = run_bounded(
        &record_args(pid, &path, &["--idle", "-r", "200", "-d", "1"]),
        Duration::from_secs(30),
    );
    let result = (|| {
        no_panic(&out.stderr, out.status)?;
        if !out.status.is_some_and(|s| s.success()) {
            return Err(format!("record failed: {}", out.stderr));
        }
        let (samples, _, errors) = summary(&out.stderr).ok_or("no summary line")?;
        if errors > 0 || samples == 0 {
            return Err(format!(
                "{samples} samples, {errors} errors: {}",
                out.stderr
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        for (t, w) in &expect {
            let head: String = w["function"].as_str().unwrap().chars().take(200).collect();
            if !text.contains(&head) {
                return Err(format!("the profile lacks {t}'s function"));
            }
        }
        Ok(String::new())
    })();
    tally.add(&format!("record/{label}"), "", result);
    drop(target);
    tally.finish();
}

#[test]
fn unusual_names_on_python_3_12() {
    unusual_names("3.12");
}

#[test]
fn unusual_names_on_python_2_7() {
    unusual_names("2.7");
}

#[test]
fn unusual_names_on_python_3_9() {
    unusual_names("3.9");
}

#[test]
fn unusual_names_on_python_3_14_in_sid_root() {
    unusual_names("3.14");
}
