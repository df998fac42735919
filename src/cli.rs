//! The command line, defined in one place.

use crate::error::Error;
use crate::process::launch::ChildStreams;
use crate::sampling::{SamplerConfig, SessionConfig, Target};
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

const DUMP_EXAMPLES: &str = "Examples:
  pysampler dump --pid 1234
  pysampler dump --pid 1234 --locals
  pysampler dump --pid $(pgrep -f 'python main.py') --json
  pysampler dump --pid $(pgrep -o -f uvicorn) --subprocesses
  pysampler dump --core core.12345                   # a crashed or gcore'd process
  pysampler dump --core core.12345 --root /srv/container-root

Exit status: 0 when every Python process asked for was read; with
--subprocesses, 1 when any could not be (the others are still printed).";

const TOP_EXAMPLES: &str = "Examples:
  pysampler top --pid 1234
  pysampler top --pid $(pgrep -f 'python main.py')
  pysampler top -- python main.py

Keys: 1-4 sort by a column, r reverses, t cycles threads, c toggles cumulative,
arrows/PgUp/PgDn scroll, q or Ctrl-C quits.

Exit status: a launched program's own when it ends by itself; 0 when top ends
it (q, Ctrl-C, SIGTERM or SIGHUP: SIGINT to the program, SIGKILL 5 s later if
it is still running) and when watching a pid.";

const COMPLETIONS_EXAMPLES: &str = "Examples:
  pysampler completions bash > /etc/bash_completion.d/pysampler
  pysampler completions zsh > ~/.zfunc/_pysampler
  pysampler completions fish > ~/.config/fish/completions/pysampler.fish";

const RECORD_EXAMPLES: &str = "Examples:
  pysampler record -o profile.svg --pid 1234
  pysampler record -o profile.svg -- python main.py
  pysampler record -o profile.svg --duration 30 -- python main.py
  pysampler record -f speedscope -o profile.json --pid 1234
  pysampler record -f raw -o profile.txt -- python main.py
  pysampler record -s -o profile.svg -- uvicorn app:app --workers 2
  pysampler record -o profile.pb.gz --pid 1234
  pysampler record --pyroscope http://pyroscope:4040 --app-name checkout --tag env=prod -s --pid 1234

Exit status, for a launched program:
  - it ended by itself: its status (a script exiting 3 makes pysampler exit 3);
  - pysampler ended it (--duration elapsed, Ctrl-C, SIGTERM or SIGHUP: SIGINT
    to the program, SIGKILL 5 s later if it is still running) and the profile
    was written: 0;
  - the profile could not be written: 1, with the reason.
With --pid: 0 once the profile is written, 1 when it could not be. The closing
summary says how the program ended.";

const REPORT_EXAMPLES: &str = "Examples:
  pysampler report run.pysampler                      # the hottest functions, as a table
  pysampler report run.pysampler -o run.svg           # the format follows the extension
  pysampler report run.pysampler -f speedscope -o run.json --thread MainThread --from 10 --to 40
  pysampler report run.pysampler --pid 4242 -o worker.txt
  pysampler report run.pysampler --from 60 -o tail.pysampler   # a smaller recording";

const DIFF_EXAMPLES: &str = "Examples:
  pysampler diff before.pysampler after.pysampler                 # the table of changes
  pysampler diff before.pysampler after.pysampler -o diff.svg     # red grew, blue shrank
  pysampler diff before.pysampler after.pysampler --negate -o gone.svg
  pysampler diff before.txt after.txt -f raw -o diff.folded       # collapsed stacks work too";

#[derive(Debug, Parser)]
#[command(
    name = "pysampler",
    version,
    long_version = long_version_text(),
    about = about_text(),
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sample a program and write a flame graph, speedscope profile, collapsed stacks or Chrome trace
    #[command(after_help = RECORD_EXAMPLES)]
    Record(RecordArgs),
    /// Watch a live, top-like view of the functions using the most time
    #[command(after_help = TOP_EXAMPLES)]
    Top(TopArgs),
    /// Print every thread's current Python stack, once
    #[command(after_help = DUMP_EXAMPLES)]
    Dump(DumpArgs),
    /// Render a recording again: any format, any view, some threads or a time window
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Compare two profiles (recordings or collapsed stacks): what grew, what shrank
    #[command(after_help = DIFF_EXAMPLES)]
    Diff(DiffArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Seconds between screen refreshes
    #[arg(long, default_value_t = 1.0, value_parser = parse_duration)]
    pub delay: f64,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// What to sample and how: shared by `record` and `top`.
#[derive(Debug, Args, Clone)]
pub struct SamplingArgs {
    /// Process id of a running Python program (decimal, or hex with 0x)
    #[arg(short, long, value_parser = parse_pid)]
    pub pid: Option<i32>,
    /// Samples per second
    #[arg(short, long, default_value_t = 100.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Also profile child processes (multiprocessing, uvicorn/gunicorn workers)
    #[arg(short, long)]
    pub subprocesses: bool,
    /// Only keep samples of the thread holding the GIL
    #[arg(short, long)]
    pub gil: bool,
    /// Include idle (not running) threads
    #[arg(short, long)]
    pub idle: bool,
    /// Never pause the program (samples may be slightly inconsistent)
    #[arg(long)]
    pub nonblocking: bool,
    /// Also sample every asyncio task, running or suspended, once per tick: its coroutine chain under the tasks awaiting it (3.8+)
    #[arg(long = "async")]
    pub async_tasks: bool,
    /// Show full paths of source files
    #[arg(long)]
    pub full_filenames: bool,
    /// The program to run and profile, after `--`
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

impl SamplingArgs {
    /// The session these options ask for: a pid or a command, not both.
    pub fn session_config(&self) -> Result<SessionConfig, Error> {
        let target = match (self.pid, self.command.is_empty()) {
            (Some(_), false) => return Err(Error::PidAndCommand),
            (None, true) => return Err(Error::NothingToProfile),
            (Some(pid), true) => Target::Pid(pid),
            (None, false) => Target::Launch {
                argv: self.command.clone(),
                streams: ChildStreams::Inherit,
            },
        };
        Ok(SessionConfig {
            target,
            sampler: SamplerConfig {
                interval: Duration::from_secs_f64(1.0 / self.rate),
                blocking: !self.nonblocking,
                include_idle: self.idle,
                gil_only: self.gil,
                async_tasks: self.async_tasks,
            },
            subprocesses: self.subprocesses,
        })
    }
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Output file [default: PROGRAM-TIMESTAMP.EXT in the current directory]
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    /// Output format [default: from the output's extension (.svg, .txt/.folded/.collapsed, .json, .pb.gz/.pprof, .pysampler), else flamegraph]
    #[arg(short, long, value_enum)]
    pub format: Option<crate::output::Format>,
    /// Also keep a recording of the same samples in FILE (re-render it with `pysampler report`)
    #[arg(long, value_name = "FILE")]
    pub recording: Option<std::path::PathBuf>,
    /// Stop after this many seconds [default: when the program exits or on Ctrl-C]
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// Aggregate by function (its first line), not by the current line
    #[arg(short = 'F', long)]
    pub function: bool,
    /// Leave line numbers out of frame names
    #[arg(long)]
    pub nolineno: bool,
    /// Show each thread as the outermost frame
    #[arg(short, long)]
    pub threads: bool,
    #[command(flatten)]
    pub pyroscope: crate::pyroscope::PyroscopeArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The recording (from `pysampler record -o FILE.pysampler`)
    #[arg(value_name = "RECORDING")]
    pub recording: std::path::PathBuf,
    /// Output file [default: print a table of the top functions]
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    /// Output format [default: from the output's extension, else flamegraph]
    #[arg(short, long, value_enum)]
    pub format: Option<crate::output::Format>,
    /// Aggregate by function (its first line), not by the current line
    #[arg(short = 'F', long)]
    pub function: bool,
    /// Leave line numbers out of frame names
    #[arg(long)]
    pub nolineno: bool,
    /// Show each thread as the outermost frame
    #[arg(short, long)]
    pub threads: bool,
    /// Only samples of the thread holding the GIL
    #[arg(short, long)]
    pub gil: bool,
    /// Include samples of idle threads (when the recording has them: record --idle)
    #[arg(short, long)]
    pub idle: bool,
    /// Show full paths of source files
    #[arg(long)]
    pub full_filenames: bool,
    /// Only samples of this process (repeatable)
    #[arg(short, long, value_parser = parse_pid)]
    pub pid: Vec<i32>,
    /// Only samples of this thread: its name or OS thread id (repeatable)
    #[arg(long, value_name = "NAME|TID")]
    pub thread: Vec<String>,
    /// Only samples taken this many seconds or more after the recording began
    #[arg(long, value_name = "SECONDS", value_parser = parse_offset)]
    pub from: Option<f64>,
    /// Only samples taken less than this many seconds after the recording began
    #[arg(long, value_name = "SECONDS", value_parser = parse_offset)]
    pub to: Option<f64>,
    /// Rows of the table [default: what the terminal shows; all when piped]
    #[arg(short = 'n', long, value_name = "N")]
    pub rows: Option<usize>,
}

/// `diff`'s output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    /// Differential flame graph (SVG): widths from AFTER, red grew, blue shrank.
    Flamegraph,
    /// Three-column collapsed stacks ("a;b;c BEFORE AFTER"), as flamegraph.pl and inferno read them.
    Raw,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The profile before the change: a recording or collapsed stacks
    #[arg(value_name = "BEFORE")]
    pub before: std::path::PathBuf,
    /// The profile after the change: a recording or collapsed stacks
    #[arg(value_name = "AFTER")]
    pub after: std::path::PathBuf,
    /// Output file [default: only the table]
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    /// Output format [default: raw for .txt/.folded/.collapsed, else flamegraph]
    #[arg(short, long, value_enum)]
    pub format: Option<DiffFormat>,
    /// Tell lines of a function apart (default: frames match by function and file)
    #[arg(long)]
    pub lines: bool,
    /// The view from BEFORE: widths from BEFORE, so what shrank or disappeared shows
    #[arg(long)]
    pub negate: bool,
    /// Rows of the table [default: what the terminal shows; all when piped]
    #[arg(short = 'n', long, value_name = "N")]
    pub rows: Option<usize>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["pid", "core"])))]
pub struct DumpArgs {
    /// Process id of the Python program (decimal, or hex with 0x)
    #[arg(short, long, value_parser = parse_pid)]
    pub pid: Option<i32>,
    /// Read a core file instead of a live process: a crashed process's
    /// (kernel) or a frozen one's (`gcore`); its binaries are read from disk
    #[arg(long, value_name = "FILE", conflicts_with_all = ["subprocesses", "nonblocking"])]
    pub core: Option<std::path::PathBuf>,
    /// With --core: the folder the process's files are found under (a
    /// container's root), instead of /
    #[arg(long, value_name = "DIR", conflicts_with = "pid")]
    pub root: Option<std::path::PathBuf>,
    /// Also show each frame's local variables; -ll shows more of each value
    /// (strings up to 1,000 characters, the first 10 elements of lists,
    /// tuples, dicts and sets, 3 levels deep)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub locals: u8,
    /// Print JSON instead of text (schema in README.md)
    #[arg(short, long)]
    pub json: bool,
    /// Also dump every Python process descended from PID (multiprocessing,
    /// uvicorn/gunicorn workers), each under its own header, in pid order
    #[arg(short, long)]
    pub subprocesses: bool,
    /// Show full paths of source files
    #[arg(long)]
    pub full_filenames: bool,
    /// Do not pause the process while reading it (stacks may be inconsistent)
    #[arg(long)]
    pub nonblocking: bool,
    /// Also show each asyncio event loop's tasks: name, state, coroutine
    /// chain, and which tasks each one awaits and is awaited by (3.8+)
    #[arg(long = "async")]
    pub async_tasks: bool,
}

/// Accepts "1234" and "0x4d2", as py-spy does.
pub fn parse_pid(text: &str) -> Result<i32, String> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => i32::from_str_radix(hex, 16),
        None => t.parse::<i32>(),
    };
    match parsed {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(format!(
            "'{text}' is not a process id (a positive number, decimal or 0x-hex)"
        )),
    }
}

/// `--version`: the version and the CPython versions this build can read.
/// Samples per second: more than 0 and at most 100,000.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 100_000.0 => Ok(r),
        Ok(_) => Err(format!(
            "rate {text} is out of range: give 1 to 100000 samples per second"
        )),
        Err(_) => Err(format!("'{text}' is not a number of samples per second")),
    }
}

/// Seconds since a recording began: 0 or more.
pub fn parse_offset(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=1e9).contains(&s) => Ok(s),
        Ok(_) => Err(format!(
            "{text} seconds is out of range: give the seconds since the recording began (0 or more)"
        )),
        Err(_) => Err(format!("'{text}' is not a number of seconds")),
    }
}

/// Seconds, more than 0.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 && d <= 1e9 => Ok(d),
        Ok(_) => Err(format!(
            "duration {text} must be a positive number of seconds"
        )),
        Err(_) => Err(format!("'{text}' is not a number of seconds")),
    }
}

fn about_text() -> String {
    format!(
        "A sampling profiler for Python programs (CPython {})",
        pysampler_core::interpreter::families::supported_versions_text()
    )
}

fn long_version_text() -> &'static str {
    let text = format!(
        "{}\nsupported CPython versions: {}",
        env!("CARGO_PKG_VERSION"),
        pysampler_core::interpreter::tables::supported_minors().join(", ")
    );
    Box::leak(text.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::parse_pid;

    #[test]
    fn pids_in_decimal_and_hex() {
        assert_eq!(parse_pid("1234"), Ok(1234));
        assert_eq!(parse_pid("0x4d2"), Ok(1234));
        assert!(parse_pid("0").is_err());
        assert!(parse_pid("-5").is_err());
        assert!(parse_pid("abc").is_err());
    }
}
