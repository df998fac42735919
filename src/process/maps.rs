//! The process's memory map, read from `/proc/PID/maps` into the core's
//! `Region`s.

pub use pysampler_core::maps::{mapped_files, MappedFile, Region};

use crate::error::{Error, Result};

/// Reads `/proc/PID/maps`.
pub fn regions(pid: i32) -> Result<Vec<Region>> {
    let maps = proc_maps::get_process_maps(pid).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoSuchProcess(pid),
        std::io::ErrorKind::PermissionDenied => crate::process::permissions::explain(pid),
        _ => Error::File {
            path: format!("/proc/{pid}/maps").into(),
            source: e,
        },
    })?;
    Ok(maps
        .iter()
        .map(|m| Region {
            start: m.start() as u64,
            end: (m.start() + m.size()) as u64,
            offset: m.offset as u64,
            readable: m.is_read(),
            path: m
                .filename()
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|p| p.starts_with('/')),
        })
        .collect())
}
