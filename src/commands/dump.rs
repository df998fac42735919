//! `pysampler dump`: every thread's stack, once; with `--subprocesses`, of
//! every Python process of the tree.

use crate::cli::DumpArgs;
use crate::error::{Error, Result};
use crate::output::dump_text::{self, ThreadActivity};
use crate::output::filenames::FileNames;
use crate::process::locate::locate_interpreter;
use crate::process::memory::LiveMemory;
use crate::process::{pause, task_state, ProcessInfo};
use crate::sampling::children;
use pysampler_core::dump_async;
use pysampler_core::walk::asyncio::view::AsyncTasks;
use pysampler_core::walk::{LocalsDetail, StackReader};
use serde_json::{json, Value};
use std::io::Write;

/// Attempts at a consistent read when memory changes under a non-paused read.
const ATTEMPTS: usize = 5;

/// One process's dump, as it will be printed.
enum Section {
    Text(String),
    Json(Value),
}

pub fn run(args: &DumpArgs) -> Result<i32> {
    let pid = match (&args.core, args.pid) {
        (Some(core), _) => return super::dump_core::run(args, core),
        (None, Some(pid)) => pid,
        (None, None) => return Err(Error::BadOptions("give --pid or --core".into())),
    };
    if args.subprocesses {
        return run_tree(args, pid);
    }
    let process = ProcessInfo::open(pid)?;
    // A failure while the process exits or execs is reported as that.
    let section = dump(args, &process).map_err(|e| process.explain(e))?;
    print!("{}", section_text(section));
    Ok(0)
}

fn section_text(section: Section) -> String {
    match section {
        Section::Text(text) => text,
        Section::Json(doc) => dump_text::json_text(&doc),
    }
}

/// `--subprocesses`: the root and its descendants in pid order, each under
/// its own header. A process that is not Python is left out, as is one that
/// exits meanwhile; one that cannot be read gets its error under its header,
/// and the exit status is then 1.
fn run_tree(args: &DumpArgs, root: i32) -> Result<i32> {
    // The root must exist; what it runs does not matter (a shell, a
    // launcher), nor whether it can be read (its descendants may be).
    match ProcessInfo::open(root) {
        Ok(_) | Err(Error::PermissionDenied { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut pids = children::descendants(root);
    pids.push(root);
    pids.sort_unstable();
    let (mut sections, mut failed, mut skipped) = (Vec::new(), 0, 0);
    for &pid in &pids {
        let dumped = ProcessInfo::open(pid)
            .and_then(|process| dump(args, &process).map_err(|e| process.explain(e)));
        match dumped {
            Ok(section) => sections.push(section),
            Err(Error::NotPython { .. } | Error::Zombie { .. }) => skipped += 1,
            Err(e) if e.is_process_gone() => skipped += 1,
            Err(e) => {
                failed += 1;
                sections.push(unreadable(args, pid, &e));
            }
        }
    }
    if sections.is_empty() {
        return Err(Error::NoPythonInTree {
            pid: root,
            descendants: pids.len() - 1,
        });
    }
    let out = if args.json {
        let docs: Vec<Value> = sections
            .into_iter()
            .filter_map(|s| match s {
                Section::Json(mut doc) => {
                    if let Some(fields) = doc.as_object_mut() {
                        fields.entry("error").or_insert(Value::Null);
                    }
                    Some(doc)
                }
                Section::Text(_) => None,
            })
            .collect();
        dump_text::json_text(&Value::Array(docs))
    } else {
        let texts: Vec<String> = sections.into_iter().map(section_text).collect();
        texts.join("\n")
    };
    print!("{out}");
    if failed == 0 {
        return Ok(0);
    }
    let _ = std::io::stdout().flush();
    eprintln!(
        "pysampler: {failed} of the {} processes shown could not be read (the error is under each one's header)",
        pids.len() - skipped
    );
    Ok(1)
}

/// The header of a process that could not be read, and why, on one line.
fn unreadable(args: &DumpArgs, pid: i32, error: &Error) -> Section {
    let command_line = command_line(pid);
    let message = error.to_string().replace('\n', " ");
    if args.json {
        Section::Json(json!({
            "pid": pid,
            "command_line": command_line,
            "error": message,
        }))
    } else {
        Section::Text(format!("Process {pid}: {command_line}\nError: {message}\n"))
    }
}

/// The command line from /proc, which anyone may read (even when the
/// process's memory and executable are out of reach).
fn command_line(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    args.join(" ")
}

fn dump(args: &DumpArgs, process: &ProcessInfo) -> Result<Section> {
    let mem = LiveMemory::new(process.pid).with_proc_mem_fallback();
    let interp = locate_interpreter(process, &mem)?;
    let mut reader = StackReader::new(interp, Box::new(mem));
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let tids = pause::thread_ids(process.pid)?;
        // Activity is read before pausing: a paused thread is never running.
        let activity: Vec<(i32, bool)> = tids
            .iter()
            .filter_map(|t| Some((*t, task_state::is_running(process.pid, *t)?)))
            .collect();
        // Each thread is paused on its own while its stack is read (see
        // process::pause for why never all together).
        let pid = process.pid;
        let result =
            reader.read_holding(
                &tids,
                LocalsDetail::from_count(args.locals),
                |entry| match entry.tid {
                    Some(tid) if !args.nonblocking => {
                        pause::pause_thread(pid, tid, pause::StopWait::Spin).map(Some)
                    }
                    _ => Ok(None),
                },
            );
        match result {
            Ok(stacks) => {
                let names = FileNames::new(process.cwd.clone(), args.full_filenames);
                let tasks = match args.async_tasks {
                    true => Some(read_tasks(process, &mut reader)?),
                    false => None,
                };
                let activity = ThreadActivity(activity);
                let header = dump_text::header(process);
                return Ok(if args.json {
                    let mut doc =
                        dump_text::json(&header, &reader.interp, &stacks, &activity, &names);
                    if let (Some(tasks), Some(fields)) = (&tasks, doc.as_object_mut()) {
                        fields.insert("asyncio".into(), dump_async::json(tasks, &names));
                    }
                    Section::Json(doc)
                } else {
                    let mut text = dump_text::text(
                        &header,
                        &reader.interp,
                        &stacks,
                        &activity,
                        &names,
                        args.locals > 0,
                    );
                    if let Some(tasks) = &tasks {
                        text.push_str(&dump_async::text(tasks, &names));
                    }
                    Section::Text(text)
                });
            }
            Err(e) => match process.explain(e) {
                e if e.is_process_gone() => return Err(e),
                e => last_error = Some(e),
            },
        }
    }
    Err(match last_error {
        Some(e @ Error::NotReady { .. }) => e,
        Some(e) => Error::Inconsistent {
            pid: process.pid,
            detail: e.to_string(),
        },
        None => Error::Inconsistent {
            pid: process.pid,
            detail: "no attempt succeeded".into(),
        },
    })
}

/// `--async`: the tasks of every event loop, read while the process runs
/// (a suspended task's chain does not change until it resumes).
fn read_tasks(process: &ProcessInfo, reader: &mut StackReader) -> Result<AsyncTasks> {
    let debug =
        crate::process::asyncio::find_debug_section(process, &reader.interp, reader.mem.as_ref())?;
    reader.read_tasks(debug.as_ref())
}
