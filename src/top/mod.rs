//! `pysampler top`: a live, top-like table of the functions using the most
//! time, refreshed every `--delay` seconds.
//!
//! Rows are functions (name, file and first line, shown as
//! "name (file:line)" with the line the function starts on), as py-spy's top
//! does by default. %Own and %Total are shares of the last interval (or,
//! after `c`, of everything since start) where 100% is one thread busy for
//! the whole span, so several threads can add up to more than 100%, as CPU%
//! in `top`. OwnTime and TotalTime are seconds since start. Own means the
//! innermost frame; total means anywhere on the stack, once per sample even
//! when the function recurses.
//!
//! Parts: `stats` counts, `table` sorts and formats rows, `state` turns
//! session events into counts, `summary` is the text both outputs share,
//! `live`/`view`/`keys`/`input`/`terminal` are the full-screen view, `plain`
//! the snapshots printed when stdout is not a terminal, and `child_output`
//! keeps a launched program from writing over the view.

pub mod child_output;
pub mod input;
pub mod keys;
pub mod live;
pub mod plain;
pub mod state;
pub mod stats;
pub mod summary;
pub mod table;
pub mod terminal;
pub mod view;

use crate::sampling::session::Session;
use state::Top;
use std::time::{Duration, Instant};

/// Why the view ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `q`, Ctrl-C in the view, or the reader of the snapshots went away.
    Quit,
    /// SIGINT, SIGTERM or SIGHUP.
    Interrupted,
    /// Nothing is left to sample.
    TargetEnded,
}

/// Takes in every sample waiting in the session's channel.
fn take_samples(session: &Session, top: &mut Top) {
    while let Ok(event) = session.events.try_recv() {
        top.handle(event, &session.frames);
    }
}

/// The next refresh time: on schedule, or `delay` from now when behind.
fn next_refresh(previous: Instant, delay: Duration, now: Instant) -> Instant {
    let next = previous + delay;
    if next <= now {
        now + delay
    } else {
        next
    }
}
