//! Turning stacks and profiles into what people read. This module owns the
//! choice of `record`'s format; `render` holds what the formats share.

pub mod dump_text;
pub mod filenames;
pub mod outfile;

// record's output formats
pub mod chrometrace;
pub mod collapsed;
pub mod flamegraph;
pub mod pprof;
pub mod render;
pub mod speedscope;
pub mod table;
pub mod units;

use crate::aggregate::Profile;
use render::RenderOptions;
use std::io;
use std::path::Path;

/// The extension of pysampler's own recordings (`record -o FILE.pysampler`).
pub const RECORDING_EXTENSION: &str = "pysampler";

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
    /// pprof (gzipped profile.proto), for `go tool pprof`, Grafana Pyroscope and other pprof readers.
    Pprof,
    /// A pysampler recording: every sample, to render later with `pysampler report`.
    Recording,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Flamegraph => "svg",
            Format::Speedscope | Format::Chrometrace => "json",
            Format::Raw => "txt",
            Format::Pprof => "pb.gz",
            Format::Recording => RECORDING_EXTENSION,
        }
    }

    /// The format a file name asks for: `.svg`, `.txt`/`.folded`/`.collapsed`,
    /// `.json` (speedscope), `.pb.gz`/`.pprof`, `.pysampler`; `None` for any other.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".pb.gz") {
            return Some(Format::Pprof);
        }
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "svg" => Some(Format::Flamegraph),
            "txt" | "folded" | "collapsed" => Some(Format::Raw),
            "json" => Some(Format::Speedscope),
            "pprof" => Some(Format::Pprof),
            e if e == RECORDING_EXTENSION => Some(Format::Recording),
            _ => None,
        }
    }

    /// The format to write: `-f` when given, else the output's extension,
    /// else the flame graph; with a notice when an extension was not
    /// recognised (so the user knows what the file holds).
    pub fn choose(given: Option<Format>, output: Option<&Path>) -> (Format, Option<String>) {
        if let Some(format) = given {
            return (format, None);
        }
        let Some(path) = output else {
            return (Format::Flamegraph, None);
        };
        match Format::from_extension(path) {
            Some(format) => (format, None),
            None => (
                Format::Flamegraph,
                Some(format!(
                    "writing a flame graph (SVG) into {}: the format follows the extension (.svg, .txt/.folded/.collapsed, .json, .pb.gz/.pprof, .pysampler) and this one is none of those; -f chooses",
                    path.display()
                )),
            ),
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
        Format::Pprof => pprof::write(profile, opts, out),
        // A recording holds the samples, which a profile no longer has:
        // it is written as they come (recording::tee), never from a profile.
        Format::Recording => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a recording is written while sampling, not rendered from a profile",
        )),
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

    #[test]
    fn the_format_follows_the_extension_unless_given() {
        let choose = |given, path: &str| Format::choose(given, Some(Path::new(path)));
        assert_eq!(choose(None, "a.svg"), (Format::Flamegraph, None));
        assert_eq!(choose(None, "a.folded").0, Format::Raw);
        assert_eq!(choose(None, "a.TXT").0, Format::Raw);
        assert_eq!(choose(None, "a.collapsed").0, Format::Raw);
        assert_eq!(choose(None, "a.json").0, Format::Speedscope);
        assert_eq!(
            choose(Some(Format::Chrometrace), "a.json").0,
            Format::Chrometrace
        );
        assert_eq!(choose(None, "run.pysampler").0, Format::Recording);
        assert_eq!(choose(None, "cpu.pb.gz").0, Format::Pprof);
        assert_eq!(choose(None, "cpu.PPROF").0, Format::Pprof);
        let (format, notice) = choose(None, "a.html");
        assert_eq!(format, Format::Flamegraph);
        assert!(notice.unwrap().contains("flame graph"));
        assert!(choose(None, "noext").1.is_some());
        assert_eq!(Format::choose(None, None), (Format::Flamegraph, None));
        assert_eq!(Format::Recording.extension(), "pysampler");
    }
}
