//! `dump` output. The rendering is the core crate's (`pysampler_core::dump`,
//! pure formatting, so snapshots can be checked against it without a
//! process); this side supplies what only the OS knows about the process.

use crate::process::ProcessInfo;
pub use pysampler_core::dump::{json_text, json_value as json, text, DumpHeader, ThreadActivity};

/// The header lines' facts about a live process.
pub fn header(process: &ProcessInfo) -> DumpHeader {
    DumpHeader {
        pid: process.pid,
        command_line: process.command_line(),
        exe: process.exe.clone(),
    }
}
