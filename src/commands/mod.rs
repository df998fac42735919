//! One module per subcommand; each wires the parts together and nothing more.

pub mod completions;
pub mod diff;
pub mod dump;
pub mod dump_core;
pub mod record;
pub mod report;
pub mod top;

use crate::cli::{Cli, Command};
use crate::error::Result;

/// Runs the command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Dump(args) => dump::run(&args),
        Command::Record(args) => record::run(&args),
        Command::Top(args) => top::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Diff(args) => diff::run(&args),
        Command::Completions(args) => completions::run(&args),
    }
}
