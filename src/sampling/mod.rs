//! Sampling: a drift-free schedule and a sampler thread per process, sending
//! compact samples (interned frame ids) to one aggregator over a channel.

pub mod activity;
pub mod children;
pub mod ending;
pub mod sampler;
pub mod sampler_cpus;
pub mod schedule;
pub mod session;
pub mod tasks;

use crate::aggregate::{FrameId, ProcessSummary};
use crate::process::launch::ChildStreams;
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
    /// Something the user should know about the samples, said once per
    /// process (e.g. tasks left out of samples to bound their cost).
    Notice { pid: i32, message: String },
    /// The process is gone (or could not be read any more); its sampler stopped.
    Ended { pid: i32, reason: EndReason },
}

/// Why a sampler stopped sampling its process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The session asked it to (duration elapsed, Ctrl-C, `q`).
    Stopped,
    /// Nobody listens to its samples any more.
    AggregatorGone,
    /// The process exited.
    Exited,
    /// The process replaced itself by exec.
    Replaced { exe: String },
    /// Too many failed samples in a row; the last failure.
    GaveUp { failures: u32, last: String },
    /// Reading the process is not allowed (any more).
    PermissionDenied(String),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Stopped => f.write_str("recording stopped"),
            EndReason::AggregatorGone => f.write_str("aggregator gone"),
            EndReason::Exited => f.write_str("process exited"),
            EndReason::Replaced { exe } => write!(
                f,
                "replaced itself with another program ({exe}) by exec; stopped sampling it"
            ),
            EndReason::GaveUp { failures, last } => {
                write!(
                    f,
                    "gave up after {failures} failed samples in a row: {last}"
                )
            }
            EndReason::PermissionDenied(message) => f.write_str(message),
        }
    }
}

/// What a session samples: a running process, or a program it launches.
#[derive(Debug, Clone)]
pub enum Target {
    Pid(i32),
    Launch {
        argv: Vec<String>,
        /// Where the program's stdin, stdout and stderr go.
        streams: ChildStreams,
    },
}

/// Everything a sampling session needs to know, whatever command asked.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub target: Target,
    pub sampler: SamplerConfig,
    /// Also sample the target's Python descendants, as they appear.
    pub subprocesses: bool,
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
    /// Also a sample of every asyncio task (`--async`, sampling::tasks).
    pub async_tasks: bool,
}
