//! Code objects: the function name, file, first line and line table of each,
//! read once and cached by address.

use crate::error::{Error, Result};
use crate::walk::linetable::{line_for_offset, LineTableFormat};
use crate::walk::objects::ObjectReader;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest line table read; bigger ones are cut (lines past the cut are unknown).
const MAX_LINE_TABLE: usize = 1 << 20;
/// Entries kept before the cache is cleared (bounds memory on long runs over
/// programs that keep creating code, e.g. `exec` in a loop).
const MAX_CACHED_CODE: usize = 100_000;

/// What pysampler knows about one code object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeInfo {
    /// Qualified name where the version has one (3.11+), else the plain name.
    pub name: String,
    pub filename: String,
    pub first_line: u32,
    pub line_table: Vec<u8>,
    /// First instruction (bytes) of a frame that is complete (3.11+).
    pub first_traceable: u32,
    pub arg_count: u32,
    /// Flags word (`CO_VARARGS`, `CO_VARKEYWORDS`).
    pub flags: u32,
}

impl CodeInfo {
    /// Source line of the instruction at `byte_offset` (negative: not started yet).
    pub fn line(&self, format: LineTableFormat, byte_offset: i64) -> u32 {
        if byte_offset < 0 {
            return self.first_line;
        }
        line_for_offset(
            format,
            &self.line_table,
            self.first_line,
            byte_offset as u32,
        )
        .unwrap_or(0)
    }
}

/// Code objects by address.
#[derive(Default)]
pub struct CodeCache {
    entries: HashMap<u64, Arc<CodeInfo>>,
}

impl CodeCache {
    pub fn get(&mut self, reader: &ObjectReader, code: u64) -> Result<Arc<CodeInfo>> {
        if let Some(info) = self.entries.get(&code) {
            return Ok(info.clone());
        }
        let info = Arc::new(read_code(reader, code)?);
        if self.entries.len() >= MAX_CACHED_CODE {
            self.entries.clear();
        }
        self.entries.insert(code, info.clone());
        Ok(info)
    }

    /// Forgets everything (after the target may have freed code objects).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Reads a code object's header in one call, then its strings.
pub fn read_code(reader: &ObjectReader, code: u64) -> Result<CodeInfo> {
    let l = &reader.interp.layout.code;
    let known_type = reader.interp.types.code_type;
    if known_type != 0 && reader.type_of(code)? != known_type {
        return Err(Error::BadData(format!("0x{code:x} is not a code object")));
    }
    let fields = [
        l.name,
        l.qualname,
        l.filename,
        l.firstlineno,
        l.linetable,
        l.firsttraceable,
        l.argcount,
        l.kwonlyargcount,
        l.flags,
        l.varnames,
        l.localsplusnames,
        l.localspluskinds,
    ];
    let end = fields.iter().copied().max().unwrap_or(0) + 8;
    let header = reader.mem.read_vec(code, end as usize)?;
    // A field the version lacks has offset 0 and reads as 0.
    let u64_at = |at: u64| {
        if at == 0 {
            0
        } else {
            crate::process::memory::word_at(&header, at)
        }
    };
    let i32_at = |at: u64| u64_at(at) as u32;
    let has_qualname = reader.interp.version.at_least(3, 11);
    let name = reader.text(u64_at(if has_qualname { l.qualname } else { l.name }))?;
    let filename = reader.text(u64_at(l.filename))?;
    let line_table = reader
        .bytes(u64_at(l.linetable), MAX_LINE_TABLE)
        .unwrap_or_default();
    let first_traceable = i32_at(l.firsttraceable).saturating_mul(2);
    Ok(CodeInfo {
        name,
        filename,
        first_line: i32_at(l.firstlineno),
        line_table,
        first_traceable,
        arg_count: i32_at(l.argcount).saturating_add(i32_at(l.kwonlyargcount)),
        flags: i32_at(l.flags),
    })
}
