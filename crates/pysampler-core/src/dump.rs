//! `dump` output: text in py-spy's dump layout, and JSON. Pure formatting of
//! stacks the walker read: what the operating system tells about the process
//! (pid, command line, executable, which threads were running) comes in as
//! plain values, so the same output can be rendered for a live process and
//! for a snapshot, and compared byte for byte in tests without a process.

use crate::filenames::FileNames;
use crate::interpreter::Interpreter;
use crate::labels::ThreadName;
use crate::walk::{Frame, ThreadStack};
use serde_json::json;
use std::fmt::Write;

/// The process as the first lines of a dump name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpHeader {
    pub pid: i32,
    pub command_line: String,
    /// The executable's path.
    pub exe: String,
}

/// Which OS threads were running (or runnable) when the dump started:
/// (tid, running). A thread not listed counts as idle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadActivity(pub Vec<(i32, bool)>);

impl ThreadActivity {
    pub fn is_active(&self, tid: Option<i32>) -> bool {
        tid.and_then(|t| {
            self.0
                .iter()
                .find(|(id, _)| *id == t)
                .map(|(_, running)| *running)
        })
        .unwrap_or(false)
    }
}

fn status(stack: &ThreadStack, activity: &ThreadActivity) -> String {
    let mut s = String::from(if activity.is_active(stack.native_id) {
        "active"
    } else {
        "idle"
    });
    if stack.owns_gil {
        s.push_str("+gil");
    }
    s
}

/// The text form, as `pysampler dump` prints it.
pub fn text(
    header: &DumpHeader,
    interp: &Interpreter,
    stacks: &[ThreadStack],
    activity: &ThreadActivity,
    names: &FileNames,
    with_locals: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Process {}: {}", header.pid, header.command_line);
    let _ = writeln!(out, "Python v{} ({})\n", interp.version, header.exe);
    for stack in stacks {
        let id = ThreadName {
            name: stack.name.as_deref(),
            tid: stack.native_id,
            ident: stack.ident,
        }
        .id();
        let _ = write!(out, "Thread {} ({})", id, status(stack, activity));
        match &stack.name {
            Some(name) => {
                let _ = writeln!(out, ": \"{name}\"");
            }
            None => out.push('\n'),
        }
        for frame in &stack.frames {
            let _ = writeln!(
                out,
                "    {} ({}:{})",
                frame.code.name,
                names.show(&frame.code.filename),
                frame.line
            );
            if with_locals {
                write_locals(&mut out, frame);
            }
        }
        if stack.truncated {
            let _ = writeln!(
                out,
                "    ... (stack truncated after {} frames)",
                stack.frames.len()
            );
        }
        if stack.unreadable_frames > 0 {
            let _ = writeln!(
                out,
                "    ... ({} frames could not be read)",
                stack.unreadable_frames
            );
        }
    }
    out
}

fn write_locals(out: &mut String, frame: &Frame) {
    for (heading, args) in [("Arguments:", true), ("Locals:", false)] {
        let mut vars = frame.locals.iter().filter(|l| l.is_arg == args).peekable();
        if vars.peek().is_some() {
            let _ = writeln!(out, "        {heading}");
            for v in vars {
                let _ = writeln!(out, "            {} = {}", v.name, v.value);
            }
        }
    }
}

/// The JSON form (`pysampler dump --json`) as printed; locals are listed
/// when the stacks were read with them.
pub fn json(
    header: &DumpHeader,
    interp: &Interpreter,
    stacks: &[ThreadStack],
    activity: &ThreadActivity,
    names: &FileNames,
) -> String {
    json_text(&json_value(header, interp, stacks, activity, names))
}

/// A JSON document as printed: pretty, with a final newline.
pub fn json_text(doc: &serde_json::Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(doc).unwrap_or_default()
    )
}

/// The JSON object of one process (schema in README.md).
pub fn json_value(
    header: &DumpHeader,
    interp: &Interpreter,
    stacks: &[ThreadStack],
    activity: &ThreadActivity,
    names: &FileNames,
) -> serde_json::Value {
    let threads: Vec<_> = stacks
        .iter()
        .map(|s| {
            let frames: Vec<_> = s
                .frames
                .iter()
                .map(|f| {
                    json!({
                        "function": f.code.name,
                        "filename": f.code.filename,
                        "short_filename": names.show(&f.code.filename),
                        "line": f.line,
                        "column": (f.column != 0).then_some(f.column),
                        "locals": f.locals.iter().map(|l| json!({
                            "name": l.name, "value": l.value, "is_argument": l.is_arg,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "thread_id": s.native_id,
                "python_thread_id": s.ident,
                "name": s.name,
                "active": activity.is_active(s.native_id),
                "owns_gil": s.owns_gil,
                "truncated": s.truncated,
                "frames": frames,
            })
        })
        .collect();
    json!({
        "pid": header.pid,
        "command_line": header.command_line,
        "executable": header.exe,
        "python_version": interp.version.to_string(),
        "python_binary": interp.runtime_binary,
        "threads": threads,
    })
}
