//! Writes the man pages, generated from the clap definitions in `src/cli.rs`:
//! `pysampler.1` plus one page per subcommand (`pysampler-record.1`, …).
//!
//!     cargo run --release --example gen_man -- OUTDIR      # `make man` writes target/man/

use clap::CommandFactory;
use pysampler::cli::Cli;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out_dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: gen_man OUTDIR");
        return ExitCode::from(2);
    };
    let out_dir = PathBuf::from(out_dir);
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let result = std::fs::create_dir_all(&out_dir).and_then(|()| write_pages(cli, &out_dir));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "gen_man: cannot write man pages to {}: {e}",
                out_dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// One page for `cmd` (named by its display name, e.g. "pysampler-record.1")
/// and one for each of its visible subcommands.
fn write_pages(cmd: clap::Command, out_dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), out_dir)?;
    }
    clap_mangen::Man::new(cmd)
        .source(format!("pysampler {}", env!("CARGO_PKG_VERSION")))
        .manual("pysampler manual")
        .generate_to(out_dir)?;
    Ok(())
}
