//! Opening a core file and the files its process had mapped: both are
//! memory-mapped (cores of big processes are many GB) and handed to the
//! core crate's `CoreFile`, which reads what the core left out (code and
//! read-only data) from the files, found under `--root` when given.

use crate::error::{Error, Result};
use pysampler_core::corefile::{build_id, CoreFile, SharedBytes};
use pysampler_core::elf::Binary;
use pysampler_core::maps::MappedFile;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A parsed core and the mapped files found on disk.
pub struct OpenedCore {
    pub path: PathBuf,
    pub core: CoreFile,
    /// The folder the process's paths are looked up under ("/" by default).
    pub root: PathBuf,
    /// Each mapped file's bytes, by its path as the process saw it; None
    /// when it could not be opened.
    files: HashMap<String, std::result::Result<SharedBytes, String>>,
    /// What the user should know (files missing or changed since the crash).
    pub warnings: Vec<String>,
}

/// Compressed-core magics and the tool that decompresses each.
const COMPRESSED: &[(&[u8], &str, &str)] = &[
    (b"\x28\xb5\x2f\xfd", "zstd", "zstd -d"),
    (b"\xfd7zXZ\x00", "xz", "xz -dk"),
    (b"\x04\x22\x4d\x18", "lz4", "lz4 -d"),
];

pub fn open(path: &Path, root: Option<&Path>) -> Result<OpenedCore> {
    let bad = |detail: String| Error::Core {
        path: path.to_path_buf(),
        detail,
    };
    let bytes = map_file(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let data = (*bytes).as_ref();
    if data.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    if let Some((_, format, tool)) = COMPRESSED
        .iter()
        .find(|(magic, _, _)| data.starts_with(magic))
    {
        return Err(bad(format!(
            "it is {format}-compressed (as systemd-coredump stores cores): decompress it first with `{tool} {}`, or get it with `coredumpctl dump PID -o core`",
            path.display()
        )));
    }
    let core = CoreFile::parse(bytes).map_err(bad)?;
    let root = root.map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut opened = OpenedCore {
        path: path.to_path_buf(),
        core,
        root,
        files: HashMap::new(),
        warnings: Vec::new(),
    };
    opened.map_files();
    Ok(opened)
}

impl OpenedCore {
    /// Where the process's `path` is on this machine.
    pub fn host_path(&self, path: &str) -> PathBuf {
        // gcore run outside a container records paths as seen from outside.
        if self.root != Path::new("/") && Path::new(path).starts_with(&self.root) {
            return PathBuf::from(path);
        }
        self.root.join(path.trim_start_matches('/'))
    }

    /// Maps every file of the core's `NT_FILE` table into its memory, and
    /// warns about ELF files whose build id is not the one the core saw.
    fn map_files(&mut self) {
        let mappings = self.core.files.clone();
        for m in &mappings {
            let path = m.path.trim_end_matches(" (deleted)").to_string();
            if !self.files.contains_key(&path) {
                let host = self.host_path(&path);
                let bytes = map_file(&host).map_err(|e| format!("{}: {e}", host.display()));
                if let Ok(bytes) = &bytes {
                    self.check_build_id(m.start, m.offset, &path, bytes);
                }
                self.files.insert(path.clone(), bytes);
            }
            if let Some(Ok(bytes)) = self.files.get(&path) {
                self.core
                    .memory
                    .add_file(m.start, m.end, m.offset, bytes.clone());
            }
        }
    }

    fn check_build_id(&mut self, start: u64, offset: u64, path: &str, bytes: &SharedBytes) {
        if offset != 0 {
            return;
        }
        let Some(on_disk) = build_id::of_file((**bytes).as_ref()) else {
            return;
        };
        if let Some(in_core) = build_id::in_core(&self.core.memory, start) {
            if in_core != on_disk {
                self.warnings.push(format!(
                    "{} (build id {}) is not the file the process had mapped as {path} (build id {}): it changed since the core was written; what the core lacks is read from it and may be wrong (give --root the folder with the original files)",
                    self.host_path(path).display(),
                    build_id::hex(&on_disk),
                    build_id::hex(&in_core),
                ));
            }
        }
    }

    /// Parses a mapped file for `Interpreter::locate`.
    pub fn load_binary(&self, file: &MappedFile) -> Result<Binary> {
        let host = self.host_path(&file.path);
        match self.files.get(&file.path) {
            Some(Ok(bytes)) => Binary::parse(&file.path, (**bytes).as_ref(), file.base)
                .map_err(|detail| Error::Elf { path: host, detail }),
            _ => Err(Error::File {
                path: host,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
        }
    }

    /// The mapped files that could not be opened, as "path: reason".
    pub fn missing_files(&self) -> Vec<&str> {
        let mut missing: Vec<&str> = self
            .files
            .values()
            .filter_map(|f| f.as_ref().err().map(String::as_str))
            .collect();
        missing.sort_unstable();
        missing
    }
}

/// A read-only mapping of a whole file.
fn map_file(path: &Path) -> std::io::Result<SharedBytes> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Arc::new(Vec::<u8>::new()));
    }
    // SAFETY: a read-only private mapping; a file truncated under us could
    // raise SIGBUS, as for any mmap reader (a core being written is not
    // something to read anyway).
    let map = unsafe { memmap2::Mmap::map(&file) }?;
    Ok(Arc::new(map))
}
