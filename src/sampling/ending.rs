//! How a session ended, in words for the closing summary, and the status
//! pysampler exits with. The rule, for `record` and `top`:
//!
//! - the launched program ended on its own: its status (a script exiting 3
//!   makes pysampler exit 3), so a failing program still fails a build;
//! - pysampler ended it (the duration elapsed, SIGINT/SIGTERM/SIGHUP to
//!   pysampler, `q` in `top`): 0, since stopping was what the user asked for
//!   (the caller turns an output that could not be written into an error);
//! - attached by pid: 0.
//!
//! Ctrl-C in a terminal reaches the program as well as pysampler, and the
//! program may be gone before pysampler looks: that still counts as
//! pysampler's stop, as the user asked pysampler to stop.

use nix::sys::signal::Signal;
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

/// Why pysampler stopped sampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// `--duration` elapsed.
    Duration(Duration),
    /// SIGINT, SIGTERM or SIGHUP to pysampler.
    Signal(Signal),
    /// `q` in `top`, its terminal closed, or the reader of its output gone.
    Quit,
    /// No process was left to sample (they exited, or stopped being Python).
    NothingLeft,
}

/// What became of a launched program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramEnd {
    /// It had ended before pysampler asked it to stop.
    Exited(ExitStatus),
    /// It ended after pysampler's SIGINT.
    Interrupted(ExitStatus),
    /// It was still running `waited` after SIGINT, so pysampler killed it.
    Killed { waited: Duration },
}

/// The whole story: why sampling stopped and, for a launched program, how
/// it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    pub cause: StopCause,
    /// None when attached by pid.
    pub program: Option<ProgramEnd>,
}

impl Ending {
    /// The status pysampler exits with once its output is written.
    pub fn exit_code(&self) -> i32 {
        match (self.cause, self.program) {
            (StopCause::Signal(_) | StopCause::Quit, _) => 0,
            (_, Some(ProgramEnd::Exited(status))) => shell_status(status),
            _ => 0,
        }
    }

    /// Whether the program ended on its own (not because pysampler stopped).
    fn on_its_own(&self) -> bool {
        matches!(self.program, Some(ProgramEnd::Exited(_)))
            && !matches!(self.cause, StopCause::Signal(_) | StopCause::Quit)
    }
}

impl fmt::Display for Ending {
    /// "stopped after 30 s; the program ended on SIGINT", "the program
    /// exited with status 3", "stopped by SIGTERM; the program was killed
    /// after it ignored SIGINT for 5 s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.on_its_own() {
            if let Some(ProgramEnd::Exited(status)) = self.program {
                return write!(f, "the program {}", status_text(status));
            }
        }
        match self.cause {
            StopCause::Duration(d) => write!(f, "stopped after {}", seconds(d))?,
            StopCause::Signal(s) => write!(f, "stopped by {}", s.as_str())?,
            StopCause::Quit => f.write_str("quit")?,
            StopCause::NothingLeft => f.write_str("no process left to sample")?,
        }
        match self.program {
            None => Ok(()),
            Some(ProgramEnd::Exited(status)) => write!(f, "; the program {}", status_text(status)),
            Some(ProgramEnd::Interrupted(status)) => match status.signal() {
                Some(s) if s == Signal::SIGINT as i32 => {
                    f.write_str("; the program ended on SIGINT")
                }
                _ => write!(f, "; the program {} after SIGINT", status_text(status)),
            },
            Some(ProgramEnd::Killed { waited }) => write!(
                f,
                "; the program was killed after it ignored SIGINT for {}",
                seconds(waited)
            ),
        }
    }
}

/// "exited with status 3" or "was killed by SIGSEGV".
fn status_text(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(n)) => match Signal::try_from(n) {
            Ok(s) => format!("was killed by {}", s.as_str()),
            Err(_) => format!("was killed by signal {n}"),
        },
        (None, None) => "ended".to_string(),
    }
}

/// "30 s", "1.5 s": as short as the number allows.
fn seconds(d: Duration) -> String {
    let s = (d.as_secs_f64() * 1000.0).round() / 1000.0;
    format!("{s} s")
}

/// The exit code a shell would report for `status`: the code, or 128 + the
/// signal that killed it.
pub fn shell_status(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    fn killed_by(signal: Signal) -> ExitStatus {
        ExitStatus::from_raw(signal as i32)
    }

    fn ending(cause: StopCause, program: Option<ProgramEnd>) -> Ending {
        Ending { cause, program }
    }

    #[test]
    fn the_program_ending_on_its_own_passes_its_status_through() {
        let e = ending(StopCause::NothingLeft, Some(ProgramEnd::Exited(exited(3))));
        assert_eq!(e.exit_code(), 3);
        assert_eq!(e.to_string(), "the program exited with status 3");
        // Its end came first, although the duration ran out meanwhile.
        let d = StopCause::Duration(Duration::from_secs(30));
        let e = ending(d, Some(ProgramEnd::Exited(killed_by(Signal::SIGSEGV))));
        assert_eq!(e.exit_code(), 128 + 11);
        assert_eq!(e.to_string(), "the program was killed by SIGSEGV");
    }

    #[test]
    fn pysampler_ending_it_exits_0() {
        let d = StopCause::Duration(Duration::from_secs(30));
        let e = ending(d, Some(ProgramEnd::Interrupted(killed_by(Signal::SIGINT))));
        assert_eq!(e.exit_code(), 0);
        assert_eq!(
            e.to_string(),
            "stopped after 30 s; the program ended on SIGINT"
        );
        let waited = Duration::from_secs(5);
        let e = ending(
            StopCause::Signal(Signal::SIGTERM),
            Some(ProgramEnd::Killed { waited }),
        );
        assert_eq!(e.exit_code(), 0);
        assert_eq!(
            e.to_string(),
            "stopped by SIGTERM; the program was killed after it ignored SIGINT for 5 s"
        );
        // Python 2.7 exits 1 on KeyboardInterrupt.
        let d = StopCause::Duration(Duration::from_millis(1500));
        let e = ending(d, Some(ProgramEnd::Interrupted(exited(1))));
        assert_eq!(e.exit_code(), 0);
        assert_eq!(
            e.to_string(),
            "stopped after 1.5 s; the program exited with status 1 after SIGINT"
        );
        // Ctrl-C in a terminal: the program had it too and was gone first.
        let e = ending(
            StopCause::Signal(Signal::SIGINT),
            Some(ProgramEnd::Exited(exited(130))),
        );
        assert_eq!(e.exit_code(), 0);
        assert_eq!(
            e.to_string(),
            "stopped by SIGINT; the program exited with status 130"
        );
        let e = ending(StopCause::Quit, Some(ProgramEnd::Exited(exited(2))));
        assert_eq!(e.exit_code(), 0);
    }

    #[test]
    fn attached_by_pid_exits_0() {
        for cause in [
            StopCause::Duration(Duration::from_secs(2)),
            StopCause::Signal(Signal::SIGHUP),
            StopCause::NothingLeft,
        ] {
            assert_eq!(ending(cause, None).exit_code(), 0);
        }
        let e = ending(StopCause::Duration(Duration::from_secs(2)), None);
        assert_eq!(e.to_string(), "stopped after 2 s");
        assert_eq!(
            ending(StopCause::Signal(Signal::SIGHUP), None).to_string(),
            "stopped by SIGHUP"
        );
    }
}
