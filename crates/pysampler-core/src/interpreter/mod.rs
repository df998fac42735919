//! Which CPython a process runs, where its runtime state is, and its `Layout`.

pub mod families;
pub mod layout;
pub mod tables;
pub mod version;

use crate::elf::Binary;
use crate::error::{Error, Result};
use crate::maps::MappedFile;
use crate::memory::{word_at, MemorySource};
pub use families::{
    CoroutineFamily, Families, FrameFamily, InstanceDictFamily, LanguageFamily, LineTableFormat,
};
pub use layout::Layout;
pub use version::Version;

/// `_Py_DebugOffsets.cookie`, at the start of `_PyRuntime` in 3.13+.
const DEBUG_COOKIE: &[u8; 8] = b"xdebugpy";

/// Where the running interpreter keeps the state pysampler starts from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "StoredInterpreter")]
pub struct Interpreter {
    pub version: Version,
    pub layout: Layout,
    /// Address of the pointer to the first `PyInterpreterState`.
    pub interp_head_ptr: u64,
    pub gil: GilSource,
    pub types: KnownObjects,
    /// The binary that holds the runtime (libpython or the executable).
    pub runtime_binary: String,
    /// The version's families (`families::SUPPORTED`); not stored in a
    /// snapshot, which has the version to find them again.
    #[serde(skip_serializing)]
    pub families: Families,
}

/// An `Interpreter` as a snapshot stores it, its layout as written then
/// (see `Layout::restore`).
#[derive(serde::Deserialize)]
struct StoredInterpreter {
    version: Version,
    layout: serde_json::Value,
    interp_head_ptr: u64,
    gil: GilSource,
    types: KnownObjects,
    runtime_binary: String,
}

impl TryFrom<StoredInterpreter> for Interpreter {
    type Error = String;

    fn try_from(stored: StoredInterpreter) -> std::result::Result<Interpreter, String> {
        let table = tables::layout_for(&stored.version).map_err(|e| e.to_string())?;
        let families = Families::of(&stored.version)
            .ok_or_else(|| families::unsupported(&stored.version.to_string()).to_string())?;
        Ok(Interpreter {
            families,
            layout: Layout::restore(&stored.layout, &table)?,
            version: stored.version,
            interp_head_ptr: stored.interp_head_ptr,
            gil: stored.gil,
            types: stored.types,
            runtime_binary: stored.runtime_binary,
        })
    }
}

/// How to tell which thread holds the GIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GilSource {
    /// A global pointer to the holder's thread state (2.7, 3.6 `_PyThreadState_Current`,
    /// 3.7–3.11 `_PyRuntime.gilstate.tstate_current`).
    CurrentThreadPointer(u64),
    /// 3.12+: `interp->ceval.gil` points to a struct with `locked` and `last_holder`.
    InterpreterGil,
    Unknown,
}

/// Addresses of type objects and singletons, for recognising local values.
/// Snapshots written before a field was added read it as 0 (unknown).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct KnownObjects {
    pub code_type: u64,
    pub long_type: u64,
    pub int_type: u64,
    pub float_type: u64,
    pub bool_type: u64,
    pub unicode_type: u64,
    pub bytes_type: u64,
    pub tuple_type: u64,
    pub dict_type: u64,
    pub list_type: u64,
    pub set_type: u64,
    pub frozenset_type: u64,
    pub none: u64,
    pub true_: u64,
    pub false_: u64,
}

/// What the reader is told about a process to find its interpreter: who it
/// is and which files it maps. Opening those files is the caller's part.
#[derive(Debug, Clone, Copy)]
pub struct ProcessImage<'a> {
    pub pid: i32,
    /// The executable's path as the process sees it.
    pub exe: &'a str,
    /// Files mapped from offset 0, in address order (`maps::mapped_files`).
    pub files: &'a [MappedFile],
}

/// Opens and parses one mapped file (`elf::Binary::parse` on its bytes).
pub type BinaryLoader<'a> = dyn FnMut(&MappedFile) -> Result<Binary> + 'a;

impl Interpreter {
    /// Finds the interpreter in the process `process` describes, reading
    /// its memory through `mem` and its binaries through `load`.
    pub fn locate(
        process: &ProcessImage,
        load: &mut BinaryLoader,
        mem: &dyn MemorySource,
    ) -> Result<Interpreter> {
        let binary = find_runtime_binary(process, load)?;
        let mut version = detect_version(process, &binary, mem)?;
        version.free_threaded = is_free_threaded(&binary, mem);
        let families =
            Families::of(&version).ok_or_else(|| families::unsupported(&version.to_string()))?;
        let mut layout = tables::layout_for(&version)?;
        let interp_head_ptr = if let Some(runtime) = binary.symbol("_PyRuntime") {
            // 3.13+ publish their own layout; the table says where.
            if !layout.debug_offsets.is_empty() {
                let (mut published, overrides) =
                    read_debug_offsets(process.pid, mem, runtime, &layout)?;
                // The build kind comes from the same table, read above.
                published.free_threaded = version.free_threaded;
                if published.minor_key() != version.minor_key() {
                    return Err(Error::VersionMismatch {
                        published: published.to_string(),
                        binary: version.to_string(),
                    });
                }
                version = published;
                layout = layout
                    .with_overrides(&overrides)
                    .map_err(|detail| Error::Layout {
                        version: version.to_string(),
                        detail,
                    })?;
            }
            runtime.wrapping_add(crate::need!(layout, runtime.interpreters_head)?)
        } else if let Some(head) = binary.symbol("interp_head") {
            head
        } else {
            return Err(Error::UnknownVersion {
                pid: process.pid,
                detail: format!(
                    "{} has neither `_PyRuntime` nor `interp_head` in its symbol tables (a stripped Python 2.7/3.6 is not supported)",
                    binary.path
                ),
            });
        };
        // Which thread holds the GIL, by what the layout has: a GIL per
        // interpreter (3.12+, `ceval.gil`), `_PyRuntime`'s current thread
        // state (3.7–3.11), or the `_PyThreadState_Current` global.
        let gil = match (layout.interpreter.ceval_gil, layout.runtime.tstate_current) {
            (Some(_), _) => GilSource::InterpreterGil,
            (None, Some(at)) => binary
                .symbol("_PyRuntime")
                .map(|runtime| GilSource::CurrentThreadPointer(runtime.wrapping_add(at)))
                .unwrap_or(GilSource::Unknown),
            (None, None) => binary
                .symbol("_PyThreadState_Current")
                .map(GilSource::CurrentThreadPointer)
                .unwrap_or(GilSource::Unknown),
        };
        let sym = |name: &str| binary.symbol(name).unwrap_or(0);
        let types = KnownObjects {
            code_type: sym("PyCode_Type"),
            long_type: sym("PyLong_Type"),
            int_type: sym("PyInt_Type"),
            float_type: sym("PyFloat_Type"),
            bool_type: sym("PyBool_Type"),
            unicode_type: sym("PyUnicode_Type"),
            bytes_type: sym(families.language.bytes_type_symbol()),
            tuple_type: sym("PyTuple_Type"),
            dict_type: sym("PyDict_Type"),
            list_type: sym("PyList_Type"),
            set_type: sym("PySet_Type"),
            frozenset_type: sym("PyFrozenSet_Type"),
            none: sym("_Py_NoneStruct"),
            true_: sym("_Py_TrueStruct"),
            false_: if version.major == 2 {
                sym("_Py_ZeroStruct")
            } else {
                sym("_Py_FalseStruct")
            },
        };
        Ok(Interpreter {
            version,
            layout,
            interp_head_ptr,
            gil,
            types,
            runtime_binary: binary.path.clone(),
            families,
        })
    }
}

/// libpython if the process maps one that holds the runtime, else the
/// executable (static builds such as Debian's /usr/bin/python3.X).
fn find_runtime_binary(process: &ProcessImage, load: &mut BinaryLoader) -> Result<Binary> {
    let files = process.files;
    let name_of = |p: &str| p.rsplit('/').next().unwrap_or("").to_string();
    let mut candidates: Vec<&MappedFile> = files
        .iter()
        .filter(|f| name_of(&f.path).starts_with("libpython"))
        .collect();
    candidates.extend(files.iter().filter(|f| f.path == process.exe));
    candidates.extend(files.iter().filter(|f| {
        let n = name_of(&f.path);
        n.starts_with("python") && f.path != process.exe
    }));
    let mut first_error = None;
    for file in candidates {
        match load(file) {
            Ok(b) if b.symbol("_PyRuntime").is_some() || b.symbol("interp_head").is_some() => {
                return Ok(b)
            }
            Ok(_) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e @ Error::File { .. }) if process.exe.contains("python") => Err(e),
        _ => Err(Error::NotPython {
            pid: process.pid,
            exe: process.exe.to_string(),
        }),
    }
}

fn detect_version(
    process: &ProcessImage,
    binary: &Binary,
    mem: &dyn MemorySource,
) -> Result<Version> {
    if let Some(addr) = binary.symbol("Py_Version") {
        let hex = mem.read_u32(addr)?;
        let v = Version::from_hex(hex as u64);
        if v.major == 3 {
            return Ok(v);
        }
    }
    let from_name = binary.libpython_version();
    let era_is_old = binary.symbol("_PyRuntime").is_none();
    let plausible = |v: &Version| match from_name {
        Some((major, minor)) => v.major == major && v.minor == minor,
        None => era_is_old == (v.major == 2 || v.minor < 7),
    };
    if let Some(v) = binary
        .version_strings
        .iter()
        .filter_map(|s| Version::parse(s))
        .find(plausible)
    {
        return Ok(v);
    }
    if let Some((major, minor)) = from_name {
        return Ok(Version::new(major, minor, None));
    }
    Err(Error::UnknownVersion {
        pid: process.pid,
        detail: format!("no version string in {}", binary.path),
    })
}

/// A free-threaded build: as `_Py_DebugOffsets.free_threaded` says (3.13+,
/// the word after the cookie and the version), or, where the runtime does
/// not start with the debug offsets, by a function only those builds have.
fn is_free_threaded(binary: &Binary, mem: &dyn MemorySource) -> bool {
    if let Some(runtime) = binary.symbol("_PyRuntime") {
        if let Ok(head) = mem.read_vec(runtime, 24) {
            if head.get(..8) == Some(&DEBUG_COOKIE[..]) {
                return word_at(&head, 16) != 0;
            }
        }
    }
    binary.symbol("_Py_MergeZeroLocalRefcount").is_some()
}

/// Reads the running interpreter's `_Py_DebugOffsets` (3.13+): its version
/// and the layout values the table says it publishes.
/// Largest offset or size accepted from a target's `_Py_DebugOffsets`.
const MAX_PUBLISHED_OFFSET: u64 = 64 * 1024;

fn read_debug_offsets(
    pid: i32,
    mem: &dyn MemorySource,
    runtime: u64,
    layout: &Layout,
) -> Result<(Version, Vec<(String, u64)>)> {
    let end = layout.debug_offsets.values().copied().max().unwrap_or(16) + 8;
    if end > 64 * 1024 {
        return Err(Error::Layout {
            version: layout.version.clone(),
            detail: "debug offsets table points past 64 KiB".into(),
        });
    }
    let raw = mem.read_vec(runtime, end as usize)?;
    if &raw[..8] != DEBUG_COOKIE {
        return Err(Error::NotReady {
            pid,
            detail: "_PyRuntime does not start with the _Py_DebugOffsets cookie".into(),
        });
    }
    let word = |at: u64| word_at(&raw, at);
    let version = Version::from_hex(word(8));
    let overrides: Vec<(String, u64)> = layout
        .debug_offsets
        .iter()
        .map(|(field, pos)| (field.clone(), word(*pos)))
        .collect();
    // Every published value is an offset or size inside one struct (the
    // largest real one is under 8 KiB); a bigger one is garbage that would
    // make the walker read or allocate absurd amounts (found by fuzzing).
    if let Some((field, value)) = overrides.iter().find(|(_, v)| *v > MAX_PUBLISHED_OFFSET) {
        return Err(Error::Layout {
            version: version.to_string(),
            detail: format!("_Py_DebugOffsets gives {field} = {value}, past any real struct"),
        });
    }
    Ok((version, overrides))
}
