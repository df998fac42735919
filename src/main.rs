use clap::Parser;
use pysampler::cli::Cli;

fn main() {
    let cli = Cli::parse();
    match pysampler::commands::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("pysampler: {e}");
            std::process::exit(1);
        }
    }
}
