//! The command line, defined in one place.

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "Examples:
  pysampler dump --pid 1234
  pysampler dump --pid 1234 --locals
  pysampler dump --pid $(pgrep -f 'python main.py') --json";

#[derive(Debug, Parser)]
#[command(
    name = "pysampler",
    version,
    long_version = long_version_text(),
    about = "A sampling profiler for Python programs (CPython 2.7 and 3.6-3.15)",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every thread's current Python stack, once
    #[command(after_help = AFTER_HELP)]
    Dump(DumpArgs),
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
fn long_version_text() -> &'static str {
    let text = format!(
        "{}\nsupported CPython versions: {}",
        env!("CARGO_PKG_VERSION"),
        crate::interpreter::tables::supported_minors().join(", ")
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
