//! Code objects: the function name, file, first line and line table of each,
//! read once and cached by address.

use crate::error::{Error, Result};
use crate::walk::linetable::{location_for_offset, LineTableFormat, Location};
use crate::walk::objects::ObjectReader;
use foldhash::HashMap;
use std::sync::Arc;

/// Largest line table read; bigger ones are cut (lines past the cut are unknown).
const MAX_LINE_TABLE: usize = 1 << 20;
/// Largest code-object header read (the fields used are in the first ~200 bytes).
const MAX_CODE_HEADER: u64 = 4096;
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
    /// Hash of the fields that identify this code object (see `fingerprint`).
    pub fingerprint: u64,
}

impl CodeInfo {
    /// CPython's own entry-frame code (3.12: "<interpreter trampoline>" in
    /// "<shim>"), which it never shows in a traceback. Its frames are
    /// normally marked as owned by the C stack; a thread caught while it
    /// starts can show one before the mark is set.
    pub fn is_interpreter_shim(&self) -> bool {
        self.filename == "<shim>" && self.name.starts_with("<interpreter trampoline>")
    }

    /// Source line of the instruction at `byte_offset` (negative: not started yet).
    pub fn line(&self, format: LineTableFormat, byte_offset: i64) -> u32 {
        self.location(format, byte_offset).line
    }

    /// Line and column (3.11+) of the instruction at `byte_offset`; line 0
    /// when unknown, column 0 when unknown or not recorded.
    pub fn location(&self, format: LineTableFormat, byte_offset: i64) -> Location {
        if byte_offset < 0 {
            return Location {
                line: self.first_line,
                column: 0,
            };
        }
        location_for_offset(
            format,
            &self.line_table,
            self.first_line,
            byte_offset as u32,
        )
        .unwrap_or_default()
    }
}

/// Code objects by address.
#[derive(Default)]
pub struct CodeCache {
    entries: HashMap<u64, Arc<CodeInfo>>,
}

impl CodeCache {
    /// The code object at `code`, from the cache when present. Use it only
    /// where the object cannot have been replaced since it was cached (a
    /// one-shot dump); samplers use `get_checked`.
    pub fn get(&mut self, reader: &ObjectReader, code: u64) -> Result<Arc<CodeInfo>> {
        if let Some(info) = self.entries.get(&code) {
            return Ok(info.clone());
        }
        self.insert(reader, code)
    }

    /// The code object at `code` whose identifying fields hash to
    /// `fingerprint` (read while the frame was paused). A cached entry with
    /// another fingerprint belonged to a freed code object whose address was
    /// reused: it is read again. If the object changed again since the
    /// fingerprint was taken, that is an error, never a stale name.
    pub fn get_checked(
        &mut self,
        reader: &ObjectReader,
        code: u64,
        fingerprint: u64,
    ) -> Result<Arc<CodeInfo>> {
        if let Some(info) = self
            .entries
            .get(&code)
            .filter(|i| i.fingerprint == fingerprint)
        {
            return Ok(info.clone());
        }
        let info = self.insert(reader, code)?;
        if info.fingerprint != fingerprint {
            self.entries.remove(&code);
            return Err(Error::Changed {
                what: "code object",
                addr: code,
            });
        }
        Ok(info)
    }

    fn insert(&mut self, reader: &ObjectReader, code: u64) -> Result<Arc<CodeInfo>> {
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

/// The bytes of a code object that `fingerprint` hashes: from the first to
/// the last identifying field. Returns (offset, length).
pub fn fingerprint_span(layout: &crate::interpreter::Layout) -> (u64, usize) {
    let l = &layout.code;
    let fields = [
        Some(l.name),
        l.qualname,
        Some(l.filename),
        Some(l.firstlineno),
        Some(l.linetable),
    ];
    let present = fields.iter().copied().flatten();
    let start = present.clone().min().unwrap_or(0);
    let end = present.max().unwrap_or(0).saturating_add(8);
    // Bounded like `read_code`'s header (a hostile layout reads nothing).
    (
        start,
        end.saturating_sub(start).min(MAX_CODE_HEADER) as usize,
    )
}

/// A hash of the fields that tell one code object from another: name,
/// qualified name, file and line-table pointers, first line. `bytes` holds
/// the object's memory from offset `base`. Fields that change during a code
/// object's life (monitoring, counters) are left out.
pub fn fingerprint(interp: &crate::interpreter::Interpreter, bytes: &[u8], base: u64) -> u64 {
    let l = &interp.layout.code;
    let mut hash = ContentHash::default();
    for (field, width) in [
        (Some(l.name), 8),
        (l.qualname, 8),
        (Some(l.filename), 8),
        (Some(l.linetable), 8),
        (Some(l.firstlineno), 4),
    ] {
        let Some(field) = field else { continue };
        let value = crate::memory::word_at(bytes, field.wrapping_sub(base));
        let value = if width == 4 {
            value & 0xffff_ffff
        } else {
            value
        };
        hash.add(&value.to_le_bytes());
    }
    hash.0
}

/// Bytes of each object a code object names (name, file, line table) that
/// go into its fingerprint: from its type pointer on (the reference count,
/// which changes all the time, is skipped), covering length, hash and the
/// first characters. Pointers alone are not enough: freed objects are
/// reused last-in first-out, so a new function's code object and strings can
/// land at exactly the addresses of an old one's (seen on 3.9 with `exec` in
/// a loop: a cached "g_254" shown for g_256).
pub const CONTENT_HEAD: (u64, usize) = (8, 64);

/// The addresses of the objects whose heads `with_contents` hashes,
/// from a code object's bytes (`bytes` from offset `base`).
pub fn content_refs(interp: &crate::interpreter::Interpreter, bytes: &[u8], base: u64) -> [u64; 3] {
    let l = &interp.layout.code;
    let word = |field: u64| crate::memory::word_at(bytes, field.wrapping_sub(base));
    [word(display_name(l)), word(l.filename), word(l.linetable)]
}

/// The name shown for a code object: its qualified name where the version
/// has one (3.11+), else its plain name.
fn display_name(l: &crate::interpreter::layout::CodeOffsets) -> u64 {
    l.qualname.unwrap_or(l.name)
}

/// `fingerprint` extended with the heads of the objects at `refs`
/// (`heads`: `CONTENT_HEAD.1` bytes each, zeros for one not read).
pub fn with_contents(fingerprint: u64, heads: &[u8]) -> u64 {
    let mut hash = ContentHash(fingerprint);
    hash.add(heads);
    hash.0
}

/// Reads the heads of the objects at `refs`, in one batched call; zeros
/// where one could not be read.
pub fn read_heads(mem: &dyn crate::memory::MemorySource, refs: &[u64], out: &mut Vec<u8>) {
    let (skip, len) = CONTENT_HEAD;
    out.clear();
    out.resize(refs.len() * len, 0);
    let mut requests: Vec<(u64, &mut [u8])> = refs
        .iter()
        .zip(out.chunks_mut(len))
        .filter(|(r, _)| **r != 0)
        .map(|(r, b)| (r.wrapping_add(skip), b))
        .collect();
    let done = mem.read_many(&mut requests);
    for (_, buf) in requests.iter_mut().skip(done) {
        buf.fill(0);
    }
}

/// The hash of fingerprints: foldhash seeded with the value so far, which
/// takes a line table's head in a few steps where byte-wise FNV took 64.
struct ContentHash(u64);

impl Default for ContentHash {
    fn default() -> Self {
        ContentHash(0xcbf2_9ce4_8422_2325)
    }
}

impl ContentHash {
    fn add(&mut self, bytes: &[u8]) {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = foldhash::fast::FixedState::with_seed(self.0).build_hasher();
        hasher.write(bytes);
        self.0 = hasher.finish();
    }
}

/// Reads a code object's header in one call, then its strings.
pub fn read_code(reader: &ObjectReader, code: u64) -> Result<CodeInfo> {
    let l = &reader.interp.layout.code;
    let known_type = reader.interp.types.code_type;
    if known_type != 0 && reader.type_of(code)? != known_type {
        return Err(Error::WrongType {
            expected: "code object",
            addr: code,
        });
    }
    let fields = [
        Some(l.name),
        l.qualname,
        Some(l.filename),
        Some(l.firstlineno),
        Some(l.linetable),
        l.firsttraceable,
        Some(l.argcount),
        l.kwonlyargcount,
        Some(l.flags),
        l.varnames,
        l.localsplusnames,
        l.localspluskinds,
    ];
    let end = fields
        .iter()
        .copied()
        .flatten()
        .max()
        .unwrap_or(0)
        .saturating_add(8);
    if end > MAX_CODE_HEADER {
        return Err(Error::LayoutField {
            field: "code object header size",
            value: end,
        });
    }
    let header = reader.mem.read_vec(code, end as usize)?;
    let u64_at = |at: u64| crate::memory::word_at(&header, at);
    let i32_at = |at: u64| u64_at(at) as u32;
    // A count the version lacks (`_co_firsttraceable` before 3.11,
    // `co_kwonlyargcount` on 2.7) is 0.
    let i32_or_0 = |at: Option<u64>| at.map_or(0, i32_at);
    let name = reader.text(u64_at(display_name(l)))?;
    let filename = reader.text(u64_at(l.filename))?;
    let line_table = reader
        .bytes(u64_at(l.linetable), MAX_LINE_TABLE)
        .unwrap_or_default();
    let first_traceable = i32_or_0(l.firsttraceable).saturating_mul(2);
    let mut heads = Vec::new();
    read_heads(
        reader.mem,
        &content_refs(reader.interp, &header, 0),
        &mut heads,
    );
    Ok(CodeInfo {
        fingerprint: with_contents(fingerprint(reader.interp, &header, 0), &heads),
        name,
        filename,
        first_line: i32_at(l.firstlineno),
        line_table,
        first_traceable,
        arg_count: i32_at(l.argcount).saturating_add(i32_or_0(l.kwonlyargcount)),
        flags: i32_at(l.flags),
    })
}
