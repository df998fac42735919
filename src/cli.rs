//! The command line, defined in one place.

use clap::{Args, Parser, Subcommand};

const DUMP_EXAMPLES: &str = "Examples:
  pysampler dump --pid 1234
  pysampler dump --pid 1234 --locals
  pysampler dump --pid $(pgrep -f 'python main.py') --json";

const TOP_EXAMPLES: &str = "Examples:
  pysampler top --pid 1234
  pysampler top --pid $(pgrep -f 'python main.py')
  pysampler top -- python main.py

Keys: 1-4 sort by a column, r reverses, t cycles threads, c toggles cumulative,
arrows/PgUp/PgDn scroll, q or Ctrl-C quits.";

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
  pysampler record -s -o profile.svg -- uvicorn app:app --workers 2";

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

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Output file [default: PROGRAM-TIMESTAMP.EXT in the current directory]
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "flamegraph")]
    pub format: crate::output::render::Format,
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
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Process id of the Python program (decimal, or hex with 0x)
    #[arg(short, long, value_parser = parse_pid)]
    pub pid: i32,
    /// Also show each frame's local variables
    #[arg(short, long)]
    pub locals: bool,
    /// Print JSON instead of text (schema in README.md)
    #[arg(short, long)]
    pub json: bool,
    /// Show full paths of source files
    #[arg(long)]
    pub full_filenames: bool,
    /// Do not pause the process while reading it (stacks may be inconsistent)
    #[arg(long)]
    pub nonblocking: bool,
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
