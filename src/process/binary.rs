//! Opening the ELF files mapped into a process, so the core can parse them.

pub use pysampler_core::elf::Binary;

use crate::error::{Error, Result};
use crate::process::maps::MappedFile;
use crate::process::ProcessInfo;
use std::path::PathBuf;

/// Opens `file` through the process's root (so binaries inside containers
/// are found), falling back to `/proc/PID/map_files` when the path was
/// deleted or replaced since the process started, and parses it.
pub fn load(process: &ProcessInfo, file: &MappedFile) -> Result<Binary> {
    let by_path = process.host_path(&file.path);
    let by_mapping = PathBuf::from(format!(
        "/proc/{}/map_files/{:x}-{:x}",
        process.pid, file.first_region.0, file.first_region.1
    ));
    // Maps name files as seen from our root when reachable from it, else
    // as seen in the process's own mount namespace: try both.
    let opened = std::fs::File::open(&by_path)
        .or_else(|_| std::fs::File::open(&by_mapping))
        .or_else(|_| std::fs::File::open(&file.path));
    let handle = opened.map_err(|source| Error::File {
        path: by_path.clone(),
        source,
    })?;
    // SAFETY: a read-only private mapping of a regular file; a binary that
    // changes under us yields bad symbols at worst, which every reader
    // tolerates.
    let map = unsafe { memmap2::Mmap::map(&handle) }.map_err(|source| Error::File {
        path: by_path.clone(),
        source,
    })?;
    Binary::parse(&file.path, &map, file.base).map_err(|detail| Error::Elf {
        path: by_path,
        detail,
    })
}
