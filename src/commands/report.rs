//! `pysampler report`: a recording rendered again, in any of `record`'s
//! formats and views, for some processes, threads or a window of time;
//! without `-o`, a table of the top functions on stdout.

use crate::cli::ReportArgs;
use crate::error::{Error, Result};
use crate::output::outfile::OutputFile;
use crate::output::render::RenderOptions;
use crate::output::table::{report_table, Screen};
use crate::output::{self, Format};
use crate::recording::export::export;
use crate::recording::replay::{self, Filters, Replayed};
use crate::recording::Header;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn run(args: &ReportArgs) -> Result<i32> {
    let filters = filters(args)?;
    let file = args.recording.display().to_string();
    let Some((format, path)) = output_target(args)? else {
        let replayed = read(args, &filters, false)?;
        let screen = Screen::detect(args.rows, 2);
        let text = report_table(
            &replayed.profile,
            &render_options(args, &replayed.header),
            &file,
            &screen,
        );
        return print(&text);
    };
    // The output is checked before the recording is read: a mistyped
    // folder fails at once, and nothing is left behind on failure.
    let output = OutputFile::prepare(&path)?;
    let replayed = read(args, &filters, format.needs_timeline())?;
    let written = if format == Format::Recording {
        output.write(|out| {
            let input = std::io::BufReader::new(std::fs::File::open(&args.recording)?);
            match export(input, &filters, out) {
                Ok(done) => done.map(drop),
                // It was read a moment ago: it changed meanwhile.
                Err(e) => Err(std::io::Error::other(e.describe(&file))),
            }
        })?
    } else {
        let opts = render_options(args, &replayed.header);
        output.write(|out| output::write(format, &replayed.profile, &opts, out))?
    };
    eprintln!(
        "pysampler: {} of the {} samples in {file} ({:.1} s of {:.1} s); wrote {}",
        replayed.tally.kept,
        replayed.tally.thread_samples,
        replayed.profile.info.duration.as_secs_f64(),
        replayed.length.as_secs_f64(),
        written.display()
    );
    Ok(0)
}

/// Reads and replays the recording, printing what the reader noticed; an
/// error when the filters keep nothing.
fn read(args: &ReportArgs, filters: &Filters, keep_timeline: bool) -> Result<Replayed> {
    let file = args.recording.display().to_string();
    let replayed = replay::load(&args.recording, filters, keep_timeline)?;
    for notice in replayed.notices(&file, filters) {
        eprintln!("pysampler: {notice}");
    }
    replayed.check_not_empty(&file, filters)?;
    Ok(replayed)
}

fn filters(args: &ReportArgs) -> Result<Filters> {
    if let (Some(from), Some(to)) = (args.from, args.to) {
        if from >= to {
            return Err(Error::BadOptions(format!(
                "--from {from} is not before --to {to}: give a window that holds some time"
            )));
        }
    }
    Ok(Filters {
        pids: args.pid.clone(),
        threads: args.thread.clone(),
        from: args.from.map(Duration::from_secs_f64),
        to: args.to.map(Duration::from_secs_f64),
        idle: args.idle,
        gil: args.gil,
    })
}

/// `record`'s view options; each process is its own root when the
/// recording sampled subprocesses, as `record -s` shows them.
fn render_options(args: &ReportArgs, header: &Header) -> RenderOptions {
    RenderOptions {
        function: args.function,
        nolineno: args.nolineno,
        threads: args.threads,
        processes: header.subprocesses,
        full_filenames: args.full_filenames,
        idle: args.idle && header.idle,
    }
}

/// The format and file to write, or `None` for the table: `-o` (its
/// extension choosing the format unless `-f`), or with `-f` alone the
/// recording's name with the format's extension.
fn output_target(args: &ReportArgs) -> Result<Option<(Format, PathBuf)>> {
    let (format, path) = match (&args.output, args.format) {
        (None, None) => return Ok(None),
        (Some(path), given) => {
            let (format, notice) = Format::choose(given, Some(path));
            if let Some(notice) = notice {
                eprintln!("pysampler: {notice}");
            }
            (format, path.clone())
        }
        (None, Some(format)) => (format, args.recording.with_extension(format.extension())),
    };
    if same_file(&path, &args.recording) {
        return Err(Error::BadOptions(format!(
            "the output {} is the recording itself: give another name with -o",
            path.display()
        )));
    }
    Ok(Some((format, path)))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Writes the table to stdout; a reader that went away (`| head`) is fine.
pub fn print(text: &str) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(source) => Err(Error::File {
            path: PathBuf::from("stdout"),
            source,
        }),
    }
}
