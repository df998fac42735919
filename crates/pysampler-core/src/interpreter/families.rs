//! What differs in *meaning* between CPython versions, not just in position,
//! and the one table that says which versions pysampler supports and which
//! family each belongs to.
//!
//! Positions and sizes are data (`Layout`, from each version's headers). A
//! difference that no offset can express (how frames are chained, how a line
//! table is encoded, where an instance keeps its attributes) is a family: a
//! small enum chosen once per version by `SUPPORTED`, so that walking code
//! branches on the family and never on a version number.

use super::version::Version;
use crate::error::Error;

/// How a code object maps bytecode offsets to source lines; differs by
/// CPython generation (decoded by `walk::linetable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTableFormat {
    /// 2.7 `co_lnotab`: (byte increment, line increment) pairs, both unsigned.
    Lnotab27,
    /// 3.6–3.9 `co_lnotab`: the line increment is a signed byte.
    Lnotab36,
    /// 3.10 `co_linetable`: (signed byte delta, signed line delta) pairs; -128 = no line.
    ///
    /// (In CPython's decoder the byte delta is in fact read as an *unsigned*
    /// byte, 0–254; the line delta is signed.)
    Linetable310,
    /// 3.11+ `co_linetable` location table (varint entries, PEP 657).
    Locations311,
}

/// The families of one CPython version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    pub frames: FrameFamily,
    pub line_table: LineTableFormat,
    pub language: LanguageFamily,
    pub instance_dicts: InstanceDictFamily,
    pub coroutines: CoroutineFamily,
}

/// What really differs between CPython generations in how a stack is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFamily {
    /// ≤3.10: heap `PyFrameObject`s chained by `f_back` from `tstate->frame`.
    FrameObjects,
    /// 3.11–3.12: `_PyInterpreterFrame`s in the thread's data stack, reached
    /// through `tstate->cframe->current_frame`.
    InterpreterFramesViaCFrame,
    /// 3.13: the same frames, reached through `tstate->current_frame`; the
    /// executable may be a non-code object.
    InterpreterFrames,
    /// 3.14+: as 3.13, but `f_executable` and locals are tagged `_PyStackRef`s.
    TaggedInterpreterFrames,
}

impl FrameFamily {
    /// Low bits to clear from a frame's object references.
    pub fn tag_mask(self) -> u64 {
        match self {
            FrameFamily::TaggedInterpreterFrames => !3,
            _ => !0,
        }
    }
}

/// The language's own objects: which string type names are made of, and
/// the standard library's names for what pysampler reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LanguageFamily {
    /// 2.7: identifiers are byte strings (`str`, `PyStringObject`); text is
    /// `unicode` (`PyUnicodeObject`, pointing to UCS-2/4 code units);
    /// `threading.Thread` keeps its name in the mangled `_Thread__name`.
    Python2,
    /// 3.x: identifiers and `str` are PEP 393 strings; `bytes` is apart.
    Python3,
}

impl LanguageFamily {
    /// The symbol of the byte-string type object.
    pub fn bytes_type_symbol(self) -> &'static str {
        match self {
            LanguageFamily::Python2 => "PyString_Type",
            LanguageFamily::Python3 => "PyBytes_Type",
        }
    }

    /// The attribute of a `threading.Thread` that holds its name.
    pub fn thread_name_attribute(self) -> &'static str {
        match self {
            LanguageFamily::Python2 => "_Thread__name",
            LanguageFamily::Python3 => "_name",
        }
    }
}

/// Where an instance keeps its attributes (`walk::dict::instance_attribute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceDictFamily {
    /// ≤3.10: a dict pointer at the offset its type's `tp_dictoffset` gives.
    TypeDictOffset,
    /// 3.11: a managed dict pointer before the object; while it is NULL the
    /// values live in an array that a second pointer, before that, names.
    ManagedDictOrValuesPointer,
    /// 3.12: one slot before the object holds the dict, or the values
    /// array's address minus one (the low bit tells which).
    ManagedDictOrTaggedValues,
    /// 3.13+: the managed dict pointer before the object; while it is NULL
    /// the values are inline, after the object's basic size.
    ManagedDictOrInlineValues,
}

/// How a suspended coroutine shows what it awaits (`walk::asyncio`): which
/// `gi_frame_state` values mean "suspended in an await", and which slot of
/// its value stack holds the awaited object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoroutineFamily {
    /// Not read (≤3.7: tasks are not named; `asyncio.all_tasks` is 3.7+).
    Unsupported,
    /// 3.8–3.9: the coroutine points to a frame object (`gi_frame`, NULL
    /// once finished) and says whether it runs (`gi_running`); suspended, the
    /// frame's `f_stacktop[-1]` is the awaited object.
    FrameObjectStackTop38,
    /// 3.10: `gi_frame` as 3.8, whose `f_state` is SUSPENDED (-1) /
    /// EXECUTING (0) / done (≥1); the object is
    /// `f_valuestack[f_stackdepth - 1]`.
    FrameObjectState310,
    /// 3.11–3.12: the frame is embedded in the coroutine; one SUSPENDED
    /// state (-1) for every suspension; the awaited object is
    /// `localsplus[stacktop - 1]` (the caller checks its type).
    StackTop312,
    /// 3.13: SUSPENDED_YIELD_FROM (-1) names an await; same slot as 3.12.
    StackTop313,
    /// 3.14: SUSPENDED_YIELD_FROM (-1); the object is `stackpointer[-1]`,
    /// a tagged `_PyStackRef`.
    StackPointer314,
    /// 3.15: states renumbered (SUSPENDED_YIELD_FROM 2, its free-threaded
    /// LOCKED twin 3), and the object moved to `stackpointer[-2]`.
    StackPointer315,
}

impl CoroutineFamily {
    /// Whether `state` is a suspension inside an await (or, for 3.12, any
    /// suspension: there the awaited object's type decides).
    pub fn awaiting(self, state: i8) -> bool {
        match self {
            CoroutineFamily::Unsupported | CoroutineFamily::FrameObjectStackTop38 => false,
            CoroutineFamily::FrameObjectState310
            | CoroutineFamily::StackTop312
            | CoroutineFamily::StackTop313
            | CoroutineFamily::StackPointer314 => state == -1,
            CoroutineFamily::StackPointer315 => state == 2 || state == 3,
        }
    }

    /// Whether the coroutine is running now (FRAME_EXECUTING).
    pub fn executing(self, state: i8) -> bool {
        match self {
            CoroutineFamily::StackPointer315 => state == 4,
            CoroutineFamily::Unsupported | CoroutineFamily::FrameObjectStackTop38 => false,
            _ => state == 0,
        }
    }

    /// Whether its frame is gone (FRAME_CLEARED or COMPLETED): no frame to show.
    pub fn finished(self, state: i8) -> bool {
        match self {
            CoroutineFamily::StackPointer315 => state >= 5,
            _ => state >= 1,
        }
    }

    /// Slots below the stack top where the awaited object is (1 = the top).
    pub fn awaited_depth(self) -> u64 {
        match self {
            CoroutineFamily::StackPointer315 => 2,
            _ => 1,
        }
    }
}

/// One row of `SUPPORTED`.
struct Supported {
    major: u32,
    minor: u32,
    families: Families,
}

const fn supported(
    major: u32,
    minor: u32,
    frames: FrameFamily,
    line_table: LineTableFormat,
    language: LanguageFamily,
    instance_dicts: InstanceDictFamily,
    coroutines: CoroutineFamily,
) -> Supported {
    Supported {
        major,
        minor,
        families: Families {
            frames,
            line_table,
            language,
            instance_dicts,
            coroutines,
        },
    }
}

use CoroutineFamily::*;
use FrameFamily::*;
use InstanceDictFamily::*;
use LanguageFamily::*;
use LineTableFormat::*;

/// Every supported CPython minor version, oldest first, and its families:
/// the one place where a version number decides anything. Everything that
/// names the supported versions (`--version`, error messages, the offsets
/// generator's list, the README by a test) is derived from it;
/// `python-offsets/generate.py` reads the `supported(X, Y,` rows, so keep
/// one row per line. A version here needs `python-offsets/X.Y.toml`.
#[rustfmt::skip]
const SUPPORTED: &[Supported] = &[
    supported(2, 7,  FrameObjects,               Lnotab27,     Python2, TypeDictOffset, Unsupported),
    supported(3, 6,  FrameObjects,               Lnotab36,     Python3, TypeDictOffset, Unsupported),
    supported(3, 7,  FrameObjects,               Lnotab36,     Python3, TypeDictOffset, Unsupported),
    supported(3, 8,  FrameObjects,               Lnotab36,     Python3, TypeDictOffset, FrameObjectStackTop38),
    supported(3, 9,  FrameObjects,               Lnotab36,     Python3, TypeDictOffset, FrameObjectStackTop38),
    supported(3, 10, FrameObjects,               Linetable310, Python3, TypeDictOffset, FrameObjectState310),
    supported(3, 11, InterpreterFramesViaCFrame, Locations311, Python3, ManagedDictOrValuesPointer, StackTop312),
    supported(3, 12, InterpreterFramesViaCFrame, Locations311, Python3, ManagedDictOrTaggedValues, StackTop312),
    supported(3, 13, InterpreterFrames,          Locations311, Python3, ManagedDictOrInlineValues, StackTop313),
    supported(3, 14, TaggedInterpreterFrames,    Locations311, Python3, ManagedDictOrInlineValues, StackPointer314),
    supported(3, 15, TaggedInterpreterFrames,    Locations311, Python3, ManagedDictOrInlineValues, StackPointer315),
];

impl Families {
    /// The families of `version`'s minor version; None when it is not supported.
    pub fn of(version: &Version) -> Option<Families> {
        SUPPORTED
            .iter()
            .find(|row| (row.major, row.minor) == (version.major, version.minor))
            .map(|row| row.families)
    }
}

/// Whether pysampler reads `version` (`SUPPORTED` lists it).
pub fn is_supported(version: &Version) -> bool {
    Families::of(version).is_some()
}

/// The error for a version pysampler does not read.
pub fn unsupported(version: &str) -> Error {
    Error::UnsupportedVersion {
        version: version.to_string(),
        supported: format!(
            "{}, and the free-threaded {}",
            supported_versions_text(),
            FREE_THREADED
                .iter()
                .map(|(major, minor)| format!("{major}.{minor}t"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The free-threaded builds with a table of their own ("3.13t.toml").
pub const FREE_THREADED: &[(u32, u32)] = &[(3, 13)];

/// The supported (major, minor) versions, oldest first.
pub fn supported_versions() -> impl Iterator<Item = (u32, u32)> {
    SUPPORTED.iter().map(|row| (row.major, row.minor))
}

/// The supported versions for people: runs of consecutive minor versions,
/// "2.7 and 3.6 to 3.15".
pub fn supported_versions_text() -> String {
    runs_text(supported_versions())
}

fn runs_text(versions: impl Iterator<Item = (u32, u32)>) -> String {
    let mut runs: Vec<((u32, u32), (u32, u32))> = Vec::new();
    for (major, minor) in versions {
        match runs.last_mut() {
            Some((_, last)) if *last == (major, minor.wrapping_sub(1)) => *last = (major, minor),
            _ => runs.push(((major, minor), (major, minor))),
        }
    }
    let runs: Vec<String> = runs
        .iter()
        .map(|&((a, b), (c, d))| match (a, b) == (c, d) {
            true => format!("{a}.{b}"),
            false => format!("{a}.{b} to {c}.{d}"),
        })
        .collect();
    match runs.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => runs.concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        let of = |m| Families::of(&Version::new(3, m, Some(0))).map(|f| f.frames);
        assert_eq!(of(10), Some(FrameFamily::FrameObjects));
        assert_eq!(of(12), Some(FrameFamily::InterpreterFramesViaCFrame));
        assert_eq!(of(13), Some(FrameFamily::InterpreterFrames));
        assert_eq!(of(15), Some(FrameFamily::TaggedInterpreterFrames));
        assert_eq!(of(16), None);
        let py27 = Families::of(&Version::new(2, 7, Some(18))).unwrap();
        assert_eq!(py27.line_table, LineTableFormat::Lnotab27);
        assert_eq!(py27.language, LanguageFamily::Python2);
    }

    #[test]
    fn supported_versions_are_in_order() {
        let all: Vec<(u32, u32)> = supported_versions().collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
        let (first, last) = (all[0], all[all.len() - 1]);
        let text = supported_versions_text();
        assert!(
            text.starts_with(&format!("{}.{}", first.0, first.1)),
            "{text}"
        );
        assert!(text.ends_with(&format!("{}.{}", last.0, last.1)), "{text}");
    }

    #[test]
    fn versions_are_rendered_as_runs() {
        let text = |v: &[(u32, u32)]| runs_text(v.iter().copied());
        assert_eq!(
            text(&[(2, 7), (3, 6), (3, 7), (3, 8)]),
            "2.7 and 3.6 to 3.8"
        );
        assert_eq!(text(&[(3, 6), (3, 8), (3, 9)]), "3.6 and 3.8 to 3.9");
        assert_eq!(text(&[(2, 7), (3, 0), (3, 2)]), "2.7, 3.0 and 3.2");
        assert_eq!(text(&[(3, 12)]), "3.12");
        assert_eq!(text(&[]), "");
    }
}
