//! pprof: a gzipped `profile.proto`, as Go's `go tool pprof`, Grafana
//! Pyroscope and most profile viewers read it.
//!
//! Two sample types: `samples/count` and the time they stand for,
//! `cpu/nanoseconds` (`wall/nanoseconds` when idle threads were sampled,
//! since then a sample is not CPU time), each sample worth one period
//! (1 s / rate). One Function per (name, file, first line), one Location per
//! (function, line); labels per sample: `pid` and `thread_id` (numbers) and
//! `thread_name`. The stack of each sample is innermost first, as the format
//! wants.

mod builder;
pub mod proto;

use crate::aggregate::{FrameTable, Profile};
use crate::output::render::RenderOptions;
use flate2::write::GzEncoder;
use prost::Message;
use std::io::{self, Write};

/// The profile as pprof messages.
pub fn encode(profile: &Profile, opts: &RenderOptions) -> proto::Profile {
    builder::build(profile, &profile.frames, opts)
}

/// When a profile's samples were taken, in nanoseconds since the Unix
/// epoch, exactly (the recording's start, a float, cannot say it to the
/// nanosecond, and Pyroscope's windows must abut).
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub time_nanos: i64,
    pub duration_nanos: i64,
}

/// The gzipped bytes of the profile, as files and Pyroscope carry them;
/// its frame ids are those of `frames`; `span` replaces the profile's times.
pub fn gzipped_with(
    profile: &Profile,
    frames: &FrameTable,
    opts: &RenderOptions,
    span: Option<Span>,
) -> io::Result<Vec<u8>> {
    let mut message = builder::build(profile, frames, opts);
    if let Some(span) = span {
        message.time_nanos = span.time_nanos;
        message.duration_nanos = span.duration_nanos;
    }
    let bytes = message.encode_to_vec();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()
}

pub fn write(profile: &Profile, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(&gzipped_with(profile, &profile.frames, opts, None)?)
}

#[cfg(test)]
mod tests;
