//! ELF binaries mapped into the target (the python executable, libpython),
//! parsed from their bytes: the symbols the reader needs and the version
//! string they carry. Finding and opening the files is the caller's part.

use goblin::container::Ctx;
use goblin::elf::program_header::{ProgramHeader, PT_LOAD};
use goblin::elf::section_header::{SectionHeader, SHT_DYNSYM, SHT_SYMTAB};
use goblin::elf::sym::Symtab;
use goblin::elf::Elf;
use std::collections::HashMap;

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
    "PyList_Type",
    "PySet_Type",
    "PyFrozenSet_Type",
    "_Py_NoneStruct",
    "_Py_TrueStruct",
    "_Py_FalseStruct",
    // 2.7's False, named after the int zero it once was.
    "_Py_ZeroStruct",
    // glibc's dynamic loader: where each thread's rseq area is (process::rseq).
    "__rseq_offset",
    "__rseq_size",
];

/// One mapped ELF file, parsed once.
#[derive(Debug, Clone)]
pub struct Binary {
    /// Path as the target sees it.
    pub path: String,
    /// Added to a symbol's value to get its address in the target.
    pub bias: u64,
    symbols: HashMap<String, u64>,
    /// Version strings ("3.9.18") found in the read-only data, most frequent
    /// first; not looked for when the binary has `Py_Version`.
    pub version_strings: Vec<String>,
    /// Address in the target of the `.AsyncioDebug` section (3.14+'s
    /// `_asyncio` offsets), when this binary has one.
    pub asyncio_debug: Option<u64>,
}

impl Binary {
    /// Parses an ELF image mapped at `base` in the target. Only what is
    /// used is parsed (program and section headers, the symbol tables'
    /// entries, names compared in place): a full parse of libpython's
    /// relocations and string tables was most of attaching's CPU time.
    pub fn parse(path: &str, data: &[u8], base: u64) -> std::result::Result<Binary, String> {
        let header = Elf::parse_header(data).map_err(|e| e.to_string())?;
        let ctx = Ctx::new(
            header.container().map_err(|e| e.to_string())?,
            header.endianness().map_err(|e| e.to_string())?,
        );
        let program_headers =
            ProgramHeader::parse(data, header.e_phoff as usize, header.e_phnum as usize, ctx)
                .map_err(|e| e.to_string())?;
        let first_load = program_headers
            .iter()
            .filter(|p| p.p_type == PT_LOAD)
            .map(|p| p.p_vaddr & !0xfff)
            .min()
            .ok_or("no loadable segment")?;
        let bias = base.wrapping_sub(first_load);
        let sections =
            SectionHeader::parse(data, header.e_shoff as usize, header.e_shnum as usize, ctx)
                .unwrap_or_default();
        if sections.is_empty() {
            // Stripped of section headers (sstrip): only the dynamic
            // section leads to the symbols, which goblin's full parse follows.
            return Self::parse_dynamic_only(path, data, bias);
        }
        let mut symbols = HashMap::new();
        // .dynsym first, then .symtab, as the loader would resolve them.
        for kind in [SHT_DYNSYM, SHT_SYMTAB] {
            for table in sections.iter().filter(|s| s.sh_type == kind) {
                let Some(names) = sections.get(table.sh_link as usize) else {
                    continue;
                };
                let count = table.sh_size.checked_div(table.sh_entsize).unwrap_or(0);
                let Ok(syms) = Symtab::parse(data, table.sh_offset as usize, count as usize, ctx)
                else {
                    continue;
                };
                for sym in syms.iter().filter(|s| s.st_value != 0) {
                    let at = names.sh_offset.saturating_add(sym.st_name as u64);
                    if let Some(name) = wanted_name_at(data, at) {
                        symbols.entry(name.to_string()).or_insert(sym.st_value);
                    }
                }
            }
        }
        let section_names = sections.get(header.e_shstrndx as usize);
        let named = |s: &SectionHeader, name: &[u8]| {
            section_names.is_some_and(|n| {
                c_str_at(data, n.sh_offset.saturating_add(s.sh_name as u64)) == Some(name)
            })
        };
        let asyncio_debug = sections
            .iter()
            .find(|s| named(s, b".AsyncioDebug"))
            .map(|s| s.sh_addr.wrapping_add(bias));
        let rodata = sections
            .iter()
            .find(|s| named(s, b".rodata"))
            .and_then(|s| {
                data.get(s.sh_offset as usize..s.sh_offset.saturating_add(s.sh_size) as usize)
            })
            .unwrap_or(data);
        // 3.11+ publish their version in `Py_Version`: no need to scan.
        let version_strings = match symbols.contains_key("Py_Version") {
            true => Vec::new(),
            false => version_strings(rodata),
        };
        Ok(Binary {
            path: path.to_string(),
            bias,
            symbols,
            version_strings,
            asyncio_debug,
        })
    }

    fn parse_dynamic_only(
        path: &str,
        data: &[u8],
        bias: u64,
    ) -> std::result::Result<Binary, String> {
        let elf = Elf::parse(data).map_err(|e| e.to_string())?;
        let symbols = elf
            .dynsyms
            .iter()
            .filter(|s| s.st_value != 0)
            .filter_map(|s| {
                let name = elf.dynstrtab.get_at(s.st_name)?;
                WANTED_SYMBOLS
                    .contains(&name)
                    .then(|| (name.to_string(), s.st_value))
            })
            .collect();
        Ok(Binary {
            path: path.to_string(),
            bias,
            symbols,
            version_strings: version_strings(data),
            asyncio_debug: None,
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

/// The NUL-terminated string at byte `at` of `data` (at most 256 bytes).
fn c_str_at(data: &[u8], at: u64) -> Option<&[u8]> {
    let rest = data.get(usize::try_from(at).ok()?..)?;
    let len = rest.iter().take(256).position(|b| *b == 0)?;
    Some(&rest[..len])
}

/// The name at byte `at` of `data` if it is one of `WANTED_SYMBOLS`.
fn wanted_name_at(data: &[u8], at: u64) -> Option<&'static str> {
    let name = c_str_at(data, at)?;
    WANTED_SYMBOLS
        .iter()
        .copied()
        .find(|w| w.as_bytes() == name)
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
        if run >= 5 && is_version(candidate) {
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
            asyncio_debug: None,
        };
        assert_eq!(b.libpython_version(), Some((3, 6)));
    }
}
