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

    #[error("process {pid} runs free-threaded CPython {version} with its GIL off: no thread ever holds a GIL, so --gil would keep no sample. Leave out --gil (each thread's own state says whether it runs), or start the program with PYTHON_GIL=1 to profile it with a GIL")]
    GilDisabled { pid: i32, version: String },

    #[error("permission denied reading process {pid}: {reason}")]
    PermissionDenied { pid: i32, reason: String },

    #[error("process {0} exited")]
    ProcessExited(i32),

    #[error("process {pid} replaced itself with another program ({exe}) by exec: there is no Python stack to read any more")]
    ProcessReplaced { pid: i32, exe: String },

    #[error("Python {version} is not supported by pysampler (supported: {supported})")]
    UnsupportedVersion { version: String, supported: String },

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

    #[error("process memory at 0x{addr:x} holds an implausible {what} ({value}); it was probably changing while read: try again, or drop --nonblocking so the process is paused while it is read")]
    Implausible {
        what: &'static str,
        addr: u64,
        value: i64,
    },

    #[error("the object at 0x{addr:x} is not a {expected}; it was probably changing while read: try again, or drop --nonblocking")]
    WrongType { expected: &'static str, addr: u64 },

    #[error("the {what} at 0x{addr:x} refers back to itself; it was probably changing while read: try again, or drop --nonblocking")]
    Loop { what: &'static str, addr: u64 },

    #[error(
        "the {what} at 0x{addr:x} changed while it was read; try again, or drop --nonblocking"
    )]
    Changed { what: &'static str, addr: u64 },

    #[error("the offsets table gives {field} = {value}, more than pysampler reads: the table for this Python version is wrong (regenerate python-offsets/ with `make offsets`)")]
    LayoutField { field: &'static str, value: u64 },

    #[error("the interpreter's _Py_DebugOffsets say Python {published}, but its binary says {binary}: a mixed installation? Run the program's own python to check")]
    VersionMismatch { published: String, binary: String },

    #[error("could not open {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A core file that cannot be read, or whose process cannot be: the
    /// detail says why and what to do.
    #[error("{}: {detail}", path.display())]
    Core { path: PathBuf, detail: String },

    #[error("could not parse the ELF file {path}: {detail}")]
    Elf { path: PathBuf, detail: String },

    #[error("the offsets table for Python {version} is invalid: {detail}")]
    Layout { version: String, detail: String },

    #[error("asyncio tasks are read on Python 3.8 and later, not on {version} (drop --async)")]
    AsyncioUnsupported { version: String },

    #[error("this Python {version}'s asyncio Task objects are {size} bytes, a layout pysampler does not know (it reads {known}): its tasks cannot be read; please report the exact Python version (python -VV)")]
    TaskLayout {
        version: String,
        size: u64,
        known: String,
    },

    #[error("could not pause thread {tid} of process {pid}: {reason}")]
    PauseFailed { pid: i32, tid: i32, reason: String },

    #[error("could not encode the snapshot: {0}")]
    SnapshotEncode(String),

    #[error("invalid snapshot memory: {0}")]
    SnapshotRegions(String),

    #[error("no memory of process {pid} could be read")]
    NothingReadable { pid: i32 },

    #[error("the memory of process {pid} to save is over the limit of {limit} bytes (reached at 0x{addr:x}); a snapshot is meant for Python programs of ordinary size")]
    SnapshotTooLarge { pid: i32, limit: u64, addr: u64 },

    #[error("invalid pid {0}: give the decimal (or 0x hex) id of a running process")]
    InvalidPid(i32),

    #[error("give either --pid or a command to run, not both")]
    PidAndCommand,

    #[error(
        "nothing to profile: give --pid PID or a command after `--` (e.g. `-- python main.py`)"
    )]
    NothingToProfile,

    #[error("neither process {pid} nor any of its {descendants} descendants is a Python program (or each exited before it could be read)")]
    NoPythonInTree { pid: i32, descendants: usize },

    #[error("command not found: {program}")]
    CommandNotFound { program: String },

    #[error("cannot run {program}: {reason}")]
    CannotRun { program: String, reason: String },

    #[error("`{command}` did not start a Python interpreter within {seconds} s ({detail}); if it runs Python in a child process, add --subprocesses")]
    NoInterpreterStarted {
        command: String,
        seconds: u64,
        detail: String,
    },

    #[error("output {} is a directory; give a file name", path.display())]
    OutputIsDirectory { path: PathBuf },

    #[error("cannot write {}: the folder {} does not exist", path.display(), folder.display())]
    OutputFolderMissing { path: PathBuf, folder: PathBuf },

    #[error("cannot write {}: {source}", path.display())]
    CannotWrite {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot put the output at {}: {source}; it was written to {} instead: move it from there", path.display(), kept.display())]
    OutputNotMoved {
        path: PathBuf,
        kept: PathBuf,
        source: std::io::Error,
    },

    /// A recording (or collapsed-stacks file) that cannot be read; the
    /// message names the file and says what to do.
    #[error("{message}")]
    BadRecording { message: String },

    /// `report`/`diff` filters that leave no sample; the message says what
    /// the recording does hold.
    #[error("{message}")]
    NoMatchingSamples { message: String },

    /// Options that contradict each other (`--from` after `--to`, ...).
    #[error("{0}")]
    BadOptions(String),

    #[error("{before} and {after} have no function in common (matched by function and file{lines}): are they profiles of the same program?")]
    NothingInCommon {
        before: String,
        after: String,
        lines: &'static str,
    },

    #[error("terminal error ({what}): {source}")]
    Terminal {
        what: &'static str,
        source: std::io::Error,
    },
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
