//! `dump` output: text compatible with py-spy's dump, and JSON.

use crate::output::filenames::FileNames;
use crate::process::ProcessInfo;
use pysampler_core::interpreter::Interpreter;
use pysampler_core::walk::ThreadStack;
use serde_json::json;
use std::fmt::Write;

/// Which OS threads were running when the dump started.
pub struct ThreadActivity(pub Vec<(i32, bool)>);

impl ThreadActivity {
    fn is_active(&self, tid: Option<i32>) -> bool {
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

pub fn text(
    process: &ProcessInfo,
    interp: &Interpreter,
    stacks: &[ThreadStack],
    activity: &ThreadActivity,
    names: &FileNames,
    with_locals: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Process {}: {}", process.pid, process.command_line());
    let _ = writeln!(out, "Python v{} ({})\n", interp.version, process.exe);
    for stack in stacks {
        let id = match stack.native_id {
            Some(tid) => tid.to_string(),
            None => format!("{:#x}", stack.ident),
        };
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

fn write_locals(out: &mut String, frame: &pysampler_core::walk::Frame) {
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

/// The JSON object of one process (schema in README.md).
pub fn json(
    process: &ProcessInfo,
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
        "pid": process.pid,
        "command_line": process.command_line(),
        "executable": process.exe,
        "python_version": interp.version.to_string(),
        "python_binary": interp.runtime_binary,
        "threads": threads,
    })
}

/// A JSON document as printed: pretty, with a final newline.
pub fn json_text(doc: &serde_json::Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(doc).unwrap_or_default()
    )
}
