//! pysampler: a sampling profiler for CPython that reads the interpreter's
//! memory from outside the process. See ARCHITECTURE.md for the data flow.
//!
//! Reading CPython's structures is the `pysampler_core` crate; this crate is
//! everything that touches the operating system (processes, ptrace, timers,
//! terminals, files) and what turns samples into profiles.

pub mod aggregate;
pub mod cli;
pub mod commands;
pub mod diff;
pub mod error;
pub mod output;
pub mod process;
pub mod pyroscope;
pub mod recording;
pub mod sampling;
pub mod top;

pub use error::{Error, Result};
