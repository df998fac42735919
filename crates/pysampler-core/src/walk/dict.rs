//! Reading dicts and instance attributes, for thread names (`threading`'s
//! registry) and module lookups. Three dict generations: 2.7's open table,
//! 3.6–3.10's compact dict, 3.11+'s compact dict with `dk_kind`; and four ways
//! an instance keeps its attributes.

use crate::error::{Error, Result};
use crate::interpreter::InstanceDictFamily;
use crate::memory::word_at;
use crate::walk::objects::{words, ObjectReader};

/// Largest dict read, in entries.
pub const MAX_DICT_ENTRIES: usize = 1 << 16;
const DICT_KIND_GENERAL: u8 = 0;
/// Largest dict-keys header read (`dk_indices` is at about 32 bytes).
const MAX_KEYS_HEADER: u64 = 4096;
/// 3.12 stores a values pointer in the dict slot as `pointer - 1`, so the
/// low bit tells values from a dict.
const VALUES_TAG: u64 = 1;

/// (key, value) object pointers of the dict at `dict`, skipping empty slots.
pub fn items(reader: &ObjectReader, dict: u64) -> Result<Vec<(u64, u64)>> {
    let l = &reader.interp.layout;
    // 2.7's open-addressing table has a mask and a table of entries; later
    // dicts are compact (keys object, values).
    if let (Some(mask_at), Some(table_at)) = (l.dict.mask, l.dict.table) {
        let mask = reader.mem.read_u64(dict.wrapping_add(mask_at))? as usize;
        let slots = mask
            .checked_add(1)
            .filter(|n| *n <= MAX_DICT_ENTRIES)
            .ok_or_else(|| too_big(dict))?;
        let table = reader.ptr(dict.wrapping_add(table_at))?;
        let raw = words(&reader.mem.read_vec(table, slots * 24)?);
        return Ok(raw
            .chunks_exact(3)
            .map(|e| (e[1], e[2]))
            .filter(|(k, v)| *k != 0 && *v != 0)
            .collect());
    }
    let keys = reader.ptr(dict.wrapping_add(crate::need!(l, dict.keys)?))?;
    let values = reader.ptr(dict.wrapping_add(crate::need!(l, dict.values)?))?;
    let values = if values == 0 {
        None
    } else {
        Some(values.wrapping_add(values_items(l)))
    };
    keys_and_values(reader, keys, values)
}

/// Entries of a keys object; values come from the entries or, for a split
/// dict, from the separate values array.
fn keys_and_values(
    reader: &ObjectReader,
    keys: u64,
    values: Option<u64>,
) -> Result<Vec<(u64, u64)>> {
    let layout = &reader.interp.layout;
    let k = &layout.dict_keys;
    let indices = crate::need!(layout, dict_keys.indices)?;
    if indices > MAX_KEYS_HEADER {
        return Err(Error::LayoutField {
            field: "dict keys header size",
            value: indices,
        });
    }
    let header = reader.mem.read_vec(keys, indices as usize)?;
    let word = |at: u64| word_at(&header, at);
    let nentries = word(crate::need!(layout, dict_keys.nentries)?) as usize;
    // 3.11+ record the index size and the kind of entries (with or without
    // hashes); earlier keys objects have only their size.
    let (index_bytes, entry_size) =
        if let (Some(log2_index_bytes), Some(kind)) = (k.log2_index_bytes, k.kind) {
            let byte = |at: u64| header.get(at as usize).copied().unwrap_or(u8::MAX);
            let log2_index_bytes = byte(log2_index_bytes) as u32;
            let kind = byte(kind);
            if log2_index_bytes > 40 {
                return Err(too_big(keys));
            }
            let entry = if kind == DICT_KIND_GENERAL {
                k.entry_size
            } else {
                crate::need!(layout, dict_keys.unicode_entry_size)?
            };
            (1u64 << log2_index_bytes, entry)
        } else {
            let size = word(crate::need!(layout, dict_keys.size)?);
            let width = match size {
                0..=0xff => 1,
                0x100..=0xffff => 2,
                0x1_0000..=0xffff_ffff => 4,
                _ => 8,
            };
            (size.saturating_mul(width), k.entry_size)
        };
    // An entry is (hash,) key, value: two or three words.
    if entry_size != 16 && entry_size != 24 {
        return Err(Error::LayoutField {
            field: "dict entry size",
            value: entry_size,
        });
    }
    if nentries > MAX_DICT_ENTRIES || index_bytes > (MAX_DICT_ENTRIES as u64) * 8 {
        return Err(too_big(keys));
    }
    let entries_at = keys.wrapping_add(indices).wrapping_add(index_bytes);
    let raw = words(
        &reader
            .mem
            .read_vec(entries_at, nentries * entry_size as usize)?,
    );
    let per_entry = (entry_size / 8) as usize;
    let key_slot = per_entry - 2; // the hash, if any, comes first
    let value_array = match values {
        Some(v) => Some(words(&reader.mem.read_vec(v, nentries * 8)?)),
        None => None,
    };
    Ok(raw
        .chunks_exact(per_entry)
        .enumerate()
        .map(|(i, e)| {
            let value = match &value_array {
                Some(vals) => vals[i],
                None => e[key_slot + 1],
            };
            (e[key_slot], value)
        })
        .filter(|(k, v)| *k != 0 && *v != 0)
        .collect())
}

/// Looks up a string key.
pub fn get_str(reader: &ObjectReader, dict: u64, key: &str) -> Result<Option<u64>> {
    for (k, v) in items(reader, dict)? {
        if reader.text(k).map(|s| s == key).unwrap_or(false) {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// An attribute from an instance's `__dict__`, wherever the version keeps it.
pub fn instance_attribute(reader: &ObjectReader, obj: u64, name: &str) -> Result<Option<u64>> {
    let l = &reader.interp.layout;
    let ty = reader.type_of(obj)?;
    let managed_dict = || crate::need!(l, object.managed_dict_before);
    // A class whose base keeps its dict at a fixed offset (a C type with a
    // dict slot, such as 3.12's `_asyncio.Future` under `_GatheringFuture`)
    // keeps it there on every version; managed dicts say -1.
    // (A type whose dictoffset cannot be read, as in a snapshot that did
    // not keep it, is taken to manage its dict.)
    if reader.interp.families.instance_dicts != InstanceDictFamily::TypeDictOffset {
        let offset = reader
            .mem
            .read_u64(ty.wrapping_add(l.type_.dictoffset))
            .map_or(0, |o| o as i64);
        if offset > 0 {
            let dict = reader.ptr(obj.wrapping_add(offset as u64))?;
            return match dict {
                0 => Ok(None),
                dict => get_str(reader, dict, name),
            };
        }
    }
    let values = match reader.interp.families.instance_dicts {
        InstanceDictFamily::TypeDictOffset => {
            let offset = reader.mem.read_u64(ty.wrapping_add(l.type_.dictoffset))? as i64;
            if offset <= 0 {
                return Ok(None);
            }
            let dict = reader.ptr(obj.wrapping_add(offset as u64))?;
            return if dict == 0 {
                Ok(None)
            } else {
                get_str(reader, dict, name)
            };
        }
        InstanceDictFamily::ManagedDictOrValuesPointer => {
            let dict = reader.ptr(obj.wrapping_sub(managed_dict()?))?;
            if dict != 0 {
                return get_str(reader, dict, name);
            }
            reader.ptr(obj.wrapping_sub(crate::need!(l, object.values_pointer_before)?))?
        }
        InstanceDictFamily::ManagedDictOrTaggedValues => {
            let slot = reader.ptr(obj.wrapping_sub(managed_dict()?))?;
            if slot & VALUES_TAG == 0 {
                return if slot == 0 {
                    Ok(None)
                } else {
                    get_str(reader, slot, name)
                };
            }
            slot.wrapping_add(VALUES_TAG)
        }
        InstanceDictFamily::ManagedDictOrInlineValues => {
            let dict = reader.ptr(obj.wrapping_sub(managed_dict()?))?;
            if dict != 0 {
                return get_str(reader, dict, name);
            }
            let basic_size = reader.mem.read_u64(ty.wrapping_add(l.type_.basicsize))?;
            obj.wrapping_add(basic_size)
        }
    };
    if values == 0 {
        return Ok(None);
    }
    let keys = reader.ptr(ty.wrapping_add(crate::need!(l, type_.heap_cached_keys)?))?;
    if keys == 0 {
        return Ok(None);
    }
    for (k, value) in keys_and_values(reader, keys, Some(values.wrapping_add(values_items(l))))? {
        if reader.text(k).map(|s| s == name).unwrap_or(false) {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// Where a split dict's values array starts inside its `PyDictValues`:
/// 3.11+ puts a header before it; earlier versions point at the array.
fn values_items(l: &crate::interpreter::Layout) -> u64 {
    l.dict_keys.values_items.unwrap_or(0)
}

fn too_big(addr: u64) -> Error {
    Error::Implausible {
        what: "dict size (over the limit of entries)",
        addr,
        value: MAX_DICT_ENTRIES as i64,
    }
}
