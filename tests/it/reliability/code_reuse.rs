//! Code objects freed and their addresses reused: a sample never shows a
//! stale name or line.

use super::harness::*;
use super::judge::*;
use super::spawn::*;
use crate::pythons::{self, Python};
use crate::target::Target;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// "f_12" → ('f', 12).
fn generation(name: &str) -> Option<(char, u64)> {
    let (kind, n) = name.split_once('_')?;
    let kind = match kind {
        "f" => 'f',
        "g" => 'g',
        _ => return None,
    };
    Some((kind, n.parse().ok()?))
}

/// The lines of f_<n> or g_<n> in the source faults_codereuse.py makes for
/// generation n (its `source(i)`): g_<n> comes first, with (3n mod 7)
/// padding lines, then a blank line, then f_<n> with (n mod 5) of them.
fn generation_lines(kind: char, n: u64) -> std::ops::RangeInclusive<u64> {
    let (g_pad, f_pad) = ((n * 3) % 7, n % 5);
    match kind {
        'g' => 1..=5 + g_pad,
        _ => 7 + g_pad..=8 + g_pad + f_pad,
    }
}

fn code_reuse(py: &Python, mode: &str, dir: &Path, i: usize) -> Result<String, String> {
    let target = Target::start(py, "faults_codereuse.py", &[mode]);
    let pid = target.pid();
    // The reload mode's module folder, left behind when the fixture is
    // killed while it exists.
    let module_dir = PathBuf::from(format!("/tmp/pysampler-faults-{pid}"));
    let module_dir = match &py.root {
        Some(root) => root.join(module_dir.strip_prefix("/").unwrap()),
        None => module_dir,
    };
    let result = code_reuse_check(py, mode, &target, dir, i);
    drop(target);
    let _ = std::fs::remove_dir_all(module_dir);
    result
}

fn code_reuse_check(
    py: &Python,
    mode: &str,
    target: &Target,
    dir: &Path,
    i: usize,
) -> Result<String, String> {
    let pid = target.pid();
    let out = dir.join(format!("{}-{mode}-{i}.txt", py.label));
    let mut rec = spawn_pysampler(&record_args(pid, &out, &["-r", "2000", "-d", "3"]));
    let ctx = format!("(pid {pid})");
    let Some((status, _)) = rec.wait_exit(Duration::from_secs(30)) else {
        return Err(format!("record -d 3 still running after 30 s {ctx}"));
    };
    rec.drain();
    let stderr = rec.stderr_text();
    no_panic(&stderr, Some(status))?;
    if !status.success() {
        return Err(format!("record exited with {status} {ctx}: {stderr}"));
    }
    covered_whole_duration(&stderr, pid, 3.0)
        .map_err(|e| format!("{e} {ctx}; stderr: {stderr}"))?;
    let (samples, _, errors) =
        summary(&stderr).ok_or_else(|| format!("no summary line {ctx}: {stderr}"))?;
    let stacks = read_raw(py, &out).map_err(|e| format!("{e} {ctx}"))?;
    let mut leaf_samples = 0;
    let mut generations = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    for (frames, count) in &stacks {
        for (k, label) in frames.iter().enumerate() {
            let (name, file, _) = split_label(label).unwrap();
            let Some((kind, n)) = generation(name) else {
                if name.starts_with("f_") || name.starts_with("g_") {
                    wrong.push(format!("odd name {label:?} in {frames:?}"));
                }
                continue;
            };
            generations.insert(n);
            if let Some(line) = split_label(label).and_then(|(_, _, l)| l) {
                let lines = generation_lines(kind, n);
                if !lines.contains(&line) {
                    wrong.push(format!(
                        "{label}: line {line} is not in {name} (lines {lines:?}): {frames:?} ×{count}"
                    ));
                }
            }
            if mode == "exec" && file != format!("gen_{n}.py") {
                wrong.push(format!(
                    "{label} is in {file}, not gen_{n}.py: {frames:?} ×{count}"
                ));
            }
            if mode == "reload" && !file.ends_with("faults_reload_gen.py") {
                wrong.push(format!("{label} is in {file}: {frames:?} ×{count}"));
            }
            match kind {
                'g' => {
                    leaf_samples += count;
                    let parent = k.checked_sub(1).map(|p| name_of(&frames[p]));
                    if parent != Some(format!("f_{n}").as_str()) {
                        wrong.push(format!(
                            "{name} called from {parent:?}, not f_{n}: {frames:?} ×{count}"
                        ));
                    }
                }
                _ => {
                    if let Some(child) = frames.get(k + 1) {
                        if name_of(child) != format!("g_{n}") {
                            wrong.push(format!("{name} calls {child:?}: {frames:?} ×{count}"));
                        }
                    }
                }
            }
        }
    }
    if !wrong.is_empty() {
        return Err(format!(
            "{} stale or wrong names ({} samples, {} generations seen) {ctx}, e.g.:\n    {}",
            wrong.len(),
            samples,
            generations.len(),
            wrong
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n    ")
        ));
    }
    if leaf_samples < 20 || generations.len() < 10 {
        return Err(format!(
            "too little seen to judge: {leaf_samples} samples in g_*, {} generations {ctx}",
            generations.len()
        ));
    }
    Ok(format!(
        "{samples} samples, {errors} errors, {leaf_samples} in g_*, {} generations",
        generations.len()
    ))
}

#[test]
fn freed_and_reused_code_objects_never_show_stale_names() {
    let (mut tally, _) = Tally::new("freed_and_reused_code_objects_never_show_stale_names");
    let dir = tally.dir("code-reuse");
    for i in 0..long_runs() {
        for label in ["3.12", "3.9", "2.7", "3.14"] {
            let py = pythons::find(label);
            for mode in ["exec", "reload"] {
                let result = code_reuse(&py, mode, &dir, i);
                tally.add(&format!("{mode}/{label}"), &format!("#{i}"), result);
            }
        }
    }
    tally.finish();
}
