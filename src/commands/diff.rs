//! `pysampler diff BEFORE AFTER`: what changed between two profiles of the
//! same program. The table of own-time changes goes to stdout; with `-o`,
//! a differential flame graph (or `-f raw` three-column stacks) too.

use crate::cli::{DiffArgs, DiffFormat};
use crate::diff::{self, compare};
use crate::error::{Error, Result};
use crate::output::outfile::OutputFile;
use crate::output::table::Screen;
use std::path::Path;

pub fn run(args: &DiffArgs) -> Result<i32> {
    // The output is checked before anything is read, and written only once
    // both sides are known to compare.
    let target = match (&args.output, args.format) {
        (Some(path), given) => Some((format_for(given, path), OutputFile::prepare(path)?)),
        (None, Some(_)) => {
            return Err(Error::BadOptions(
                "-f chooses the output's format: give the output file with -o too".into(),
            ))
        }
        (None, None) => None,
    };
    let before = diff::load(&args.before, args.lines)?;
    let after = diff::load(&args.after, args.lines)?;
    compare::check_common(&before, &after, args.lines)?;
    if let Some((format, output)) = target {
        let written = output.write(|out| match format {
            DiffFormat::Flamegraph => compare::write_flamegraph(&before, &after, args.negate, out),
            DiffFormat::Raw => compare::write_raw(&before, &after, args.negate, out),
        })?;
        eprintln!("pysampler: wrote {}", written.display());
    }
    let screen = Screen::detect(args.rows, 4);
    super::report::print(&compare::table(&before, &after, &screen))
}

/// `-f`, else raw for .txt/.folded/.collapsed, else the flame graph (with a
/// notice for an extension that says neither).
fn format_for(given: Option<DiffFormat>, path: &Path) -> DiffFormat {
    if let Some(format) = given {
        return format;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("txt" | "folded" | "collapsed") => DiffFormat::Raw,
        Some("svg") => DiffFormat::Flamegraph,
        _ => {
            eprintln!(
                "pysampler: writing a differential flame graph (SVG) into {}: the format follows the extension (.svg, or .txt/.folded/.collapsed for raw) and this one is neither; -f chooses",
                path.display()
            );
            DiffFormat::Flamegraph
        }
    }
}
