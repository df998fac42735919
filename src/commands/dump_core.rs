//! `pysampler dump --core FILE`: the Python stacks of a crashed or frozen
//! process, from its core file. The interpreter is found and walked exactly
//! as for a live process, through the core's memory; the header adds the
//! signal that ended the process, and thread states are not known (a core
//! has no scheduler state to read) except which thread held the GIL.

use crate::cli::DumpArgs;
use crate::error::{Error, Result};
use crate::output::dump_text;
use crate::output::filenames::FileNames;
use crate::process::asyncio;
use crate::process::core_file::{self, OpenedCore};
use pysampler_core::corefile::signals;
use pysampler_core::dump::{DumpHeader, ThreadActivity};
use pysampler_core::dump_async;
use pysampler_core::interpreter::{Interpreter, ProcessImage};
use pysampler_core::labels::ThreadName;
use pysampler_core::walk::locals::read_locals;
use pysampler_core::walk::objects::ObjectReader;
use pysampler_core::walk::{Frame, LocalsDetail, StackReader, ThreadStack};
use serde_json::{json, Value};
use std::path::Path;

pub fn run(args: &DumpArgs, path: &Path) -> Result<i32> {
    let opened = core_file::open(path, args.root.as_deref())?;
    for warning in &opened.warnings {
        eprintln!("pysampler: warning: {warning}");
    }
    let core = &opened.core;
    if core.truncated_segments > 0 {
        eprintln!(
            "pysampler: warning: {} is truncated: {} of its memory segments are cut short, and what they held cannot be read (was the disk full, or the core size limit reached?)",
            path.display(),
            core.truncated_segments
        );
    }
    let exe = core.exe().unwrap_or("?").to_string();
    let files = core.mapped_files();
    let image = ProcessImage {
        pid: core.pid,
        exe: &exe,
        files: &files,
    };
    let interp = Interpreter::locate(&image, &mut |f| opened.load_binary(f), &core.memory)
        .map_err(|e| explain(&opened, &exe, e))?;
    let mut reader = StackReader::new(interp, Box::new(core.memory.clone()));
    let tids: Vec<i32> = core.threads.iter().map(|t| t.tid).collect();
    let detail = LocalsDetail::from_count(args.locals);
    let (stacks, lost) = match reader.read(&tids, detail) {
        Ok(stacks) => (stacks, Vec::new()),
        // A truncated core may hold some threads' stacks and not others.
        Err(_) if core.truncated_segments > 0 => {
            read_each(&mut reader, &tids, detail).map_err(|e| explain(&opened, &exe, e))?
        }
        Err(e) => return Err(explain(&opened, &exe, e)),
    };
    let tasks = match args.async_tasks {
        true => {
            let debug = asyncio::find_in(
                &files,
                &mut |f| opened.load_binary(f),
                &reader.interp,
                reader.mem.as_ref(),
            )?;
            Some(reader.read_tasks(debug.as_ref())?)
        }
        false => None,
    };
    let header = DumpHeader {
        pid: core.pid,
        command_line: core.command_line(),
        exe,
    };
    let names = FileNames::new(
        start_dir(&header.command_line, &stacks),
        args.full_filenames,
    );
    let none_active = ThreadActivity::default();
    let out = if args.json {
        let mut doc = dump_text::json(&header, &reader.interp, &stacks, &none_active, &names);
        mark_json(&mut doc, &opened, &stacks, &lost);
        if let (Some(tasks), Some(fields)) = (&tasks, doc.as_object_mut()) {
            fields.insert("asyncio".into(), dump_async::json(tasks, &names));
        }
        dump_text::json_text(&doc)
    } else {
        let text = dump_text::text(
            &header,
            &reader.interp,
            &stacks,
            &none_active,
            &names,
            args.locals > 0,
        );
        let mut text = mark_text(&text, &opened, &stacks, &lost);
        if let Some(tasks) = &tasks {
            text.push_str(&dump_async::text(tasks, &names));
        }
        text
    };
    print!("{out}");
    if lost.is_empty() {
        return Ok(0);
    }
    let _ = std::io::Write::flush(&mut std::io::stdout());
    eprintln!(
        "pysampler: {} of the {} threads' stacks are not in the truncated core (the reason is under each one)",
        lost.len(),
        stacks.len()
    );
    Ok(1)
}

/// The threads whose stacks could not be read: (index in the stacks, why).
type Lost = Vec<(usize, String)>;

/// Each thread's stack on its own, as `StackReader::read` reads them: the
/// ones that cannot be read are left without frames, with why (by index).
fn read_each(
    reader: &mut StackReader,
    tids: &[i32],
    detail: LocalsDetail,
) -> Result<(Vec<ThreadStack>, Lost)> {
    // Top frames are read per thread below (3.12 finds them on the C stack).
    let entries = reader.thread_list(|| tids.to_vec(), false)?;
    let (mut stacks, mut lost) = (Vec::new(), Vec::new());
    let mut raw = Vec::new();
    for entry in entries {
        raw.clear();
        let mut stack = ThreadStack {
            ident: entry.state.ident,
            native_id: entry.tid,
            name: entry.name.as_deref().map(str::to_string),
            owns_gil: entry.owns_gil,
            frames: Vec::new(),
            truncated: false,
            unreadable_frames: 0,
        };
        match reader.fresh_raw_frames(&entry, &mut raw) {
            Ok(truncated) => stack.truncated = truncated,
            Err(e) => lost.push((stacks.len(), e.to_string())),
        }
        for frame in &raw {
            match reader.resolve(frame) {
                Ok(Some((code, at))) => {
                    let locals = match detail.limits() {
                        Some(limits) => {
                            let objects = ObjectReader::new(reader.mem.as_ref(), &reader.interp);
                            read_locals(&objects, frame.addr, frame.code, &limits)
                                .unwrap_or_default()
                        }
                        None => Vec::new(),
                    };
                    stack.frames.push(Frame {
                        code,
                        line: at.line,
                        column: at.column,
                        locals,
                    });
                }
                Ok(None) => {}
                Err(_) => stack.unreadable_frames += 1,
            }
        }
        stacks.push(stack);
    }
    Ok((stacks, lost))
}

/// An error as it concerns the core: a binary that is not on disk, a
/// process that was not Python, memory the core does not have.
fn explain(opened: &OpenedCore, exe: &str, error: Error) -> Error {
    let core = |detail: String| Error::Core {
        path: opened.path.clone(),
        detail,
    };
    let root = match opened.root == Path::new("/") {
        true => "on this machine".to_string(),
        false => format!("under {}", opened.root.display()),
    };
    match error {
        Error::File { path, .. } => core(format!(
            "{} is not there: the binaries the process ran must be {root}, as they were at the crash (for a container's process, give --root with the folder its files are under)",
            path.display()
        )),
        Error::NotPython { .. } => core(format!(
            "the process ({exe}) was not a Python program: no CPython interpreter among the files it mapped"
        )),
        other if opened.core.truncated_segments > 0 => core(format!(
            "the interpreter's state cannot be read, the core is truncated ({} memory segments are cut short: was the disk full, or the core size limit reached?): {other}",
            opened.core.truncated_segments
        )),
        Error::Memory { addr, .. } => {
            core(format!("the interpreter's memory at 0x{addr:x} cannot be read: the core does not hold it, nor any file it mapped (was it written with a coredump_filter that leaves memory out?)"))
        }
        other => other,
    }
}

/// The folder the program was started in, which short file names are
/// relative to for a live process (a core does not record the working
/// directory): where the main script, given relative on the command line,
/// is found by the `<module>` frame's absolute path.
fn start_dir(command_line: &str, stacks: &[ThreadStack]) -> Option<String> {
    let modules = stacks
        .iter()
        .filter_map(|s| s.frames.last())
        .filter(|f| f.code.name == "<module>");
    for frame in modules {
        let file = frame.code.filename.as_str();
        for arg in command_line
            .split(' ')
            .skip(1)
            .filter(|a| a.ends_with(".py") && !a.starts_with('/'))
        {
            if let Some(dir) = file.strip_suffix(arg).and_then(|d| d.strip_suffix('/')) {
                return Some(dir.to_string());
            }
        }
    }
    None
}

/// The status shown for a thread: the GIL holder, else unknown.
fn status(stack: &ThreadStack) -> &'static str {
    match stack.owns_gil {
        true => "gil",
        false => "state unknown",
    }
}

/// The header line about the signal, when one ended the process.
fn signal_line(opened: &OpenedCore) -> String {
    let core = &opened.core;
    match (core.signal, core.signalled_thread()) {
        (Some(info), Some(tid)) => {
            let address = match info.fault_address {
                Some(a) => format!(" at address {a:#x}"),
                None => String::new(),
            };
            format!(
                "Signal: {}{address}, received by thread {tid}\n",
                signals::name(info.signal)
            )
        }
        _ => "Signal: none (the core was written while the process ran, by gcore or the like)\n"
            .to_string(),
    }
}

/// The live dump's text with the core's facts: the core file and signal
/// under the version line, each thread's state as far as the core tells.
fn mark_text(
    text: &str,
    opened: &OpenedCore,
    stacks: &[ThreadStack],
    lost: &[(usize, String)],
) -> String {
    let signalled = opened.core.signalled_thread();
    let signal = opened.core.signal.map(|s| signals::name(s.signal));
    let mut out = String::with_capacity(text.len() + 200);
    let mut threads = stacks.iter().enumerate();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i == 2 {
            out.push_str(&format!("Core file: {}\n", opened.path.display()));
            out.push_str(&signal_line(opened));
        }
        if line.starts_with("Thread ") {
            if let Some((index, stack)) = threads.next() {
                let id = ThreadName {
                    name: None,
                    tid: stack.native_id,
                    ident: stack.ident,
                }
                .id();
                let was = format!(
                    "Thread {id} (idle{})",
                    if stack.owns_gil { "+gil" } else { "" }
                );
                let mut now = format!("Thread {id} ({}", status(stack));
                if let (Some(s), true) =
                    (&signal, signalled.is_some() && signalled == stack.native_id)
                {
                    now.push_str(&format!(", received {s}"));
                }
                now.push(')');
                out.push_str(&line.replacen(&was, &now, 1));
                if let Some((_, why)) = lost.iter().find(|(i, _)| *i == index) {
                    out.push_str(&format!(
                        "    ... (its stack is not in the truncated core: {why})\n"
                    ));
                }
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// The live dump's JSON with the core's facts: `active` unknown (null),
/// which thread received the signal, and a `core` object.
fn mark_json(
    doc: &mut Value,
    opened: &OpenedCore,
    stacks: &[ThreadStack],
    lost: &[(usize, String)],
) {
    let core = &opened.core;
    let signalled = core.signalled_thread();
    if let Some(threads) = doc.get_mut("threads").and_then(Value::as_array_mut) {
        for (index, (thread, stack)) in threads.iter_mut().zip(stacks).enumerate() {
            thread["active"] = Value::Null;
            if let Some((_, why)) = lost.iter().find(|(i, _)| *i == index) {
                thread["error"] = json!(why);
            }
            thread["received_signal"] = json!(signalled.is_some() && signalled == stack.native_id);
        }
    }
    let fatal = signalled.is_some();
    doc["core"] = json!({
        "path": opened.path.display().to_string(),
        "signal": core.signal.filter(|_| fatal).map(|s| s.signal),
        "signal_name": core.signal.filter(|_| fatal).map(|s| signals::name(s.signal)),
        "fault_address": core.signal.filter(|_| fatal).and_then(|s| s.fault_address),
        "signalled_thread": signalled,
        "missing_files": opened.missing_files(),
    });
}
