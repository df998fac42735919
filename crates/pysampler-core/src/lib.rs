//! pysampler-core: reads CPython's interpreter state out of a copy of a
//! process's memory. It takes bytes — a `MemorySource` (a live process, a
//! snapshot file) and the bytes of the binaries mapped into it — and returns
//! the interpreter's version and layout, its threads, their frames and the
//! code objects behind them. Nothing here touches the operating system: the
//! pysampler crate owns `/proc`, ptrace, timers, terminals and files.
//!
//! The flow, module by module: `maps` + `elf` (which binary holds the
//! runtime, its symbols) → `interpreter` (version, `Layout`, where the runtime
//! is) → `walk` (threads → frames → code objects → names and lines), all of it
//! reading through `memory::MemorySource`; `snapshot` is a saved memory image, `corefile` a crashed process's.
//! `dump` renders stacks as `pysampler dump` prints them (`filenames` shortens
//! their paths): formatting only, the process's facts are passed in.

pub mod corefile;
pub mod dump;
pub mod dump_async;
pub mod elf;
pub mod error;
pub mod filenames;
pub mod interpreter;
pub mod labels;
pub mod maps;
pub mod memory;
pub mod snapshot;
pub mod walk;

pub use error::{Error, Result};
