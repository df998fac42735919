//! `Layout`: where each field the walker needs sits inside CPython's structs.
//!
//! One plain struct for every version. The numbers come from
//! `python-offsets/<minor>.toml` (generated from each interpreter's own headers by
//! `python-offsets/generate.py`), and for 3.13+ are then overwritten by what the
//! target itself publishes in `_Py_DebugOffsets`. A field a version does not have
//! stays 0; the walker only reads the fields of its version's families.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

macro_rules! offsets_struct {
    ($(#[$doc:meta])* $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name { $(pub $field: u64),* }
    };
}

offsets_struct!(
    /// `_PyRuntimeState` (3.7+).
    RuntimeOffsets { interpreters_head, tstate_current }
);
offsets_struct!(
    /// `PyInterpreterState`.
    InterpreterOffsets { next, tstate_head, modules, ceval_gil }
);
offsets_struct!(
    /// `struct _gil_runtime_state` (3.12+ reached through `interp->ceval.gil`).
    GilOffsets { locked, last_holder }
);
offsets_struct!(
    /// `PyThreadState`.
    ThreadOffsets {
        next, interp, frame, cframe, cframe_current_frame, current_frame,
        thread_id, native_thread_id, datastack_chunk,
    }
);
offsets_struct!(
    /// `PyFrameObject` (≤3.10) or `_PyInterpreterFrame` (3.11+).
    FrameOffsets { previous, code, lasti, lineno, instr_ptr, owner, localsplus, size }
);
offsets_struct!(
    /// `PyCodeObject`.
    CodeOffsets {
        name, qualname, filename, firstlineno, linetable, code_adaptive, firsttraceable,
        varnames, cellvars, freevars, localsplusnames, localspluskinds,
        argcount, posonlyargcount, kwonlyargcount, nlocals, nlocalsplus, flags,
    }
);
offsets_struct!(
    /// `PyTypeObject` and `PyHeapTypeObject`.
    TypeOffsets { name, basicsize, dictoffset, flags, heap_cached_keys }
);
offsets_struct!(
    /// `PyASCIIObject` / `PyCompactUnicodeObject` (3.3+); on 2.7 `PyUnicodeObject`
    /// (`data` points to `char_size`-byte code units).
    UnicodeOffsets { state, length, ascii_size, compact_size, data, char_size }
);
offsets_struct!(
    /// `PyBytesObject` (`PyStringObject` on 2.7).
    BytesOffsets { size, sval }
);
offsets_struct!(
    /// `PyLongObject`: `size` is `ob_size` up to 3.11 and `lv_tag` from 3.12.
    /// `int_value` is 2.7's `PyIntObject.ob_ival`.
    LongOffsets { size, digits, digit_bits, int_value }
);
offsets_struct!(
    /// `PyFloatObject`.
    FloatOffsets { value }
);
offsets_struct!(
    /// `PyTupleObject` and `PyListObject` share the shape (size, items).
    SequenceOffsets { size, items }
);
offsets_struct!(
    /// `PyDictObject`; `mask`/`table` are 2.7's open-addressing dict.
    DictOffsets { keys, values, used, mask, table }
);
offsets_struct!(
    /// `PyDictKeysObject` and the entries after it; `values_items` is where the
    /// array sits inside a split dict's `PyDictValues`.
    DictKeysOffsets {
        size, log2_size, log2_index_bytes, kind, nentries, indices, entry_size,
        values_items,
    }
);
offsets_struct!(
    /// `PyModuleObject`.
    ModuleOffsets { dict }
);

/// Every offset the walker may read, for one CPython version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Layout {
    /// The version whose headers produced the table, e.g. "3.12.1".
    pub version: String,
    pub runtime: RuntimeOffsets,
    pub interpreter: InterpreterOffsets,
    pub gil: GilOffsets,
    pub thread: ThreadOffsets,
    pub frame: FrameOffsets,
    pub code: CodeOffsets,
    #[serde(rename = "type")]
    pub type_: TypeOffsets,
    pub unicode: UnicodeOffsets,
    pub bytes: BytesOffsets,
    pub long: LongOffsets,
    pub float: FloatOffsets,
    pub tuple: SequenceOffsets,
    pub list: SequenceOffsets,
    pub dict: DictOffsets,
    pub dict_keys: DictKeysOffsets,
    pub module: ModuleOffsets,
    /// 3.13+: for a Layout field ("thread.native_thread_id"), the byte position
    /// inside `_Py_DebugOffsets` where the running interpreter stores its value.
    pub debug_offsets: BTreeMap<String, u64>,
}

impl Layout {
    /// Parses one `python-offsets/*.toml` table.
    pub fn from_toml(text: &str) -> Result<Layout, toml::de::Error> {
        toml::from_str(text)
    }

    /// Replaces the fields named `section.field` with the given values. Unknown
    /// names are returned so the caller can report a table that is out of date.
    pub fn with_overrides(&self, values: &[(String, u64)]) -> Result<Layout, String> {
        let mut tree = toml::Value::try_from(self).map_err(|e| e.to_string())?;
        for (path, value) in values {
            let (section, field) = path
                .split_once('.')
                .ok_or_else(|| format!("bad field name {path}"))?;
            let slot = tree
                .get_mut(section)
                .and_then(|s| s.get_mut(field))
                .ok_or_else(|| format!("unknown layout field {path}"))?;
            *slot = toml::Value::Integer(
                i64::try_from(*value)
                    .map_err(|_| format!("value {value} for {path} is out of range"))?,
            );
        }
        tree.try_into().map_err(|e: toml::de::Error| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_named_fields_only() {
        let base = Layout {
            version: "3.13.0".into(),
            ..Layout::default()
        };
        let changed = base
            .with_overrides(&[("thread.native_thread_id".into(), 144)])
            .unwrap();
        assert_eq!(changed.thread.native_thread_id, 144);
        assert_eq!(changed.thread.next, 0);
        assert!(base.with_overrides(&[("thread.nope".into(), 1)]).is_err());
    }
}
