//! Deep recursion: stacks below and beyond the documented depth limit.

use super::harness::*;
use super::judge::*;
use super::spawn::*;
use crate::pythons::{self, Python};
use crate::target::{dump_when, marker_line, Target};
use serde_json::Value;
use std::time::Duration;

/// The documented limit (src/walk/frames.rs MAX_DEPTH, README's schema).
const MAX_DEPTH: usize = 10_000;

fn check_deep(py: &Python, depth: usize, doc: &Value) -> Result<(), String> {
    let file = "faults_deep.py";
    let deep = doc["threads"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == "deep"))
        .ok_or_else(|| "no thread named deep".to_string())?;
    let frames = deep["frames"].as_array().unwrap();
    let at = |k: usize| -> (String, String, u64) {
        let f = &frames[k];
        (
            f["function"].as_str().unwrap_or("").to_string(),
            f["short_filename"].as_str().unwrap_or("").to_string(),
            f["line"].as_u64().unwrap_or(0),
        )
    };
    let expect = |k: usize, name: &str, marker: &str| -> Result<(), String> {
        let want = (
            name.to_string(),
            file.to_string(),
            marker_line(file, marker),
        );
        if k >= frames.len() || at(k) != want {
            return Err(format!(
                "frame {k} of {}: {:?}, expected {want:?}",
                frames.len(),
                (k < frames.len()).then(|| at(k))
            ));
        }
        Ok(())
    };
    expect(0, "leaf", "LINE_LEAF")?;
    expect(1, "recurse", "LINE_BASE")?;
    let truncated = deep["truncated"].as_bool();
    if depth < MAX_DEPTH {
        let recursive = frames.iter().filter(|f| f["function"] == "recurse").count();
        if recursive != depth {
            return Err(format!(
                "{recursive} recurse frames, expected exactly {depth}"
            ));
        }
        for k in 2..=depth {
            expect(k, "recurse", "LINE_RECURSE")?;
        }
        let run = if py.qualnames() { "Thread.run" } else { "run" };
        if at(depth + 1).0 != run {
            return Err(format!(
                "frame after the recursion: {:?}, expected {run}",
                at(depth + 1)
            ));
        }
        if truncated != Some(false) {
            return Err(format!("truncated is {truncated:?} for depth {depth}"));
        }
    } else {
        if frames.len() != MAX_DEPTH {
            return Err(format!(
                "{} frames read of a {depth}-deep stack, expected the limit {MAX_DEPTH}",
                frames.len()
            ));
        }
        for k in 2..MAX_DEPTH {
            expect(k, "recurse", "LINE_RECURSE")?;
        }
        if truncated != Some(true) {
            return Err(format!("truncated is {truncated:?} for depth {depth}"));
        }
    }
    Ok(())
}

fn deep_recursion(label: &str) {
    let (mut tally, _) = Tally::new("deep_recursion");
    let py = pythons::find(label);
    for depth in [5_000usize, 50_000] {
        let target = Target::start(&py, "faults_deep.py", &[&depth.to_string()]);
        let pid = target.pid();
        let case = format!("depth-{depth}/{label}");
        // READY is printed from the leaf just before it sleeps: wait until
        // the leaf is seen in its sleep, after which the stack stands still.
        let leaf_line = marker_line("faults_deep.py", "LINE_LEAF");
        dump_when(pid, &[], |doc| {
            doc["threads"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    t["name"] == "deep"
                        && t["frames"][0]["function"] == "leaf"
                        && t["frames"][0]["line"] == leaf_line
                })
            })
        });
        // The stack stands still: a third of the iterations is plenty.
        for i in 0..iterations().div_ceil(3).max(3) {
            let out = run_bounded(&dump_args(pid), Duration::from_secs(30));
            let result = match judge_dump(&out, &py, pid) {
                Ok(DumpResult::Stacks(doc)) => check_deep(&py, depth, &doc),
                Ok(DumpResult::Message(m)) => Err(format!("dump failed: {m}")),
                Err(e) => Err(e),
            };
            let took = out.started.elapsed();
            tally.add(
                &case,
                &format!("#{i}"),
                result.map(|_| {
                    if i == 0 {
                        format!("dump took {took:?}")
                    } else {
                        String::new()
                    }
                }),
            );
        }
        // The text form says where it was cut.
        let pid_s = pid.to_string();
        let out = run_bounded(&["dump", "--pid", &pid_s], Duration::from_secs(30));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let result = if out.status.is_some_and(|s| s.success()) {
            let cut = text.contains(&format!("(stack truncated after {MAX_DEPTH} frames)"));
            if cut == (depth > MAX_DEPTH) {
                Ok(String::new())
            } else {
                Err(format!(
                    "text dump: truncation note {} for depth {depth}",
                    if cut { "present" } else { "missing" }
                ))
            }
        } else {
            Err(format!("text dump failed: {}", out.stderr))
        };
        tally.add(&case, "text", result);
    }
    tally.finish();
}

#[test]
fn deep_recursion_on_python_3_12() {
    deep_recursion("3.12");
}

#[test]
fn deep_recursion_on_python_2_7() {
    deep_recursion("2.7");
}

#[test]
fn deep_recursion_on_python_3_9() {
    deep_recursion("3.9");
}

#[test]
fn deep_recursion_on_python_3_14_in_sid_root() {
    deep_recursion("3.14");
}
