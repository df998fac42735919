//! Recordings: the samples of a `record` run kept losslessly in a file, so
//! that `report` can render them again in any format and with any filter,
//! and `diff` can compare two runs.
//!
//! The writer sits at the aggregator seam: the `sampling::Event`s that build
//! the `Profile` are also encoded as they come, and written in chunks about
//! once a second. The reader replays the chunks into the same shapes (frame
//! table, stack tree, thread samples with their flags and times), so a
//! report renders exactly what `record` would have written.
//!
//! # File layout (format 1.1; 1.0 had no frame column)
//!
//! ```text
//! magic          8 bytes  89 'p' 'y' 's' 'r' 'e' 'c' 0a
//! major, minor   u16 LE each
//! writer         u8 length + UTF-8: the pysampler version that wrote it
//! header         u32 LE length, u32 LE crc32, JSON (`Header`)
//! chunk*         u32 LE stored length, u32 LE raw length, u8 encoding
//!                (0 stored, 1 deflate), u32 LE crc32 of the nine bytes
//!                before it and the stored bytes; then the stored bytes
//! ```
//!
//! The preamble (magic, versions, writer) never changes, so a reader can
//! always name the pysampler that wrote a file it cannot read. A newer minor
//! version only adds what older readers may skip; a newer major version is
//! refused with both versions named.
//!
//! A chunk's raw bytes are records, each `varint tag, varint length, body`
//! (unknown tags are skipped, and bytes after the fields a reader knows are
//! ignored, so a later minor version can add records and fields: columns,
//! native frames, tasks). Things are defined once, before the first record
//! that refers to them, and numbered in order of definition from 0:
//!
//! | tag | record | body |
//! | --- | --- | --- |
//! | 1 | frame | name, file, line, first line, column (1.1: 1-based, 0 unknown; absent in 1.0 files) |
//! | 2 | process | pid, command line, working directory?, Python version |
//! | 3 | thread | pid, OS thread id?, Python ident, name? |
//! | 4 | thread name | thread, new name |
//! | 5 | stack | parent stack (0 = the empty stack), frame: a node of the prefix tree of stacks |
//! | 6 | tick | pid, time since the previous tick (signed, ns), flags (late), threads: (thread, flags (active, GIL, truncated), stack)* |
//! | 7 | error | pid, message |
//! | 8 | ended | pid, why (and its detail) |
//! | 9 | end | the recording's duration (ns): it ended cleanly |
//!
//! Integers are LEB128 varints (signed ones zigzagged); strings a varint
//! length and UTF-8; `?` marks an optional value (a byte 0/1 first). A
//! stack is stored once as nodes of the same prefix tree the profile
//! builds, so a sample costs a few bytes however deep its stack.
//!
//! Reading stops at the first chunk that is cut off or whose checksum is
//! wrong: everything before it is kept, and the report says where it was cut.

pub mod codec;
pub mod export;
pub mod reader;
pub mod replay;
pub mod tee;
pub mod writer;

#[cfg(test)]
pub(crate) mod tests;

use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const MAGIC: [u8; 8] = *b"\x89pysrec\n";
/// Bumped when an older reader could not make sense of a file.
pub const MAJOR: u16 = 1;
/// Bumped when records or fields are added that older readers may skip.
pub const MINOR: u16 = 1;
/// The file name extension of recordings.
pub use crate::output::RECORDING_EXTENSION as EXTENSION;

/// Largest header JSON.
pub const MAX_HEADER_BYTES: u32 = 1 << 20;
/// Largest chunk, stored or raw. The writer cuts chunks at `CHUNK_BYTES`,
/// so only a damaged or hostile file comes near it.
pub const MAX_CHUNK_BYTES: u32 = 64 << 20;
/// The writer starts a new chunk when this many raw bytes are waiting.
pub const CHUNK_BYTES: usize = 1 << 20;
/// ... or when this long has passed since the last chunk: what a recording
/// cut short by SIGKILL or a power cut loses at most.
pub const CHUNK_EVERY: Duration = Duration::from_secs(1);
/// Deepest stack accepted (the walker stops at 10,000 frames).
pub const MAX_STACK_DEPTH: u32 = 20_000;
/// Most threads in one tick.
pub const MAX_TICK_THREADS: u64 = 100_000;
/// Longest string (a command line, a frame name, an error message).
pub const MAX_STRING_BYTES: u64 = 1 << 20;

pub const TAG_FRAME: u64 = 1;
pub const TAG_PROCESS: u64 = 2;
pub const TAG_THREAD: u64 = 3;
pub const TAG_THREAD_NAME: u64 = 4;
pub const TAG_STACK: u64 = 5;
pub const TAG_TICK: u64 = 6;
pub const TAG_ERROR: u64 = 7;
pub const TAG_ENDED: u64 = 8;
pub const TAG_END: u64 = 9;

/// Tick flags.
pub const TICK_LATE: u8 = 1;
/// Thread sample flags.
pub const THREAD_ACTIVE: u8 = 1;
pub const THREAD_GIL: u8 = 2;
pub const THREAD_TRUNCATED: u8 = 4;

/// What the recording is of, written once at the start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Header {
    /// What was profiled (the command, or "pid 1234").
    pub command: String,
    pub rate_hz: f64,
    /// Wall-clock start, seconds since the Unix epoch.
    pub start_unix: f64,
    /// The sampling options: what the samples can and cannot hold.
    pub subprocesses: bool,
    pub idle: bool,
    pub gil: bool,
    pub nonblocking: bool,
}

impl Header {
    /// The sampling interval, computed as `record` computes it.
    /// A damaged header's absurd rate gives at most a day, so that the
    /// timeline's arithmetic on it cannot overflow.
    pub fn interval(&self) -> Duration {
        const DAY: Duration = Duration::from_secs(86_400);
        if self.rate_hz.is_finite() && self.rate_hz > 0.0 {
            Duration::try_from_secs_f64(1.0 / self.rate_hz)
                .unwrap_or(DAY)
                .min(DAY)
        } else {
            Duration::ZERO
        }
    }
}

/// Why a file cannot be read at all (not why it was cut short: see
/// `reader::Cut`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The file has no bytes at all.
    Empty,
    /// The file does not start like a recording.
    NotARecording,
    /// Written by a pysampler whose format this one does not know.
    Newer {
        writer: String,
        major: u16,
        minor: u16,
    },
    /// Shorter than its own preamble and header.
    Truncated,
    /// The header is damaged.
    BadHeader(String),
}

impl OpenError {
    /// One line about `file`, saying what to do.
    pub fn describe(&self, file: &str) -> String {
        match self {
            OpenError::Empty => format!(
                "{file} is empty (0 bytes): not a recording, or one whose recorder could not write a byte"
            ),
            OpenError::NotARecording => format!(
                "{file} is not a pysampler recording (make one with `pysampler record -o FILE.{EXTENSION}`)"
            ),
            OpenError::Newer {
                writer,
                major,
                minor,
            } => format!(
                "{file} was written by pysampler {writer} (recording format {major}.{minor}); this pysampler {} reads format {MAJOR}.{MINOR} and older: update pysampler to read it",
                env!("CARGO_PKG_VERSION")
            ),
            OpenError::Truncated => format!(
                "{file} is cut short before its first chunk: it holds no samples (was the recording killed as it started?)"
            ),
            OpenError::BadHeader(why) => {
                format!("{file} is a damaged recording: its header is unreadable ({why})")
            }
        }
    }
}
