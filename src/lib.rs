//! pysampler: a sampling profiler for CPython that reads the interpreter's
//! memory from outside the process. See ARCHITECTURE.md for the data flow.

pub mod aggregate;
pub mod cli;
pub mod commands;
pub mod error;
pub mod interpreter;
pub mod output;
pub mod process;
pub mod sampling;
pub mod top;
pub mod walk;

pub use error::{Error, Result};
