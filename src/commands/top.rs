//! `pysampler top`: wires a sampling session to the live view in `crate::top`
//! (full screen on a terminal, plain snapshots otherwise).

use crate::cli::TopArgs;
use crate::error::{Error, Result};
use crate::process::signals::StopRequest;
use crate::sampling::ending::{Ending, StopCause};
use crate::sampling::session::Session;
use crate::sampling::{EndReason, Target};
use crate::top::child_output::ChildLog;
use crate::top::state::Top;
use crate::top::{live, plain, Outcome};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// How long a launched program still running when the view ended gets to
/// exit after SIGINT, before it is killed.
const CHILD_GRACE: Duration = Duration::from_secs(5);

pub fn run(args: &TopArgs) -> Result<i32> {
    let stop = StopRequest::install();
    let full_screen = std::io::stdout().is_terminal();
    let launched = !args.sampling.command.is_empty();
    let log = if full_screen && launched {
        Some(ChildLog::create()?)
    } else {
        None
    };
    // Errors here are printed by main, before the view takes the screen.
    let mut config = args.sampling.session_config()?;
    if let (Some(log), Target::Launch { streams, .. }) = (&log, &mut config.target) {
        *streams = log.streams();
    }
    let mut session = match Session::start(&config) {
        Ok(session) => session,
        Err(e) => {
            log.map(ChildLog::finish);
            return Err(e);
        }
    };
    let sampling = &args.sampling;
    let mut top = Top::new(
        session.root,
        sampling.rate,
        sampling.subprocesses,
        sampling.full_filenames,
    );
    let delay = Duration::from_secs_f64(args.delay);
    let outcome = if full_screen {
        live::run(&mut session, &mut top, &stop, delay)
    } else {
        plain::run(&mut session, &mut top, &stop, delay, &mut std::io::stdout())
    };
    let cause = match outcome {
        // `q`: quitting the view ends the program it started, as Ctrl-C
        // would without the view (raw mode keeps Ctrl-C from reaching it).
        Ok(Outcome::Quit) => StopCause::Quit,
        Ok(Outcome::TargetEnded) => StopCause::NothingLeft,
        // A signal, or the terminal hung up (then SIGHUP is on its way).
        Ok(Outcome::Interrupted) | Err(_) => {
            stop.signal().map_or(StopCause::Quit, StopCause::Signal)
        }
    };
    let root = session.root;
    let ending = Ending {
        cause,
        program: session.stop(CHILD_GRACE),
    };
    if let Some(path) = log.and_then(ChildLog::finish) {
        say(&format!("the program's output is in {}", path.display()));
    }
    let outcome = outcome.map_err(|source| Error::Terminal {
        what: "the screen",
        source,
    })?;
    if outcome == Outcome::TargetEnded {
        say(&ending_message(&top, root));
    }
    if launched {
        say(&ending.to_string());
    }
    Ok(ending.exit_code())
}

/// A message on stderr; ignoring errors, as the terminal may be gone.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "pysampler: {message}");
}

/// "process 1234 exited", or why its sampling stopped.
fn ending_message(top: &Top, root: i32) -> String {
    match top.endings.iter().find(|e| e.pid == root) {
        Some(e) if e.reason != EndReason::Exited => format!("process {root}: {}", e.reason),
        _ => format!("process {root} exited"),
    }
}
