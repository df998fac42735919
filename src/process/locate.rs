//! Finding a live process's interpreter: its maps and binaries from `/proc`,
//! handed to the core's `Interpreter::locate`.

use crate::error::{Error, Result};
use crate::process::{binary, is_alive, maps, ProcessInfo};
use pysampler_core::interpreter::{Interpreter, ProcessImage};
use pysampler_core::memory::MemorySource;

/// The interpreter of `process`, read through `mem`.
pub fn locate_interpreter(process: &ProcessInfo, mem: &dyn MemorySource) -> Result<Interpreter> {
    let files = maps::mapped_files(&maps::regions(process.pid)?);
    let image = ProcessImage {
        pid: process.pid,
        exe: &process.exe,
        files: &files,
    };
    let found = Interpreter::locate(&image, &mut |file| binary::load(process, file), mem);
    match found {
        // A process that exited while its binaries were looked at has none.
        Err(Error::NotPython { .. } | Error::File { .. }) if !is_alive(process.pid) => {
            Err(Error::ProcessExited(process.pid))
        }
        other => other,
    }
}
