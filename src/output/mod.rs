//! Turning stacks and profiles into what people read. This module owns the
//! choice of `record`'s format; `render` holds what the formats share.

pub mod dump_text;
pub mod filenames;
pub mod outfile;

// record's output formats
pub mod chrometrace;
pub mod collapsed;
pub mod flamegraph;
pub mod render;
pub mod speedscope;

use crate::aggregate::Profile;
use render::RenderOptions;
use std::io;

/// An output format of `record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Interactive SVG flame graph.
    Flamegraph,
    /// JSON for https://www.speedscope.app.
    Speedscope,
    /// Collapsed stacks ("a;b;c 42"), as flamegraph.pl and inferno read them.
    Raw,
    /// Chrome trace event JSON, for Perfetto and chrome://tracing.
    Chrometrace,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Flamegraph => "svg",
            Format::Speedscope | Format::Chrometrace => "json",
            Format::Raw => "txt",
        }
    }

    /// Whether the recording should keep the timeline (`Profile::new(true)`):
    /// chrometrace requires it, speedscope uses it to keep samples in time order.
    pub fn needs_timeline(self) -> bool {
        matches!(self, Format::Speedscope | Format::Chrometrace)
    }
}

/// Writes `profile` in `format` to `out`.
pub fn write(
    format: Format,
    profile: &Profile,
    opts: &RenderOptions,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    match format {
        Format::Flamegraph => flamegraph::write(profile, opts, out),
        Format::Speedscope => speedscope::write(profile, opts, out),
        Format::Raw => collapsed::write(profile, opts, out),
        Format::Chrometrace => chrometrace::write(profile, opts, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(Format::Flamegraph.extension(), "svg");
        assert!(Format::Chrometrace.needs_timeline());
        assert!(!Format::Raw.needs_timeline());
    }
}
