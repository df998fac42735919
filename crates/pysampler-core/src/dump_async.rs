//! `dump --async` output: each event loop's tasks after the thread stacks,
//! as text and as the JSON `loops` array (schema in README.md).

use crate::filenames::FileNames;
use crate::walk::asyncio::view::{AsyncTask, AsyncTasks};
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Write;

/// The text form, appended to `dump::text`'s.
pub fn text(tasks: &AsyncTasks, names: &FileNames) -> String {
    let mut out = String::new();
    if tasks.loops.is_empty() {
        out.push_str("\nNo asyncio tasks.\n");
    }
    for l in &tasks.loops {
        let label: HashMap<u64, &str> = l.tasks.iter().map(|t| (t.id, t.name.as_str())).collect();
        let edge = |ids: &[u64]| {
            ids.iter()
                .map(|id| match label.get(id) {
                    Some(name) => format!("\"{name}\" 0x{id:x}"),
                    None => format!("0x{id:x}"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "\nEvent loop 0x{:x}: {} tasks", l.addr, l.tasks.len());
        for t in &l.tasks {
            let _ = writeln!(out, "  Task \"{}\" 0x{:x} ({})", t.name, t.id, state(t));
            for f in &t.frames {
                let _ = writeln!(
                    out,
                    "      {} ({}:{})",
                    f.code.name,
                    names.show(&f.code.filename),
                    f.line
                );
            }
            if !t.awaiting.is_empty() {
                let _ = writeln!(out, "    awaiting: {}", edge(&t.awaiting));
            }
            if !t.awaited_by.is_empty() {
                let _ = writeln!(out, "    awaited by: {}", edge(&t.awaited_by));
            }
        }
    }
    if tasks.cut {
        out.push_str("... (more tasks than pysampler reads; the rest are not shown)\n");
    }
    out
}

fn state(t: &AsyncTask) -> &'static str {
    if t.running {
        "running"
    } else {
        "suspended"
    }
}

/// The JSON `loops` array.
pub fn json(tasks: &AsyncTasks, names: &FileNames) -> serde_json::Value {
    let id = |a: &u64| format!("0x{a:x}");
    let loops: Vec<_> = tasks
        .loops
        .iter()
        .map(|l| {
            let tasks: Vec<_> = l
                .tasks
                .iter()
                .map(|t| {
                    let frames: Vec<_> = t
                        .frames
                        .iter()
                        .map(|f| {
                            json!({
                                "function": f.code.name,
                                "filename": f.code.filename,
                                "short_filename": names.show(&f.code.filename),
                                "line": f.line,
                            })
                        })
                        .collect();
                    json!({
                        "id": id(&t.id),
                        "name": t.name,
                        "state": state(t),
                        "frames": frames,
                        "awaiting": t.awaiting.iter().map(id).collect::<Vec<_>>(),
                        "awaited_by": t.awaited_by.iter().map(id).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({ "loop": id(&l.addr), "tasks": tasks })
        })
        .collect();
    json!({ "loops": loops, "truncated": tasks.cut })
}
