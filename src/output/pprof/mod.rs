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

use crate::aggregate::Profile;
use crate::output::render::RenderOptions;
use flate2::write::GzEncoder;
use prost::Message;
use std::io::{self, Write};

/// The profile as pprof messages.
pub fn encode(profile: &Profile, opts: &RenderOptions) -> proto::Profile {
    builder::build(profile, opts)
}

/// The gzipped bytes of the profile, as files and Pyroscope carry them.
pub fn gzipped(profile: &Profile, opts: &RenderOptions) -> io::Result<Vec<u8>> {
    let bytes = encode(profile, opts).encode_to_vec();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()
}

pub fn write(profile: &Profile, opts: &RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(&gzipped(profile, opts)?)
}

#[cfg(test)]
mod tests;
