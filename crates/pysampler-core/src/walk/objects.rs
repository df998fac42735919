//! Reading Python objects out of the target: strings, numbers, tuples, and a
//! short repr of a value for `--locals`. Everything is capped: the target's
//! memory is hostile input.

use crate::error::{Error, Result};
use crate::interpreter::{Interpreter, LanguageFamily};
use crate::memory::MemorySource;

/// Longest string read, in characters; longer ones are cut.
pub const MAX_STRING_CHARS: usize = 4096;
/// Longest tuple read (names of locals).
pub const MAX_TUPLE_ITEMS: usize = 65_536;

/// Reads objects of one interpreter through one memory source.
pub struct ObjectReader<'a> {
    pub mem: &'a dyn MemorySource,
    pub interp: &'a Interpreter,
}

impl<'a> ObjectReader<'a> {
    pub fn new(mem: &'a dyn MemorySource, interp: &'a Interpreter) -> Self {
        ObjectReader { mem, interp }
    }

    pub fn ptr(&self, addr: u64) -> Result<u64> {
        self.mem.read_u64(addr)
    }

    pub fn type_of(&self, obj: u64) -> Result<u64> {
        self.ptr(obj.wrapping_add(self.interp.layout.object.ob_type))
    }

    /// A `str` on Python 3, a `str` (bytes) on 2.7: what code objects use for names.
    pub fn text(&self, obj: u64) -> Result<String> {
        match self.interp.families.language {
            LanguageFamily::Python2 => self
                .bytes(obj, MAX_STRING_CHARS)
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            LanguageFamily::Python3 => self.unicode(obj, MAX_STRING_CHARS),
        }
    }

    /// Bytes of a `bytes` (2.7 `str`) object, at most `cap` of them.
    pub fn bytes(&self, obj: u64, cap: usize) -> Result<Vec<u8>> {
        let l = &self.interp.layout.bytes;
        let size = self.mem.read_u64(obj.wrapping_add(l.size))? as i64;
        if size < 0 {
            return Err(Error::Implausible {
                what: "bytes size",
                addr: obj,
                value: size,
            });
        }
        let len = (size as usize).min(cap);
        self.mem.read_vec(obj.wrapping_add(l.sval), len)
    }

    /// A Python 3 `str` (PEP 393 layout), cut at `cap` characters.
    pub fn unicode(&self, obj: u64, cap: usize) -> Result<String> {
        let layout = &self.interp.layout;
        let l = &layout.unicode;
        let (state_at, ascii_size, compact_size) = (
            crate::need!(layout, unicode.state)?,
            crate::need!(layout, unicode.ascii_size)?,
            crate::need!(layout, unicode.compact_size)?,
        );
        let (kind_shift, compact_shift, ascii_shift) = (
            crate::need!(layout, unicode.kind_shift)?,
            crate::need!(layout, unicode.compact_shift)?,
            crate::need!(layout, unicode.ascii_shift)?,
        );
        let mut header = [0u8; 128];
        let header_len = (compact_size as usize + 8).min(header.len());
        self.mem.read(obj, &mut header[..header_len])?;
        let word = |at: u64| crate::memory::word_at(&header, at);
        let length = word(l.length) as i64;
        let state = word(state_at) as u32;
        let bit = |shift: u64| state.checked_shr(shift as u32).unwrap_or(0);
        let kind = (bit(kind_shift) & 7) as usize;
        let compact = bit(compact_shift) & 1 == 1;
        let ascii = bit(ascii_shift) & 1 == 1;
        if length < 0 || !matches!(kind, 1 | 2 | 4) {
            return Err(Error::WrongType {
                expected: "str",
                addr: obj,
            });
        }
        let data = match (compact, ascii) {
            (true, true) => obj.wrapping_add(ascii_size),
            (true, false) => obj.wrapping_add(compact_size),
            (false, _) => word(compact_size),
        };
        let chars = (length as usize).min(cap);
        let raw = self.mem.read_vec(data, chars * kind)?;
        Ok(decode_units(&raw, kind))
    }

    /// A 2.7 `unicode` object.
    pub fn unicode27(&self, obj: u64, cap: usize) -> Result<String> {
        let layout = &self.interp.layout;
        let (data_at, char_size) = (
            crate::need!(layout, unicode.data)?,
            crate::need!(layout, unicode.char_size)?,
        );
        let length = self.mem.read_u64(obj.wrapping_add(layout.unicode.length))? as i64;
        let data = self.ptr(obj.wrapping_add(data_at))?;
        let width = char_size as usize;
        if length < 0 || !matches!(width, 2 | 4) {
            return Err(Error::WrongType {
                expected: "unicode",
                addr: obj,
            });
        }
        let chars = (length as usize).min(cap);
        let raw = self.mem.read_vec(data, chars * width)?;
        Ok(decode_units(&raw, width))
    }

    /// Item pointers of a tuple, at most `cap`.
    pub fn tuple_items(&self, obj: u64, cap: usize) -> Result<Vec<u64>> {
        let l = &self.interp.layout.tuple;
        let size = self.mem.read_u64(obj.wrapping_add(l.size))? as i64;
        if size < 0 || size as usize > MAX_TUPLE_ITEMS {
            return Err(Error::Implausible {
                what: "tuple size",
                addr: obj,
                value: size,
            });
        }
        let n = (size as usize).min(cap);
        let raw = self.mem.read_vec(obj.wrapping_add(l.items), n * 8)?;
        Ok(words(&raw))
    }

    /// An `int`'s value, when it fits in an i128.
    pub fn int_value(&self, obj: u64) -> Result<Option<i128>> {
        let layout = &self.interp.layout;
        let l = &layout.long;
        let tag = self.mem.read_u64(obj.wrapping_add(l.size))?;
        // 3.12+ tag the digit count with the sign; before, `ob_size` is signed.
        let (negative, ndigits) = match (l.non_size_bits, l.sign_mask, l.sign_negative) {
            (Some(bits), Some(mask), Some(negative)) => {
                let shifted = u32::try_from(bits).ok().and_then(|b| tag.checked_shr(b));
                (tag & mask == negative, shifted.unwrap_or(0) as usize)
            }
            (None, None, None) => {
                let size = tag as i64;
                (size < 0, size.unsigned_abs() as usize)
            }
            _ => return Err(layout.missing("long.non_size_bits, sign_mask and sign_negative")),
        };
        let bits = l.digit_bits as usize;
        let width = if bits <= 15 { 2 } else { 4 };
        if bits == 0 || ndigits.checked_mul(bits).map_or(true, |b| b > 126) {
            return Ok(None);
        }
        let raw = self
            .mem
            .read_vec(obj.wrapping_add(l.digits), ndigits * width)?;
        let mut value: i128 = 0;
        for (i, digit) in raw.chunks_exact(width).enumerate() {
            let d = if width == 2 {
                u16::from_le_bytes([digit[0], digit[1]]) as i128
            } else {
                u32::from_le_bytes([digit[0], digit[1], digit[2], digit[3]]) as i128
            };
            value |= (d & ((1 << bits) - 1)) << (i * bits);
        }
        Ok(Some(if negative { -value } else { value }))
    }

    /// The value of an `int` (or 2.7 `int`/`long`), None for other types or
    /// values too large for an i128.
    pub fn integer(&self, obj: u64) -> Result<Option<i128>> {
        let t = &self.interp.types;
        let ty = self.type_of(obj)?;
        if ty == t.int_type && t.int_type != 0 {
            let layout = &self.interp.layout;
            let v = self
                .mem
                .read_u64(obj.wrapping_add(crate::need!(layout, long.int_value)?))?;
            return Ok(Some(v as i64 as i128));
        }
        if ty == t.long_type || ty == t.bool_type {
            return self.int_value(obj);
        }
        Ok(None)
    }

    /// A short, safe repr of any object: the value for simple types, else
    /// `<type at 0x…>`.
    pub fn short_repr(&self, obj: u64, max_chars: usize) -> String {
        self.try_repr(obj, max_chars)
            .unwrap_or_else(|_| format!("<unreadable at 0x{obj:x}>"))
    }

    fn try_repr(&self, obj: u64, max_chars: usize) -> Result<String> {
        let t = &self.interp.types;
        if obj == 0 {
            return Ok("<NULL>".into());
        }
        if obj == t.none && t.none != 0 {
            return Ok("None".into());
        }
        if obj == t.true_ && t.true_ != 0 {
            return Ok("True".into());
        }
        if obj == t.false_ && t.false_ != 0 {
            return Ok("False".into());
        }
        let ty = self.type_of(obj)?;
        if ty == 0 {
            return Err(Error::Implausible {
                what: "type pointer",
                addr: obj,
                value: 0,
            });
        }
        if ty == t.long_type || (ty == t.int_type && t.int_type != 0) {
            return Ok(match self.integer(obj)? {
                Some(v) => v.to_string(),
                None => format!("<int at 0x{obj:x}>"),
            });
        }
        if ty == t.float_type {
            let bits = self
                .mem
                .read_u64(obj.wrapping_add(self.interp.layout.float.value))?;
            return Ok(float_repr(f64::from_bits(bits)));
        }
        let is_py2 = self.interp.families.language == LanguageFamily::Python2;
        if ty == t.unicode_type {
            let s = if is_py2 {
                self.unicode27(obj, max_chars + 1)?
            } else {
                self.unicode(obj, max_chars + 1)?
            };
            return Ok(format!(
                "{}{}",
                if is_py2 { "u" } else { "" },
                quote_str(&s, max_chars)
            ));
        }
        if ty == t.bytes_type {
            let b = self.bytes(obj, max_chars + 1)?;
            return Ok(format!(
                "{}{}",
                if is_py2 { "" } else { "b" },
                quote_bytes(&b, max_chars)
            ));
        }
        let name = self.type_name(ty)?;
        Ok(format!("<{name} at 0x{obj:x}>"))
    }

    /// A type's `tp_name`, at most 64 bytes of it.
    pub fn type_name(&self, ty: u64) -> Result<String> {
        let name_ptr = self.ptr(ty.wrapping_add(self.interp.layout.type_.name))?;
        let raw = self
            .mem
            .read_vec(name_ptr, 64)
            .or_else(|_| self.mem.read_vec(name_ptr, 16))?;
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
    }
}

/// Splits bytes into little-endian words.
pub fn words(raw: &[u8]) -> Vec<u64> {
    raw.chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
        .collect()
}

fn decode_units(raw: &[u8], width: usize) -> String {
    match width {
        1 => raw.iter().map(|b| *b as char).collect(),
        2 => raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
            .map(|u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
        _ => raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .map(|u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
    }
}

/// Python's repr of a float: shortest round-trip digits, `1.0` not `1`,
/// exponents written as `1e+16`.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = x.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{x:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        return format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    format!("{x:?}")
}

fn quote_str(s: &str, max_chars: usize) -> String {
    let mut out = String::from("'");
    for (i, c) in s.chars().enumerate() {
        if i == max_chars {
            out.push_str("'...");
            return out;
        }
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn quote_bytes(b: &[u8], max_chars: usize) -> String {
    let mut out = String::from("'");
    for (i, &c) in b.iter().enumerate() {
        if i == max_chars {
            out.push_str("'...");
            return out;
        }
        match c {
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1.5e-7), "1.5e-07");
        assert_eq!(float_repr(-2.5), "-2.5");
        assert_eq!(float_repr(f64::INFINITY), "inf");
    }

    #[test]
    fn strings_are_quoted_and_cut() {
        assert_eq!(quote_str("it's", 10), "'it\\'s'");
        assert_eq!(quote_str("abcdef", 3), "'abc'...");
        assert_eq!(quote_bytes(b"a\x00b", 10), "'a\\x00b'");
        assert_eq!(decode_units(&[0xe9, 0, 0, 0], 4), "é");
    }
}
