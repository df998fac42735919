//! ELF binaries mapped into the target (the python executable, libpython):
//! the symbols pysampler needs and the version string they carry.

use crate::error::{Error, Result};
use crate::process::maps::MappedFile;
use crate::process::ProcessInfo;
use goblin::elf::{program_header::PT_LOAD, Elf};
use std::collections::HashMap;
use std::path::PathBuf;

/// Symbols pysampler looks up; anything else in the symbol tables is ignored.
pub const WANTED_SYMBOLS: &[&str] = &[
    "_PyRuntime",
    "interp_head",
    "_PyThreadState_Current",
    "Py_Version",
    "PyCode_Type",
    "PyLong_Type",
    "PyInt_Type",
    "PyFloat_Type",
    "PyBool_Type",
    "PyUnicode_Type",
    "PyBytes_Type",
    "PyString_Type",
    "PyTuple_Type",
    "PyDict_Type",
    "_Py_NoneStruct",
    "_Py_TrueStruct",
    "_Py_FalseStruct",
];

/// One mapped ELF file, parsed once.
#[derive(Debug, Clone)]
pub struct Binary {
    /// Path as the target sees it.
    pub path: String,
    /// Added to a symbol's value to get its address in the target.
    pub bias: u64,
    symbols: HashMap<String, u64>,
    /// Version strings ("3.9.18") found in the read-only data, most frequent first.
    pub version_strings: Vec<String>,
}

impl Binary {
    /// Opens `file` through the process's root (so binaries inside containers
    /// are found), falling back to `/proc/PID/map_files` when the path was
    /// deleted or replaced since the process started.
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
        // SAFETY: read-only private mapping; a binary that changes under us
        // yields bad symbols at worst, which every reader tolerates.
        let map = unsafe { memmap2::Mmap::map(&handle) }.map_err(|source| Error::File {
            path: by_path.clone(),
            source,
        })?;
        Self::parse(&file.path, &map, file.base).map_err(|detail| Error::Elf {
            path: by_path,
            detail,
        })
    }

    /// Parses an ELF image mapped at `base` in the target.
    pub fn parse(path: &str, data: &[u8], base: u64) -> std::result::Result<Binary, String> {
        let elf = Elf::parse(data).map_err(|e| e.to_string())?;
        let first_load = elf
            .program_headers
            .iter()
            .filter(|p| p.p_type == PT_LOAD)
            .map(|p| p.p_vaddr & !0xfff)
            .min()
            .ok_or("no loadable segment")?;
        let bias = base.wrapping_sub(first_load);
        let mut symbols = HashMap::new();
        let tables = [(&elf.dynsyms, &elf.dynstrtab), (&elf.syms, &elf.strtab)];
        for (syms, strings) in tables {
            for sym in syms.iter() {
                if sym.st_value == 0 {
                    continue;
                }
                if let Some(name) = strings.get_at(sym.st_name) {
                    if WANTED_SYMBOLS.contains(&name) {
                        symbols.entry(name.to_string()).or_insert(sym.st_value);
                    }
                }
            }
        }
        let rodata = elf
            .section_headers
            .iter()
            .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".rodata"))
            .and_then(|s| data.get(s.sh_offset as usize..(s.sh_offset + s.sh_size) as usize))
            .unwrap_or(data);
        Ok(Binary {
            path: path.to_string(),
            bias,
            symbols,
            version_strings: version_strings(rodata),
        })
    }

    /// Address of `name` in the target, if the binary defines it.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).map(|v| v.wrapping_add(self.bias))
    }

    /// The `X.Y` in a `libpythonX.Y[m].so` file name.
    pub fn libpython_version(&self) -> Option<(u32, u32)> {
        let name = self.path.rsplit('/').next()?;
        let rest = name.strip_prefix("libpython")?;
        let (major, rest) = rest.split_once('.')?;
        let minor: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        Some((major.parse().ok()?, minor.parse().ok()?))
    }
}

/// Finds NUL-terminated "X.Y.Z" strings (X = 2 or 3), such as PY_VERSION or
/// the tail of the install prefix, most frequent first.
fn version_strings(data: &[u8]) -> Vec<String> {
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for (end, _) in data.iter().enumerate().filter(|(_, b)| **b == 0) {
        let start = end.saturating_sub(12);
        let window = &data[start..end];
        // The candidate is the longest run of digits and dots before the NUL.
        let run = window
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit() || **b == b'.' || **b == b'+')
            .count();
        let candidate = &window[window.len() - run..];
        if is_version(candidate) {
            *counts.entry(candidate).or_default() += 1;
        }
    }
    let mut found: Vec<(&[u8], usize)> = counts.into_iter().collect();
    found.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    found
        .into_iter()
        .map(|(v, _)| String::from_utf8_lossy(v).trim_end_matches('+').to_string())
        .collect()
}

fn is_version(s: &[u8]) -> bool {
    let text = match std::str::from_utf8(s) {
        Ok(t) => t.trim_end_matches('+'),
        Err(_) => return false,
    };
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && (parts[0] == "2" || parts[0] == "3")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_versions_at_string_ends() {
        let data = b"x\0/root/.pyenv/versions/3.9.18\0Python-3.9.18\0GNU 12.2.0\0 3.9\0";
        assert_eq!(version_strings(data), vec!["3.9.18".to_string()]);
    }

    #[test]
    fn libpython_names() {
        let b = Binary {
            path: "/usr/lib/libpython3.6m.so.1.0".into(),
            bias: 0,
            symbols: HashMap::new(),
            version_strings: vec![],
        };
        assert_eq!(b.libpython_version(), Some((3, 6)));
    }
}
