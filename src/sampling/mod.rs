//! Sampling: a drift-free schedule and a sampler thread per process, sending
//! compact samples (interned frame ids) to one aggregator over a channel.

pub mod activity;
pub mod children;
pub mod sampler;
pub mod sampler_cpus;
pub mod schedule;
pub mod session;

use crate::aggregate::{FrameId, ProcessSummary};
use std::sync::Arc;
use std::time::Duration;

/// One thread's part of a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSample {
    pub tid: Option<i32>,
    pub ident: u64,
    pub name: Option<Arc<str>>,
    pub active: bool,
    pub owns_gil: bool,
    /// Innermost frame first.
    pub frames: Vec<FrameId>,
    pub truncated: bool,
}

/// What samplers tell the aggregator.
#[derive(Debug, Clone)]
pub enum Event {
    /// A process is being sampled from now on.
    Started(ProcessSummary),
    /// One tick of one process: the threads that passed the filters.
    Sample {
        pid: i32,
        at: Duration,
        late: bool,
        threads: Vec<ThreadSample>,
    },
    /// A tick that failed (memory changed under us, a thread vanished).
    Error { pid: i32, message: String },
    /// The process is gone (or could not be read any more); its sampler stopped.
    Ended { pid: i32, reason: String },
}

/// How samplers sample.
#[derive(Debug, Clone, Copy)]
pub struct SamplerConfig {
    pub interval: Duration,
    /// Pause the threads while reading (default); false = `--nonblocking`.
    pub blocking: bool,
    /// Keep threads that are not running (`--idle`).
    pub include_idle: bool,
    /// Keep only the thread holding the GIL (`--gil`).
    pub gil_only: bool,
}
