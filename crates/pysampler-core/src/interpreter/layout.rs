//! `Layout`: where each field the walker needs sits inside CPython's structs.
//!
//! One plain struct for every version. The numbers come from
//! `python-offsets/<minor>.toml` (generated from each interpreter's own headers by
//! `python-offsets/generate.py`), and for 3.13+ are then overwritten by what the
//! target itself publishes in `_Py_DebugOffsets`.
//!
//! A field every supported version has is a `u64`, and a table without it
//! does not parse. A field some versions lack is an `Option<u64>`, `None`
//! where the version has no such field: 0 is a real offset (3.13's frame
//! starts with `f_executable`), so it cannot also mean "absent".

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One field of a section, by name, for `Layout::set` and `Layout::fields`.
enum Slot<'a> {
    Required(&'a mut u64),
    Optional(&'a mut Option<u64>),
}

macro_rules! offsets_struct {
    ($(#[$doc:meta])* $name:ident {
        required: [$($req:ident),* $(,)?],
        optional: [$($opt:ident),* $(,)?] $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(pub $req: u64,)*
            $(#[serde(default)] pub $opt: Option<u64>,)*
        }

        impl $name {
            fn fields(&self) -> Vec<(&'static str, Option<u64>)> {
                vec![$((stringify!($req), Some(self.$req)),)* $((stringify!($opt), self.$opt),)*]
            }

            fn slot(&mut self, name: &str) -> Option<Slot<'_>> {
                match name {
                    $(stringify!($req) => Some(Slot::Required(&mut self.$req)),)*
                    $(stringify!($opt) => Some(Slot::Optional(&mut self.$opt)),)*
                    _ => None,
                }
            }
        }
    };
}

offsets_struct!(
    /// `_PyRuntimeState` (3.7+).
    RuntimeOffsets { required: [], optional: [interpreters_head, tstate_current] }
);
offsets_struct!(
    /// `PyInterpreterState`.
    InterpreterOffsets { required: [next, tstate_head, modules], optional: [ceval_gil] }
);
offsets_struct!(
    /// `struct _gil_runtime_state` (3.12+ reached through `interp->ceval.gil`);
    /// `enabled` only in free-threaded builds, whose GIL is normally off.
    GilOffsets { required: [], optional: [locked, last_holder, enabled] }
);
offsets_struct!(
    /// `PyThreadState`.
    ThreadOffsets {
        required: [next, interp, thread_id],
        optional: [frame, cframe, cframe_current_frame, current_frame, native_thread_id,
            datastack_chunk],
    }
);
offsets_struct!(
    /// `PyFrameObject` (≤3.10) or `_PyInterpreterFrame` (3.11+). `lasti_unit`
    /// is the bytes per unit `f_lasti` counts (1 up to 3.9, a code unit in 3.10).
    /// `stacktop` (3.11–3.13, slots from `localsplus`) or `stackpointer`
    /// (3.14+, and 3.8–3.9's `f_stacktop`: a pointer) is the value stack's
    /// top, which asyncio reads; 3.10 has `valuestack` + `stackdepth` slots
    /// and the frame's `state`.
    FrameOffsets {
        required: [previous, code, localsplus, size],
        optional: [lasti, lasti_unit, lineno, instr_ptr, owner, stacktop, stackpointer,
            valuestack, stackdepth, state],
    }
);
offsets_struct!(
    /// `PyCodeObject`.
    CodeOffsets {
        required: [name, filename, firstlineno, linetable, argcount, nlocals, flags],
        optional: [qualname, code_adaptive, firsttraceable, varnames, cellvars, freevars,
            localsplusnames, localspluskinds, posonlyargcount, kwonlyargcount, nlocalsplus],
    }
);
offsets_struct!(
    /// `PyTypeObject` and `PyHeapTypeObject`.
    TypeOffsets { required: [name, basicsize, dictoffset, flags], optional: [heap_cached_keys, base] }
);
offsets_struct!(
    /// `PyASCIIObject` / `PyCompactUnicodeObject` (3.3+); on 2.7 `PyUnicodeObject`
    /// (`data` points to `char_size`-byte code units). The `*_shift`s are
    /// where the `kind`, `compact` and `ascii` bits sit in `state`.
    UnicodeOffsets {
        required: [length],
        optional: [state, ascii_size, compact_size, data, char_size, kind_shift, compact_shift,
            ascii_shift],
    }
);
offsets_struct!(
    /// `PyBytesObject` (`PyStringObject` on 2.7).
    BytesOffsets { required: [size, sval], optional: [] }
);
offsets_struct!(
    /// `PyLongObject`: `size` is `ob_size` up to 3.11 and `lv_tag` from 3.12,
    /// whose low `non_size_bits` hold the sign (`& sign_mask == sign_negative`).
    /// `int_value` is 2.7's `PyIntObject.ob_ival`.
    LongOffsets {
        required: [size, digits, digit_bits],
        optional: [non_size_bits, sign_mask, sign_negative, int_value],
    }
);
offsets_struct!(
    /// `PyFloatObject`.
    FloatOffsets { required: [value], optional: [] }
);
offsets_struct!(
    /// `PyTupleObject` and `PyListObject` share the shape (size, items).
    SequenceOffsets { required: [size, items], optional: [] }
);
offsets_struct!(
    /// `PyDictObject`; `mask`/`table` are 2.7's open-addressing dict.
    DictOffsets { required: [used], optional: [keys, values, mask, table] }
);
offsets_struct!(
    /// `PyDictKeysObject` and the entries after it (`entry_size` with hashes,
    /// `unicode_entry_size` without, 3.11+); `values_items` is where the
    /// array sits inside a split dict's `PyDictValues`.
    DictKeysOffsets {
        required: [entry_size],
        optional: [size, log2_size, log2_index_bytes, kind, nentries, indices,
            unicode_entry_size, values_items],
    }
);
offsets_struct!(
    /// `PyObject`: where its type pointer is (8, or 24 in a free-threaded
    /// build). And where an object whose type manages its dict (3.11+)
    /// keeps, *before* its start, its dict pointer and (3.11) its values
    /// pointer: bytes below the object's address.
    ObjectOffsets {
        required: [ob_type],
        optional: [managed_dict_before, values_pointer_before],
    }
);
offsets_struct!(
    /// `_PyStackChunk` (3.11+), a piece of a thread's frame stack.
    ChunkOffsets { required: [], optional: [previous, size] }
);
offsets_struct!(
    /// `PyGenObject` / `PyCoroObject`: 3.11+ its frame's state and the frame
    /// itself, embedded in the object; ≤3.10 a pointer to its frame object
    /// (`frame`) and, 3.8–3.9, whether it runs (`running`).
    GenOffsets { required: [], optional: [frame_state, iframe, frame, running] }
);
offsets_struct!(
    /// `PySetObject`: its hash table (`mask + 1` entries of `entry_size` bytes,
    /// key and hash at `entry_key` / `entry_hash`) and its element count.
    SetOffsets { required: [], optional: [mask, table, used, entry_size, entry_key, entry_hash] }
);
offsets_struct!(
    /// `PyWeakReference`: the referent (`Py_None` once it is dead).
    WeakrefOffsets { required: [], optional: [object] }
);
offsets_struct!(
    /// `FutureObj` / `TaskObj` of `Modules/_asynciomodule.c`, which no header
    /// declares: literals verified against live tasks (python-offsets/generate.py,
    /// TASK_LAYOUTS). `awaited_by`, `is_task`, `awaited_by_is_set` and `node`
    /// exist from 3.14. `basicsize` (3.8–3.11) is the `_asyncio.Task` size the
    /// offsets are for, checked against the target's; `shifted_basicsize`
    /// (3.10) a smaller one of other patch releases, whose fields after
    /// `fut_loop` are lower by the difference.
    TaskOffsets {
        required: [],
        optional: [fut_loop, state, fut_waiter, coro, name, awaited_by, is_task,
            awaited_by_is_set, node, basicsize, shifted_basicsize],
    }
);
offsets_struct!(
    /// `PyModuleObject`.
    ModuleOffsets { required: [dict], optional: [] }
);

/// Every offset the walker may read, for one CPython version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// The version whose headers produced the table, e.g. "3.12.1".
    pub version: String,
    #[serde(default)]
    pub runtime: RuntimeOffsets,
    pub interpreter: InterpreterOffsets,
    #[serde(default)]
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
    #[serde(default)]
    pub object: ObjectOffsets,
    #[serde(default)]
    pub chunk: ChunkOffsets,
    pub module: ModuleOffsets,
    #[serde(default)]
    pub gen: GenOffsets,
    #[serde(default)]
    pub set: SetOffsets,
    #[serde(default)]
    pub weakref: WeakrefOffsets,
    #[serde(default)]
    pub task: TaskOffsets,
    /// 3.13+: for a Layout field ("thread.native_thread_id"), the byte position
    /// inside `_Py_DebugOffsets` where the running interpreter stores its value.
    #[serde(default)]
    pub debug_offsets: BTreeMap<String, u64>,
}

/// The sections by their table names, for access to a field by name.
macro_rules! sections {
    ($($name:literal => $field:ident),* $(,)?) => {
        impl Layout {
            fn sections(&self) -> Vec<(&'static str, Vec<(&'static str, Option<u64>)>)> {
                vec![$(($name, self.$field.fields()),)*]
            }

            fn slot(&mut self, section: &str, field: &str) -> Option<Slot<'_>> {
                match section {
                    $($name => self.$field.slot(field),)*
                    _ => None,
                }
            }
        }
    };
}

sections!(
    "runtime" => runtime, "interpreter" => interpreter, "gil" => gil, "thread" => thread,
    "frame" => frame, "code" => code, "type" => type_, "unicode" => unicode,
    "bytes" => bytes, "long" => long, "float" => float, "tuple" => tuple, "list" => list,
    "dict" => dict, "dict_keys" => dict_keys, "object" => object, "chunk" => chunk,
    "module" => module, "gen" => gen, "set" => set, "weakref" => weakref, "task" => task,
);

impl Layout {
    /// Parses one `python-offsets/*.toml` table.
    pub fn from_toml(text: &str) -> std::result::Result<Layout, toml::de::Error> {
        toml::from_str(text)
    }

    /// Every field as ("section.field", value), `None` where this version
    /// lacks it.
    pub fn fields(&self) -> Vec<(String, Option<u64>)> {
        self.sections()
            .into_iter()
            .flat_map(|(section, fields)| {
                fields
                    .into_iter()
                    .map(move |(field, value)| (format!("{section}.{field}"), value))
            })
            .collect()
    }

    /// The value of field `path` ("thread.next"): `Some(None)` for an
    /// optional field this version lacks, `None` for no such field.
    pub fn get(&self, path: &str) -> Option<Option<u64>> {
        self.fields()
            .into_iter()
            .find(|(name, _)| name == path)
            .map(|(_, value)| value)
    }

    /// Sets field `path` ("thread.next"); `None` makes an optional field
    /// absent. Err for an unknown name, or `None` for a field every version has.
    pub fn set(&mut self, path: &str, value: Option<u64>) -> std::result::Result<(), String> {
        let (section, field) = path
            .split_once('.')
            .ok_or_else(|| format!("bad field name {path}"))?;
        match (self.slot(section, field), value) {
            (Some(Slot::Required(slot)), Some(v)) => *slot = v,
            (Some(Slot::Required(_)), None) => {
                return Err(format!("{path} is in every version; it cannot be absent"))
            }
            (Some(Slot::Optional(slot)), v) => *slot = v,
            (None, _) => return Err(format!("unknown layout field {path}")),
        }
        Ok(())
    }

    /// Replaces the fields named `section.field` with the given values. Unknown
    /// names are returned so the caller can report a table that is out of date.
    pub fn with_overrides(&self, values: &[(String, u64)]) -> std::result::Result<Layout, String> {
        let mut layout = self.clone();
        for (path, value) in values {
            if i64::try_from(*value).is_err() {
                // Kept from when overrides went through a TOML integer: a
                // value past i64 is refused (the fuzz targets rely on it).
                return Err(format!("value {value} for {path} is out of range"));
            }
            layout.set(path, Some(*value))?;
        }
        Ok(layout)
    }

    /// A Layout as a snapshot stored it (`stored`, its JSON), made whole
    /// against `table`, the built-in table of the snapshot's version:
    /// - a field missing from `stored` was added to pysampler after the
    ///   snapshot was written, and takes the table's value (headers give
    ///   the same value to every process of a version);
    /// - a 0 where the table says the version lacks the field is how
    ///   snapshots wrote "absent" before fields were optional.
    ///
    /// Every other value is kept as stored, hostile or not.
    pub fn restore(
        stored: &serde_json::Value,
        table: &Layout,
    ) -> std::result::Result<Layout, String> {
        let mut layout: Layout =
            serde_json::from_value(stored.clone()).map_err(|e| e.to_string())?;
        for (path, table_value) in table.fields() {
            let (section, field) = path.split_once('.').unwrap_or((&path, ""));
            let key = stored.get(section).and_then(|s| s.get(field));
            let restored = match (key, table_value) {
                (None, _) => table_value,
                (Some(v), None) if v.as_u64() == Some(0) => None,
                _ => continue,
            };
            layout.set(&path, restored)?;
        }
        Ok(layout)
    }

    /// The error for an optional field the caller's family needs but this
    /// layout lacks (a table out of date, or a hostile snapshot).
    pub fn missing(&self, path: &str) -> Error {
        // The table's name for the section of the `type_` field.
        let path = path
            .strip_prefix("type_.")
            .map_or(path.to_string(), |f| format!("type.{f}"));
        Error::Layout {
            version: self.version.clone(),
            detail: format!("no {path}, which this version's structures need"),
        }
    }
}

/// The value of an optional layout field, or `Layout::missing` naming it:
/// `need!(layout, frame.instr_ptr)`.
#[macro_export]
macro_rules! need {
    ($layout:expr, $section:ident . $field:ident) => {
        $layout
            .$section
            .$field
            .ok_or_else(|| $layout.missing(concat!(stringify!($section), ".", stringify!($field))))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_text(minor: &str) -> &'static str {
        crate::interpreter::tables::TABLES
            .iter()
            .find(|(k, _)| *k == minor)
            .map(|(_, t)| *t)
            .unwrap()
    }

    fn table(minor: &str) -> Layout {
        Layout::from_toml(table_text(minor)).unwrap()
    }

    #[test]
    fn overrides_replace_named_fields_only() {
        let base = table("3.13");
        let changed = base
            .with_overrides(&[("thread.native_thread_id".into(), 144)])
            .unwrap();
        assert_eq!(changed.thread.native_thread_id, Some(144));
        assert_eq!(changed.thread.next, base.thread.next);
        assert!(base.with_overrides(&[("thread.nope".into(), 1)]).is_err());
        assert!(base
            .with_overrides(&[("thread.next".into(), u64::MAX)])
            .is_err());
    }

    #[test]
    fn absent_is_none_and_zero_is_an_offset() {
        let t13 = table("3.13");
        assert_eq!(t13.frame.code, 0, "3.13's f_executable is at offset 0");
        assert_eq!(t13.frame.lasti, None);
        assert_eq!(t13.get("frame.lasti"), Some(None));
        assert_eq!(t13.get("frame.code"), Some(Some(0)));
        assert_eq!(t13.get("frame.nope"), None);
        let mut t27 = table("2.7");
        assert_eq!(t27.thread.native_thread_id, None);
        assert!(t27.set("thread.next", None).is_err());
        t27.set("thread.native_thread_id", Some(0)).unwrap();
        assert_eq!(t27.thread.native_thread_id, Some(0));
    }

    #[test]
    fn a_missing_field_is_named_as_in_the_table() {
        let t = table("3.9");
        assert!(crate::need!(t, type_.heap_cached_keys).is_ok());
        let err = crate::need!(t, frame.instr_ptr).unwrap_err().to_string();
        assert!(err.contains("no frame.instr_ptr"), "{err}");
        assert!(t.missing("type_.x").to_string().contains("no type.x"));
    }

    #[test]
    fn a_table_without_a_required_field_does_not_parse() {
        let text = table_text("2.7");
        assert!(Layout::from_toml(text).is_ok());
        let without: Vec<&str> = text.lines().filter(|l| !l.starts_with("sval =")).collect();
        assert!(Layout::from_toml(&without.join("\n")).is_err());
    }

    #[test]
    fn serialises_through_toml_and_json() {
        let t = table("3.12");
        let toml_text = toml::to_string(&t).unwrap();
        assert_eq!(Layout::from_toml(&toml_text).unwrap(), t);
        assert!(toml::Value::try_from(&t).is_ok());
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(Layout::restore(&json, &t).unwrap(), t);
    }

    #[test]
    fn restore_reads_snapshots_written_before_fields_were_optional() {
        let t = table("3.12");
        // Then every field was written, 0 for one the version lacks; a
        // field added since was not written at all.
        let mut old = serde_json::to_value(&t).unwrap();
        for (path, value) in t.fields() {
            let (section, field) = path.split_once('.').unwrap();
            old[section][field] = serde_json::json!(value.unwrap_or(0));
        }
        old["thread"]
            .as_object_mut()
            .unwrap()
            .remove("native_thread_id");
        let restored = Layout::restore(&old, &t).unwrap();
        assert_eq!(restored.thread.frame, None);
        assert_eq!(restored.thread.native_thread_id, t.thread.native_thread_id);
        assert_eq!(restored, t);
        // A stored value is kept, even where it differs from the table,
        // and a required field's 0 is an offset.
        old["thread"]["next"] = serde_json::json!(0);
        old["code"]["qualname"] = serde_json::json!(4096);
        let restored = Layout::restore(&old, &t).unwrap();
        assert_eq!(
            (restored.thread.next, restored.code.qualname),
            (0, Some(4096))
        );
    }
}
