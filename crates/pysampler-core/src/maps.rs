//! A process's memory map as data (where it comes from is the caller's
//! business: `/proc/PID/maps`, a core file's notes), grouped by the file each
//! region comes from.

/// One region of the address space (a line of `/proc/PID/maps`).
#[derive(Debug, Clone)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub readable: bool,
    pub path: Option<String>,
}

/// A file mapped into the process: its path (as the process sees it) and the
/// address where its first byte (file offset 0) is mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedFile {
    pub path: String,
    pub base: u64,
    /// Start/end address of the first region, used to open the file through
    /// `/proc/PID/map_files/` when the path is gone (deleted or replaced).
    pub first_region: (u64, u64),
}

/// Files mapped from offset 0, in address order, without duplicates.
pub fn mapped_files(regions: &[Region]) -> Vec<MappedFile> {
    let mut files: Vec<MappedFile> = Vec::new();
    for r in regions {
        let Some(path) = &r.path else { continue };
        if r.offset != 0 || files.iter().any(|f| &f.path == path) {
            continue;
        }
        files.push(MappedFile {
            path: path.trim_end_matches(" (deleted)").to_string(),
            base: r.start,
            first_region: (r.start, r.end),
        });
    }
    files
}
