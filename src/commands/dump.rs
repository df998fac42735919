//! `pysampler dump`: every thread's stack, once.

use crate::cli::DumpArgs;
use crate::error::{Error, Result};
use crate::output::dump_text::{self, ThreadActivity};
use crate::output::filenames::FileNames;
use crate::process::locate::locate_interpreter;
use crate::process::memory::LiveMemory;
use crate::process::{pause, task_state, ProcessInfo};
use pysampler_core::walk::StackReader;

/// Attempts at a consistent read when memory changes under a non-paused read.
const ATTEMPTS: usize = 5;

pub fn run(args: &DumpArgs) -> Result<i32> {
    let process = ProcessInfo::open(args.pid)?;
    // A failure while the process exits or execs is reported as that.
    dump(args, &process).map_err(|e| process.explain(e))
}

fn dump(args: &DumpArgs, process: &ProcessInfo) -> Result<i32> {
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
        let result = reader.read_holding(&tids, args.locals, |entry| match entry.tid {
            Some(tid) if !args.nonblocking => {
                pause::pause_thread(pid, tid, pause::StopWait::Spin).map(Some)
            }
            _ => Ok(None),
        });
        match result {
            Ok(stacks) => {
                let names = FileNames::new(process.cwd.clone(), args.full_filenames);
                let activity = ThreadActivity(activity);
                let header = dump_text::header(process);
                let out = if args.json {
                    dump_text::json(&header, &reader.interp, &stacks, &activity, &names)
                } else {
                    dump_text::text(
                        &header,
                        &reader.interp,
                        &stacks,
                        &activity,
                        &names,
                        args.locals,
                    )
                };
                print!("{out}");
                return Ok(0);
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
