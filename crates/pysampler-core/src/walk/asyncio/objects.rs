//! The few object shapes asyncio's registries are made of, read defensively:
//! type names (to tell a coroutine from a future before following it), set
//! entries, weak references.

use crate::error::{Error, Result};
use crate::walk::objects::{words, ObjectReader};
use foldhash::HashMap;

/// Most set slots read (a set of 100,000 tasks has 262,144 slots).
const MAX_SET_SLOTS: u64 = 1 << 19;

/// `tp_name` of types, by type address, read once per dump.
#[derive(Default)]
pub struct TypeNames {
    names: HashMap<u64, String>,
}

impl TypeNames {
    /// The `tp_name` of `obj`'s type ("coroutine", "_asyncio.Task", ...).
    pub fn of(&mut self, reader: &ObjectReader, obj: u64) -> Result<&str> {
        let ty = reader.type_of(obj)?;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.names.entry(ty) {
            let at = reader.ptr(ty.wrapping_add(reader.interp.layout.type_.name))?;
            let raw = reader
                .mem
                .read_vec(at, 64)
                .or_else(|_| reader.mem.read_vec(at, 16))?;
            let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            slot.insert(String::from_utf8_lossy(&raw[..end]).into_owned());
        }
        Ok(self.names.get(&ty).map(String::as_str).unwrap_or(""))
    }
}

/// The non-empty keys of the set at `set` (the dummy of a removed key
/// included: callers check what each key is).
pub fn set_keys(reader: &ObjectReader, set: u64) -> Result<Vec<u64>> {
    let layout = &reader.interp.layout;
    let mask = reader
        .mem
        .read_u64(set.wrapping_add(crate::need!(layout, set.mask)?))?;
    let slots = mask.wrapping_add(1);
    if slots == 0 || slots > MAX_SET_SLOTS || !slots.is_power_of_two() {
        return Err(Error::Implausible {
            what: "set size",
            addr: set,
            value: mask as i64,
        });
    }
    let table = reader.ptr(set.wrapping_add(crate::need!(layout, set.table)?))?;
    let raw = words(&reader.mem.read_vec(table, slots as usize * 16)?);
    Ok(raw
        .chunks_exact(2)
        .map(|e| e[0])
        .filter(|k| *k != 0)
        .collect())
}

/// The referent of weak reference `wr`, None when it is dead (CPython
/// points a dead reference at `None`) or `wr` is not a weak reference.
pub fn weakref_target(reader: &ObjectReader, names: &mut TypeNames, wr: u64) -> Option<u64> {
    let name = names.of(reader, wr).ok()?;
    if name != "weakref.ReferenceType" && name != "weakref" {
        return None;
    }
    let at = crate::need!(reader.interp.layout, weakref.object).ok()?;
    let target = reader.ptr(wr.wrapping_add(at)).ok()?;
    (target != 0 && target != reader.interp.types.none).then_some(target)
}
