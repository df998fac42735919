//! Errors a user can act on. Each message says what happened and, where there
//! is one, what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),

    #[error("process {0} is pysampler itself; give the pid of a Python program")]
    OwnProcess(i32),

    #[error("process {pid} is a zombie (it exited and its parent has not reaped it); there is nothing left to read")]
    Zombie { pid: i32 },

    #[error("process {pid} ({exe}) is not a Python program: no CPython interpreter (libpython or a python executable with `_PyRuntime`/`interp_head`) found in its memory")]
    NotPython { pid: i32, exe: String },

    #[error("permission denied reading process {pid}: {reason}")]
    PermissionDenied { pid: i32, reason: String },

    #[error("process {0} exited")]
    ProcessExited(i32),

    #[error("process {pid} replaced itself with another program ({exe}) by exec: there is no Python stack to read any more")]
    ProcessReplaced { pid: i32, exe: String },

    #[error("Python {version} is not supported by pysampler (supported: {supported})", supported = crate::interpreter::families::supported_versions_text())]
    UnsupportedVersion { version: String },

    #[error("could not tell which Python version process {pid} runs: {detail}")]
    UnknownVersion { pid: i32, detail: String },

    #[error("the interpreter of process {pid} is not initialised yet, or is shutting down: {detail}; try again in a moment")]
    NotReady { pid: i32, detail: String },

    #[error("could not read the memory of process {pid} at 0x{addr:x} ({len} bytes): {source}")]
    Memory {
        pid: i32,
        addr: u64,
        len: usize,
        source: std::io::Error,
    },

    #[error("process {pid}'s memory kept changing while it was read ({detail}); try again, or drop --nonblocking so the process is paused while it is read")]
    Inconsistent { pid: i32, detail: String },

    #[error("invalid data in the target's memory: {0}")]
    BadData(String),

    #[error("could not open {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("could not parse the ELF file {path}: {detail}")]
    Elf { path: PathBuf, detail: String },

    #[error("the offsets table for Python {version} is invalid: {detail}")]
    Layout { version: String, detail: String },

    #[error("could not encode the snapshot: {0}")]
    SnapshotEncode(String),

    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// True when the error means the process is gone, so callers can stop
    /// quietly instead of reporting a failure.
    pub fn is_process_gone(&self) -> bool {
        matches!(
            self,
            Error::ProcessExited(_) | Error::NoSuchProcess(_) | Error::ProcessReplaced { .. }
        )
    }
}
