//! The independent check: what the fixture said about its own stacks at
//! capture time (`LABEL.oracle.json`, from `sys._current_frames()`), against
//! what the walker reads from the snapshot. The expected dump files come
//! from the walker itself, so a walker broken when they were regenerated
//! would agree with them; it would not agree with Python.

use pysampler_core::walk::{Frame, ThreadStack};
use serde_json::Value;

/// Compares every thread, frame and plain-valued local the oracle lists
/// with `stacks`; returns how many locals were compared.
pub fn check(label: &str, oracle: &Value, stacks: &[ThreadStack]) -> usize {
    let told = oracle["threads"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: the oracle has no thread list"));
    let mut idents: Vec<u64> = told.iter().map(|t| ident(label, t)).collect();
    let mut read: Vec<u64> = stacks.iter().map(|s| s.ident).collect();
    idents.sort_unstable();
    read.sort_unstable();
    assert_eq!(idents, read, "{label}: the threads Python reported");
    let mut compared = 0;
    for thread in told {
        let stack = stacks
            .iter()
            .find(|s| s.ident == ident(label, thread))
            .unwrap_or_else(|| panic!("{label}: no stack for {thread}"));
        let at = format!("{label}, thread {:?}", stack.name);
        assert_eq!(thread["name"].as_str(), stack.name.as_deref(), "{at}: name");
        if let Some(tid) = thread["native_id"].as_i64() {
            assert_eq!(stack.native_id.map(i64::from), Some(tid), "{at}: OS id");
        }
        assert!(!stack.truncated && stack.unreadable_frames == 0, "{at}");
        let frames = thread["frames"].as_array().expect("a frame list");
        let shown: Vec<(&str, &str, u64)> = frames.iter().map(frame_of).collect();
        let walked: Vec<(&str, &str, u64)> = stack
            .frames
            .iter()
            .map(|f| {
                (
                    f.code.name.as_str(),
                    f.code.filename.as_str(),
                    f.line as u64,
                )
            })
            .collect();
        assert_eq!(walked, shown, "{at}: frames (function, file, line)");
        for (told, frame) in frames.iter().zip(&stack.frames) {
            compared += check_locals(&at, told, frame);
        }
    }
    compared
}

fn ident(label: &str, thread: &Value) -> u64 {
    thread["ident"]
        .as_u64()
        .unwrap_or_else(|| panic!("{label}: a thread without ident: {thread}"))
}

fn frame_of(frame: &Value) -> (&str, &str, u64) {
    (
        frame["function"].as_str().expect("function"),
        frame["filename"].as_str().expect("filename"),
        frame["line"].as_u64().expect("line"),
    )
}

/// Each local the oracle shows (values whose repr dump prints alike) has
/// that value in the walked frame.
fn check_locals(at: &str, told: &Value, frame: &Frame) -> usize {
    let Some(values) = told["locals"].as_object() else {
        return 0;
    };
    for (name, value) in values {
        let walked = frame.locals.iter().find(|l| &l.name == name);
        assert_eq!(
            walked.map(|l| l.value.as_str()),
            value.as_str(),
            "{at}: local {name} of {}",
            frame.code.name
        );
    }
    values.len()
}
