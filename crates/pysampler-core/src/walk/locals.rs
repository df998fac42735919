//! Local variables of a frame, for `dump --locals`.

use crate::error::Result;
use crate::interpreter::FrameFamily;
use crate::walk::objects::ObjectReader;
use crate::walk::values::{value_repr, ValueLimits};

/// Most locals shown per frame.
const MAX_LOCALS: usize = 256;
const CO_VARARGS: u32 = 0x4;
const CO_VARKEYWORDS: u32 = 0x8;
/// 3.11+ `co_localspluskinds` bits.
const KIND_HIDDEN: u8 = 0x10;
const KIND_LOCAL: u8 = 0x20;
/// 3.15 tags small ints stored directly in a stack reference.
const INT_TAG: u64 = 3;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Local {
    pub name: String,
    pub value: String,
    pub is_arg: bool,
}

/// The bound locals of the frame at `frame` running `code`, arguments first,
/// each value shown within `limits`.
pub fn read_locals(
    reader: &ObjectReader,
    frame: u64,
    code: u64,
    limits: &ValueLimits,
) -> Result<Vec<Local>> {
    let layout = &reader.interp.layout;
    let c = &layout.code;
    let int_at = |off: u64| reader.mem.read_u32(code.wrapping_add(off));
    let flags = int_at(c.flags)?;
    // 2.7 has no keyword-only arguments.
    let kwonly = match c.kwonlyargcount {
        Some(off) => int_at(off)?,
        None => 0,
    };
    let mut args = int_at(c.argcount)? as usize + kwonly as usize;
    args += usize::from(flags & CO_VARARGS != 0) + usize::from(flags & CO_VARKEYWORDS != 0);
    let family = reader.interp.families.frames;
    let modern = family != FrameFamily::FrameObjects;
    let (count, names_tuple) = if modern {
        (
            int_at(crate::need!(layout, code.nlocalsplus)?)? as usize,
            reader.ptr(code.wrapping_add(crate::need!(layout, code.localsplusnames)?))?,
        )
    } else {
        (
            int_at(c.nlocals)? as usize,
            reader.ptr(code.wrapping_add(crate::need!(layout, code.varnames)?))?,
        )
    };
    let count = count.min(MAX_LOCALS);
    if count == 0 {
        return Ok(Vec::new());
    }
    let names = reader.tuple_items(names_tuple, count)?;
    let kinds = if modern {
        let kinds_at = crate::need!(layout, code.localspluskinds)?;
        reader.bytes(reader.ptr(code.wrapping_add(kinds_at))?, count)?
    } else {
        vec![KIND_LOCAL; count]
    };
    let slots = reader
        .mem
        .read_vec(frame.wrapping_add(layout.frame.localsplus), count * 8)?;
    let mut locals = Vec::new();
    for (i, slot) in slots.chunks_exact(8).enumerate().take(names.len()) {
        let kind = kinds.get(i).copied().unwrap_or(0);
        if kind & KIND_LOCAL == 0 || kind & KIND_HIDDEN != 0 {
            continue;
        }
        let raw = crate::memory::word_at(slot, 0);
        let value = if family == FrameFamily::TaggedInterpreterFrames && raw & 3 == INT_TAG {
            ((raw as i64) >> 2).to_string()
        } else {
            let obj = raw & family.tag_mask();
            if obj == 0 {
                continue; // not bound yet
            }
            value_repr(reader, obj, limits)
        };
        locals.push(Local {
            name: reader.text(names[i]).unwrap_or_else(|_| "?".into()),
            value,
            is_arg: i < args,
        });
    }
    Ok(locals)
}
