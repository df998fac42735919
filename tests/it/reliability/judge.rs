//! Judging what pysampler printed: a dump is valid stacks or one clear
//! message, a profile's frames are not garbage, and the summary line.

use super::spawn::Finished;
use crate::formats::parse_folded_line;
use crate::pythons::Python;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Mutex;

/// What a dump may say instead of stacks: each message says plainly what
/// happened. Anything else (a memory read error, "invalid data", "kept
/// changing") from a process that exited, exec'd, or is starting or stopping
/// is not a clear account of what happened.
pub(super) const CLEAR_MESSAGES: &[&str] = &[
    "exited",
    "no process with pid",
    "is a zombie",
    "is not a Python program",
    "is not initialised yet, or is shutting down",
    "replaced itself with another program",
];

pub(super) fn no_panic(stderr: &str, status: Option<ExitStatus>) -> Result<(), String> {
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        return Err(format!("pysampler panicked: {stderr}"));
    }
    if let Some(s) = status {
        if s.code() == Some(101) {
            return Err(format!("pysampler exited with 101 (a panic): {stderr}"));
        }
        if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&s) {
            return Err(format!("pysampler died of signal {sig}: {stderr}"));
        }
    }
    Ok(())
}

pub(super) enum DumpResult {
    Stacks(Value),
    Message(String),
}

/// A dump is valid stacks or one clear error line, never a hang, a panic,
/// or garbage.
pub(super) fn judge_dump(out: &Finished, py: &Python, pid: i32) -> Result<DumpResult, String> {
    let Some(status) = out.status else {
        return Err(format!(
            "dump --pid {pid} still running after the limit (hang)"
        ));
    };
    no_panic(&out.stderr, Some(status))?;
    if status.success() {
        let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "dump --json printed invalid JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        check_dump_doc(&doc, py, pid)?;
        return Ok(DumpResult::Stacks(doc));
    }
    let message = out.stderr.trim();
    if status.code() != Some(1)
        || message.lines().count() != 1
        || !message.starts_with("pysampler: ")
    {
        return Err(format!(
            "dump failed with {status} and not one clear line: {message:?}; stdout {:?}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    if !CLEAR_MESSAGES.iter().any(|m| message.contains(m)) {
        return Err(format!("unclear dump error: {message}"));
    }
    Ok(DumpResult::Message(message.to_string()))
}

/// Lines in a source file, when it can be read (host path or inside the
/// interpreter's root), cached.
pub(super) fn line_count(py: &Python, file: &str) -> Option<usize> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<PathBuf, Option<usize>>>> =
        std::sync::OnceLock::new();
    // The code-reuse fixture rewrites its module every generation: its line
    // count is not fixed (code_reuse_check checks those lines exactly).
    if !file.starts_with('/') || file.contains("/pysampler-faults-") {
        return None;
    }
    let path = match &py.root {
        Some(root) => root.join(file.trim_start_matches('/')),
        None => PathBuf::from(file),
    };
    let cache = CACHE.get_or_init(Default::default);
    if let Some(n) = cache.lock().unwrap().get(&path) {
        return *n;
    }
    let n = std::fs::read(&path)
        .ok()
        .map(|b| b.split(|c| *c == b'\n').count());
    cache.lock().unwrap().insert(path, n);
    n
}

/// A function name as CPython makes them: identifier characters, dots of
/// qualified names, and the angle brackets of `<module>`, `<locals>`, ….
pub(super) fn plausible_function(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 4096
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_.<>".contains(c))
}

pub(super) fn plausible_file(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 4096
        && !name.chars().any(|c| c.is_control() || c == '\u{fffd}')
}

/// One frame is not garbage: a plausible name and file and a line that
/// exists in the file (when the file can be read).
pub(super) fn check_frame(
    py: &Python,
    function: &str,
    file: &str,
    line: u64,
) -> Result<(), String> {
    if !plausible_function(function) {
        return Err(format!(
            "garbage function name {function:?} ({file}:{line})"
        ));
    }
    if !plausible_file(file) {
        return Err(format!("garbage file name {file:?} in {function}"));
    }
    let max = line_count(py, file).unwrap_or(100_000) as u64;
    if line > max {
        return Err(format!(
            "absurd line {line} for {function} in {file} ({max} lines)"
        ));
    }
    Ok(())
}

pub(super) fn check_dump_doc(doc: &Value, py: &Python, pid: i32) -> Result<(), String> {
    if doc["pid"] != pid {
        return Err(format!("dump of pid {} (wanted {pid})", doc["pid"]));
    }
    let version = doc["python_version"].as_str().unwrap_or("");
    if version != py.version_text() {
        return Err(format!(
            "dump says Python {version:?}, the interpreter {}",
            py.version_text()
        ));
    }
    let threads = doc["threads"]
        .as_array()
        .ok_or_else(|| format!("no threads array: {doc}"))?;
    if threads.len() > 1000 {
        return Err(format!("{} threads", threads.len()));
    }
    for t in threads {
        let frames = t["frames"]
            .as_array()
            .ok_or_else(|| format!("thread without frames: {t}"))?;
        for f in frames {
            let function = f["function"].as_str().unwrap_or("");
            let file = f["filename"].as_str().unwrap_or("");
            let line = f["line"]
                .as_u64()
                .ok_or_else(|| format!("frame without a line: {f}"))?;
            check_frame(py, function, file, line)?;
        }
    }
    Ok(())
}

/// Function names of every thread, innermost first.
pub(super) fn thread_functions(doc: &Value) -> Vec<Vec<String>> {
    doc["threads"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    t["frames"]
                        .as_array()
                        .map(|fs| {
                            fs.iter()
                                .map(|f| f["function"].as_str().unwrap_or("").to_string())
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// "name (file:line)" → (name, file, line); "name (file)" → line None.
pub(super) fn split_label(label: &str) -> Option<(&str, &str, Option<u64>)> {
    let inner = label.strip_suffix(')')?;
    let open = inner.rfind(" (")?;
    let (name, rest) = (&inner[..open], &inner[open + 2..]);
    match rest.rsplit_once(':') {
        Some((file, line)) if line.parse::<u64>().is_ok() => {
            Some((name, file, Some(line.parse().unwrap())))
        }
        _ => Some((name, rest, None)),
    }
}

/// Collapsed stacks (root first) of a raw profile, each frame checked for
/// garbage.
pub(super) fn read_raw(py: &Python, path: &Path) -> Result<Vec<(Vec<String>, u64)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("no profile at {}: {e}", path.display()))?;
    let mut stacks = Vec::new();
    for line in text.lines() {
        let parsed = std::panic::catch_unwind(|| {
            let (frames, count) = parse_folded_line(line);
            (
                frames.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                count,
            )
        })
        .map_err(|_| format!("malformed raw line {line:?}"))?;
        for label in &parsed.0 {
            let (name, file, line_no) =
                split_label(label).ok_or_else(|| format!("malformed frame label {label:?}"))?;
            // Raw files show paths shortened relative to the target's cwd;
            // line counts are checked for absolute paths only.
            check_frame(py, name, file, line_no.unwrap_or(0))?;
            if file.is_empty() {
                return Err(format!("empty file in {label:?}"));
            }
        }
        stacks.push(parsed);
    }
    Ok(stacks)
}

pub(super) fn name_of(label: &str) -> &str {
    split_label(label).map(|(n, _, _)| n).unwrap_or(label)
}

pub(super) fn total(stacks: &[(Vec<String>, u64)]) -> u64 {
    stacks.iter().map(|(_, c)| c).sum()
}

pub(super) fn samples_with(stacks: &[(Vec<String>, u64)], function: &str) -> u64 {
    stacks
        .iter()
        .filter(|(fs, _)| fs.iter().any(|f| name_of(f) == function))
        .map(|(_, c)| c)
        .sum()
}

/// From the summary line: (samples, late %, errors).
pub(super) fn summary(stderr: &str) -> Option<(u64, f64, u64)> {
    summary_with_duration(stderr).map(|(s, _, l, e)| (s, l, e))
}

/// From the summary line: (samples, seconds, late %, errors).
pub(super) fn summary_with_duration(stderr: &str) -> Option<(u64, f64, f64, u64)> {
    let line = stderr.lines().find(|l| l.contains(" samples in "))?;
    let rest = line.strip_prefix("pysampler: ")?;
    let (samples, rest) = rest.split_once(" samples in ")?;
    let (secs, rest) = rest.split_once(" s (")?;
    let (late, rest) = rest.split_once("% late, ")?;
    let (errors, _) = rest.split_once(" errors)")?;
    Some((
        samples.parse().ok()?,
        secs.parse().ok()?,
        late.parse().ok()?,
        errors.parse().ok()?,
    ))
}

/// A recording of a process that stayed alive must not end early: no
/// "pysampler: process PID: <reason>" line, and the whole duration covered.
pub(super) fn covered_whole_duration(stderr: &str, pid: i32, seconds: f64) -> Result<(), String> {
    if let Some(line) = stderr
        .lines()
        .find(|l| l.starts_with(&format!("pysampler: process {pid}: ")))
    {
        return Err(format!(
            "the recording of the live process ended early: {line}"
        ));
    }
    match summary_with_duration(stderr) {
        Some((_, secs, _, _)) if secs >= seconds * 0.9 => Ok(()),
        Some((_, secs, _, _)) => Err(format!(
            "the recording covers {secs} s of the {seconds} s asked for"
        )),
        None => Err("no summary line".into()),
    }
}
