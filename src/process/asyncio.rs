//! Finding 3.14+'s `.AsyncioDebug` section in a live process. It is in
//! whichever binary holds `_asyncio`: the `_asyncio*.so` extension (Debian's
//! 3.14, mapped only once the program imports asyncio), or the executable
//! or libpython where the module is built in (3.15, python-build-standalone).
//! So every mapped file that may hold it is looked at, each time asked.

use crate::error::Result;
use crate::process::{binary, maps, ProcessInfo};
use pysampler_core::interpreter::{BinaryLoader, Interpreter};
use pysampler_core::maps::MappedFile;
use pysampler_core::memory::MemorySource;
use pysampler_core::walk::asyncio::{debug_section::SECTION_SIZE, AsyncioDebug};

/// The target's `.AsyncioDebug`, None when its version has none or
/// `_asyncio` is not loaded (yet).
pub fn find_debug_section(
    process: &ProcessInfo,
    interp: &Interpreter,
    mem: &dyn MemorySource,
) -> Result<Option<AsyncioDebug>> {
    if interp.layout.task.node.is_none() {
        return Ok(None);
    }
    let files = maps::mapped_files(&maps::regions(process.pid)?);
    find_in(&files, &mut |file| binary::load(process, file), interp, mem)
}

/// As `find_debug_section`, among `files` opened by `load` (a live
/// process's, or a core file's).
pub fn find_in(
    files: &[MappedFile],
    load: &mut BinaryLoader,
    interp: &Interpreter,
    mem: &dyn MemorySource,
) -> Result<Option<AsyncioDebug>> {
    if interp.layout.task.node.is_none() {
        return Ok(None);
    }
    for file in files {
        let name = file.path.rsplit('/').next().unwrap_or("");
        if !(name.starts_with("_asyncio") || name.contains("python")) {
            continue;
        }
        let Ok(bin) = load(file) else {
            continue;
        };
        if let Some(addr) = bin.asyncio_debug {
            let raw = mem.read_vec(addr, SECTION_SIZE)?;
            return Ok(Some(AsyncioDebug::parse(&raw)?));
        }
    }
    Ok(None)
}
