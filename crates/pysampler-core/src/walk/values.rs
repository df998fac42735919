//! How much of a local's value `dump` shows: `-l` a short repr (scalars,
//! strings cut at 64 characters, containers by type and address), `-ll` a
//! longer one with the first elements of lists, tuples, dicts, sets and
//! frozensets, nested a few levels. Every read is bounded: element counts,
//! depth, the table scanned in a set, and the characters of the result.

use crate::error::{Error, Result};
use crate::interpreter::LanguageFamily;
use crate::memory::word_at;
use crate::walk::dict;
use crate::walk::objects::{words, ObjectReader};

/// Bounds of one value's repr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueLimits {
    /// Characters of a string (bytes of a bytes object) before it is cut.
    pub string_chars: usize,
    /// Elements shown of a container; the rest are counted (`... 7 more`).
    pub items: usize,
    /// Containers nested deeper than this are shown as `[...]`; 0 shows no
    /// container's elements.
    pub depth: usize,
    /// Characters of the whole repr before it is cut (then ends in `...`).
    pub total_chars: usize,
}

impl ValueLimits {
    /// `dump -l`.
    pub const SHORT: ValueLimits = ValueLimits {
        string_chars: 64,
        items: 0,
        depth: 0,
        total_chars: 4000,
    };
    /// `dump -ll`.
    pub const LONG: ValueLimits = ValueLimits {
        string_chars: 1000,
        items: 10,
        depth: 3,
        total_chars: 4000,
    };
}

/// Which locals `StackReader::read` reads: none, short values (`-l`) or
/// long ones (`-ll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalsDetail {
    None,
    Short,
    Long,
}

impl LocalsDetail {
    /// `-l` given `count` times.
    pub fn from_count(count: u8) -> LocalsDetail {
        match count {
            0 => LocalsDetail::None,
            1 => LocalsDetail::Short,
            _ => LocalsDetail::Long,
        }
    }

    pub fn limits(self) -> Option<ValueLimits> {
        match self {
            LocalsDetail::None => None,
            LocalsDetail::Short => Some(ValueLimits::SHORT),
            LocalsDetail::Long => Some(ValueLimits::LONG),
        }
    }
}

impl From<bool> for LocalsDetail {
    fn from(with_locals: bool) -> LocalsDetail {
        if with_locals {
            LocalsDetail::Short
        } else {
            LocalsDetail::None
        }
    }
}

/// Base classes followed to tell a subclass of a container type.
const MAX_BASES: usize = 32;
/// Largest list, tuple, dict or set size believed.
const MAX_CONTAINER_LEN: i64 = 1 << 40;
/// Set table entries scanned for the first elements (a hostile mask is huge).
const MAX_SET_SLOTS_SCANNED: u64 = 1 << 20;
/// Set entries read per call.
const SET_CHUNK: u64 = 64;
/// 2.7's set marks a removed element with this string (3.x sets hash -1).
const DUMMY_KEY_27: &[u8] = b"<dummy key>";

/// The repr of `obj` within `limits`; never fails (what cannot be read is
/// shown as `<unreadable at 0x…>`).
pub fn value_repr(reader: &ObjectReader, obj: u64, limits: &ValueLimits) -> String {
    if limits.depth == 0 {
        return reader.short_repr(obj, limits.string_chars);
    }
    let mut repr = Repr {
        reader,
        limits,
        out: String::new(),
        chars: 0,
        open: Vec::new(),
    };
    repr.value(obj, 0);
    repr.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Tuple,
    Dict,
    Set,
    FrozenSet,
}

enum Elements {
    Single(Vec<u64>),
    Pairs(Vec<(u64, u64)>),
}

impl Elements {
    fn len(&self) -> usize {
        match self {
            Elements::Single(v) => v.len(),
            Elements::Pairs(v) => v.len(),
        }
    }
}

struct Repr<'r, 'a> {
    reader: &'r ObjectReader<'a>,
    limits: &'r ValueLimits,
    out: String,
    chars: usize,
    /// Containers being printed, to show a cycle as `[...]`.
    open: Vec<u64>,
}

impl Repr<'_, '_> {
    fn full(&self) -> bool {
        self.chars > self.limits.total_chars
    }

    fn push(&mut self, s: &str) {
        if !self.full() {
            self.chars += s.chars().count();
            self.out.push_str(s);
        }
    }

    fn finish(self) -> String {
        if !self.full() {
            return self.out;
        }
        let mut cut: String = self.out.chars().take(self.limits.total_chars).collect();
        cut.push_str("...");
        cut
    }

    fn value(&mut self, obj: u64, depth: usize) {
        if self.full() {
            return;
        }
        match self.kind(obj) {
            Some((kind, subclass)) => self.container(obj, kind, subclass, depth),
            None => {
                let s = self.reader.short_repr(obj, self.limits.string_chars);
                self.push(&s);
            }
        }
    }

    /// The container kind of `obj`, and its type's name when it is a subclass.
    fn kind(&self, obj: u64) -> Option<(Kind, Option<String>)> {
        let t = &self.reader.interp.types;
        let exact = |ty: u64| {
            let known = [
                (t.list_type, Kind::List),
                (t.tuple_type, Kind::Tuple),
                (t.dict_type, Kind::Dict),
                (t.set_type, Kind::Set),
                (t.frozenset_type, Kind::FrozenSet),
            ];
            known
                .iter()
                .find(|(addr, _)| *addr != 0 && *addr == ty)
                .map(|(_, kind)| *kind)
        };
        if obj == 0 {
            return None;
        }
        let ty = self.reader.type_of(obj).ok()?;
        if let Some(kind) = exact(ty) {
            return Some((kind, None));
        }
        let base_at = self.reader.interp.layout.type_.base?;
        let mut base = ty;
        for _ in 0..MAX_BASES {
            base = self.reader.ptr(base.wrapping_add(base_at)).ok()?;
            if base == 0 {
                return None;
            }
            if let Some(kind) = exact(base) {
                return Some((kind, Some(self.reader.type_name(ty).ok()?)));
            }
        }
        None
    }

    fn container(&mut self, obj: u64, kind: Kind, subclass: Option<String>, depth: usize) {
        let set_like = matches!(kind, Kind::Set | Kind::FrozenSet);
        let (mut open, mut close) = match kind {
            Kind::List => ("[".to_string(), "]".to_string()),
            Kind::Tuple => ("(".into(), ")".into()),
            Kind::Dict | Kind::Set => ("{".into(), "}".into()),
            Kind::FrozenSet => ("frozenset({".into(), "})".into()),
        };
        // A subclass wraps its base's form in its name; a set subclass
        // prints as Python does, `MySet({1, 2})`.
        if let Some(name) = &subclass {
            if set_like {
                open = format!("{name}({{");
                close = "})".into();
            } else {
                open = format!("{name}({open}");
                close = format!("{close})");
            }
        }
        if depth >= self.limits.depth || self.open.contains(&obj) {
            self.push(&open);
            self.push("...");
            self.push(&close);
            return;
        }
        let (count, elements) = match self.elements(obj, kind) {
            Ok(found) => found,
            Err(_) => {
                let s = self.reader.short_repr(obj, self.limits.string_chars);
                self.push(&s);
                return;
            }
        };
        if count == 0 {
            let empty = match (kind, &subclass) {
                (_, Some(name)) if set_like => format!("{name}()"),
                (Kind::Set, None) => "set()".into(),
                (Kind::FrozenSet, None) => "frozenset()".into(),
                _ => format!("{open}{close}"),
            };
            self.push(&empty);
            return;
        }
        self.open.push(obj);
        self.push(&open);
        match &elements {
            Elements::Single(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.value(*item, depth + 1);
                }
            }
            Elements::Pairs(items) => {
                for (i, (key, value)) in items.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.value(*key, depth + 1);
                    self.push(": ");
                    self.value(*value, depth + 1);
                }
            }
        }
        let shown = elements.len();
        if count > shown {
            let sep = if shown > 0 { ", " } else { "" };
            self.push(&format!("{sep}... {} more", count - shown));
        } else if kind == Kind::Tuple && count == 1 {
            self.push(",");
        }
        self.push(&close);
        self.open.pop();
    }

    /// The element count of a container and its first `limits.items` elements.
    fn elements(&self, obj: u64, kind: Kind) -> Result<(usize, Elements)> {
        let r = self.reader;
        let l = &r.interp.layout;
        let want = self.limits.items;
        match kind {
            Kind::List | Kind::Tuple => {
                let (seq, inline) = if kind == Kind::List {
                    (&l.list, false)
                } else {
                    (&l.tuple, true)
                };
                let n = self.count(obj, seq.size, "sequence size")?;
                let items_at = obj.wrapping_add(seq.items);
                let items = if inline { items_at } else { r.ptr(items_at)? };
                let shown = n.min(want);
                let raw = r.mem.read_vec(items, shown * 8)?;
                Ok((n, Elements::Single(words(&raw))))
            }
            Kind::Dict => {
                let n = self.count(obj, l.dict.used, "dict size")?;
                let mut pairs = dict::items(r, obj)?;
                pairs.truncate(want);
                Ok((n, Elements::Pairs(pairs)))
            }
            Kind::Set | Kind::FrozenSet => self.set_elements(obj),
        }
    }

    fn count(&self, obj: u64, at: u64, what: &'static str) -> Result<usize> {
        let n = self.reader.mem.read_u64(obj.wrapping_add(at))? as i64;
        if !(0..=MAX_CONTAINER_LEN).contains(&n) {
            return Err(Error::Implausible {
                what,
                addr: obj,
                value: n,
            });
        }
        Ok(n as usize)
    }

    /// A set's open table, scanned in order (Python's iteration order) until
    /// enough elements are found; empty and removed slots are skipped.
    fn set_elements(&self, obj: u64) -> Result<(usize, Elements)> {
        let r = self.reader;
        let layout = &r.interp.layout;
        let (mask_at, table_at, used_at) = (
            crate::need!(layout, set.mask)?,
            crate::need!(layout, set.table)?,
            crate::need!(layout, set.used)?,
        );
        let (entry_size, key_at, hash_at) = (
            crate::need!(layout, set.entry_size)?,
            crate::need!(layout, set.entry_key)?,
            crate::need!(layout, set.entry_hash)?,
        );
        if !(16..=64).contains(&entry_size) || key_at + 8 > entry_size || hash_at + 8 > entry_size {
            return Err(Error::LayoutField {
                field: "set entry size",
                value: entry_size,
            });
        }
        let n = self.count(obj, used_at, "set size")?;
        let slots = r
            .mem
            .read_u64(obj.wrapping_add(mask_at))?
            .saturating_add(1)
            .min(MAX_SET_SLOTS_SCANNED);
        let table = r.ptr(obj.wrapping_add(table_at))?;
        let is_py2 = r.interp.families.language == LanguageFamily::Python2;
        let mut found = Vec::new();
        let mut slot = 0;
        while slot < slots && found.len() < self.limits.items.min(n) {
            let chunk = SET_CHUNK.min(slots - slot);
            let at = table.wrapping_add(slot * entry_size);
            let raw = r.mem.read_vec(at, (chunk * entry_size) as usize)?;
            for entry in raw.chunks_exact(entry_size as usize) {
                let key = word_at(entry, key_at);
                let hash = word_at(entry, hash_at) as i64;
                let removed = if is_py2 {
                    self.is_dummy_27(key)
                } else {
                    hash == -1
                };
                if key != 0 && !removed && found.len() < self.limits.items {
                    found.push(key);
                }
            }
            slot += chunk;
        }
        Ok((n, Elements::Single(found)))
    }

    /// 2.7 marks a removed set element with a `str` "<dummy key>" object.
    fn is_dummy_27(&self, key: u64) -> bool {
        let r = self.reader;
        r.type_of(key).ok() == Some(r.interp.types.bytes_type)
            && r.bytes(key, DUMMY_KEY_27.len() + 1).ok().as_deref() == Some(DUMMY_KEY_27)
    }
}
