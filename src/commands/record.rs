//! `pysampler record`: sample until the program exits, the duration ends or
//! Ctrl-C, then write the profile once.

use crate::aggregate::{Profile, RecordingInfo};
use crate::cli::RecordArgs;
use crate::error::Result;
use crate::output;
use crate::output::outfile::{self, OutputFile};
use crate::output::render::RenderOptions;
use crate::process::signals::StopRequest;
use crate::pyroscope::Pusher;
use crate::recording::tee::Outputs;
use crate::recording::Header;
use crate::sampling::ending::{Ending, StopCause};
use crate::sampling::session::Session;
use crate::sampling::{EndReason, Event};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime};

/// How often the recorder takes in the samples waiting in the channel (the
/// channel holds 16,384 events: 1.6 s of one process at 10,000 Hz).
const DRAIN_EVERY: Duration = Duration::from_millis(100);
/// How often the live status line is redrawn.
const STATUS_EVERY: Duration = Duration::from_millis(250);
/// How often the session looks for ended and new processes.
const POLL_EVERY: Duration = Duration::from_millis(20);
/// How long a launched program still running when recording stopped gets
/// to exit after SIGINT, before it is killed.
const CHILD_GRACE: Duration = Duration::from_secs(5);

pub fn run(args: &RecordArgs) -> Result<i32> {
    let command = if args.sampling.command.is_empty() {
        args.sampling
            .pid
            .and_then(|pid| crate::process::ProcessInfo::open(pid).ok())
            .map(|p| p.cmdline)
            .unwrap_or_default()
    } else {
        args.sampling.command.clone()
    };
    let (format, notice) = output::Format::choose(args.format, args.output.as_deref());
    if let Some(notice) = notice {
        eprintln!("pysampler: {notice}");
    }
    let program = outfile::program_name(&command);
    let pyroscope = args.pyroscope.config(&program, args.sampling.rate)?;
    // With --pyroscope, a local file only when -o asks for one.
    let path = match (&args.output, &pyroscope) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(_)) if args.recording.is_some() => {
            return Err(crate::error::Error::BadOptions(
                "--recording with --pyroscope needs -o too (the profile file beside the recording)"
                    .into(),
            ))
        }
        (None, Some(_)) => None,
        (None, None) => Some(outfile::default_name(&program, format.extension())),
    };
    let mut outputs = match &path {
        Some(path) => Some(Outputs::prepare(
            format,
            OutputFile::prepare(path)?,
            args.recording.as_deref(),
        )?),
        None => None,
    };
    let stop = StopRequest::install();
    let started_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let opts = RenderOptions {
        function: args.function,
        nolineno: args.nolineno,
        threads: args.threads,
        processes: args.sampling.subprocesses,
        full_filenames: args.sampling.full_filenames,
        // Suspended tasks are sampled whether they run or not: wall time.
        idle: args.sampling.idle || args.sampling.async_tasks,
    };
    let mut session = Session::start(&args.sampling.session_config()?)?;
    let header = recording_header(args, &command, started_unix);
    if let Err(e) = outputs.as_mut().map_or(Ok(()), |o| o.start(&header)) {
        session.stop(CHILD_GRACE);
        return Err(e);
    }
    let destination = match (&path, &pyroscope) {
        (Some(path), None) => format!("into {}", path.display()),
        (Some(path), Some(p)) => format!(
            "into {} and to Pyroscope {} every {} s",
            path.display(),
            p.url,
            p.every.as_secs_f64()
        ),
        (None, Some(p)) => format!(
            "to Pyroscope {} every {} s as service_name={}",
            p.url,
            p.every.as_secs_f64(),
            p.app_name
        ),
        (None, None) => String::new(),
    };
    eprintln!(
        "pysampler: recording {} at {} Hz {destination}; Ctrl-C to stop",
        describe_target(&session, &args.sampling),
        args.sampling.rate,
    );
    let interval = Duration::from_secs_f64(1.0 / args.sampling.rate);
    let mut recorder = Recorder::new(format.needs_timeline(), interval, session.is_launched());
    if let Some(config) = pyroscope {
        let pusher = Pusher::start(config, started_unix, opts.clone());
        recorder.pusher = Some(pusher.map_err(|e| {
            crate::error::Error::BadOptions(format!("could not start the uploader thread: {e}"))
        })?);
    }
    let duration = args.duration.map(Duration::from_secs_f64);
    let status_line = std::io::stderr().is_terminal();
    let mut last_status = Instant::now();
    let mut last_poll = Instant::now();
    loop {
        // Samples are taken in every few milliseconds, not one by one: a
        // receiver blocked on the channel would be woken (a futex call and a
        // context switch) for every sample.
        let left = duration.map(|d| d.saturating_sub(session.start.elapsed()));
        std::thread::sleep(left.map_or(DRAIN_EVERY, |l| l.min(DRAIN_EVERY)));
        let disconnected = loop {
            match session.events.try_recv() {
                Ok(event) => {
                    if let Some(outputs) = &mut outputs {
                        outputs.event(&event, &session.frames);
                    }
                    recorder.handle(event)
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break false,
                Err(crossbeam_channel::TryRecvError::Disconnected) => break true,
            }
        };
        if disconnected {
            break;
        }
        let elapsed = session.start.elapsed();
        if let Some(pusher) = &mut recorder.pusher {
            pusher.tick(elapsed, &recorder.profile.processes, &session.frames);
        }
        if stop.requested() || duration.is_some_and(|d| elapsed >= d) {
            break;
        }
        // Process bookkeeping reads /proc: a few times a second, not per sample.
        if last_poll.elapsed() >= POLL_EVERY {
            last_poll = Instant::now();
            session.poll();
            if session.finished() {
                break;
            }
        }
        if status_line && last_status.elapsed() >= STATUS_EVERY {
            last_status = Instant::now();
            eprint!("\r\x1b[K{}", recorder.status(elapsed));
        }
    }
    let elapsed = session.start.elapsed();
    // A signal counts even when the loop ended for another reason first:
    // Ctrl-C in a terminal also ends the program, which may be gone before
    // the flag is looked at.
    let cause = match (stop.signal(), duration) {
        (Some(signal), _) => StopCause::Signal(signal),
        (None, Some(d)) if elapsed >= d => StopCause::Duration(d),
        (None, _) => StopCause::NothingLeft,
    };
    let frames = session.frames.clone();
    let events = session.events.clone();
    let ending = Ending {
        cause,
        program: session.stop(CHILD_GRACE),
    };
    while let Ok(event) = events.try_recv() {
        if let Some(outputs) = &mut outputs {
            outputs.event(&event, &frames);
        }
        recorder.handle(event);
    }
    if status_line {
        eprint!("\r\x1b[K");
    }
    let mut profile = std::mem::take(&mut recorder.profile);
    profile.frames = frames.lock().clone();
    profile.info = RecordingInfo {
        command: if command.is_empty() {
            format!("pid {}", session_root(&args.sampling))
        } else {
            command.join(" ")
        },
        rate_hz: args.sampling.rate,
        start_unix: started_unix,
        duration: elapsed,
        samples: recorder.ticks,
        late_samples: recorder.late,
        errors: recorder.errors,
    };
    let pushed = recorder
        .pusher
        .take()
        .map(|p| p.finish(elapsed, &profile.processes, &frames).0);
    let written = outputs.map(|o| {
        o.finish(elapsed, &frames, |out| {
            output::write(format, &profile, &opts, out)
        })
    });
    let written = written.transpose();
    summarize(
        &profile,
        &recorder,
        &ending,
        written.as_ref().ok().and_then(|w| w.as_ref()),
        pushed.as_deref(),
    );
    // Not written: main prints why, and pysampler exits non-zero whatever
    // became of the program.
    written?;
    Ok(ending.exit_code())
}

fn describe_target(session: &Session, args: &crate::cli::SamplingArgs) -> String {
    let what = if session.is_launched() {
        "program"
    } else {
        "process"
    };
    let children = if args.subprocesses {
        " and its subprocesses"
    } else {
        ""
    };
    format!("{what} {}{children}", session.root)
}

fn session_root(args: &crate::cli::SamplingArgs) -> i32 {
    args.pid.unwrap_or(0)
}

fn summarize(
    profile: &Profile,
    recorder: &Recorder,
    ending: &Ending,
    written: Option<&std::path::PathBuf>,
    pushed: Option<&str>,
) {
    let info = &profile.info;
    let late = if info.samples > 0 {
        100.0 * info.late_samples as f64 / info.samples as f64
    } else {
        0.0
    };
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "pysampler: {} samples in {:.1} s ({:.1}% late, {} errors) from {} process(es); {ending}; {}",
        info.samples,
        info.duration.as_secs_f64(),
        late,
        info.errors,
        profile.processes.len(),
        match (written, pushed) {
            (Some(path), None) => format!("wrote {}", path.display()),
            (Some(path), Some(pushed)) => format!("wrote {}; {pushed}", path.display()),
            (None, Some(pushed)) => pushed.to_string(),
            (None, None) => "the output was not written".to_string(),
        }
    );
    if info.samples == 0 {
        let _ = writeln!(err, "pysampler: no samples were taken (the program ended before its interpreter could be read, or no thread was active; --idle includes idle threads)");
    }
    for reason in &recorder.endings {
        let _ = writeln!(err, "pysampler: {reason}");
    }
    if let Some(message) = &recorder.last_error {
        let _ = writeln!(err, "pysampler: last error: {message}");
    }
}

/// The aggregator: turns events into the profile.
struct Recorder {
    profile: Profile,
    interval: Duration,
    ticks: u64,
    late: u64,
    errors: u64,
    last_error: Option<String>,
    endings: Vec<String>,
    launched: bool,
    /// With --pyroscope: the windows being cut and pushed.
    pusher: Option<Pusher>,
}

impl Recorder {
    fn new(keep_timeline: bool, interval: Duration, launched: bool) -> Recorder {
        Recorder {
            profile: Profile::new(keep_timeline),
            interval,
            ticks: 0,
            late: 0,
            errors: 0,
            last_error: None,
            endings: Vec::new(),
            launched,
            pusher: None,
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Started(summary) => self.profile.processes.push(summary),
            Event::Sample {
                pid,
                at,
                late,
                threads,
            } => {
                self.ticks += 1;
                self.late += u64::from(late);
                if let Some(pusher) = &mut self.pusher {
                    pusher.sample(pid, at, &threads);
                }
                for t in threads {
                    let index = self
                        .profile
                        .threads
                        .index(pid, t.tid, t.ident, t.name.as_deref());
                    self.profile.add(index, &t.frames, at, self.interval);
                }
            }
            Event::Error { message, .. } => {
                self.errors += 1;
                self.last_error = Some(message);
            }
            Event::Notice { pid, message } => {
                self.endings.push(format!("process {pid}: {message}"));
            }
            Event::Ended { pid, reason } => {
                // A launched program ending is the normal end of a recording.
                let expected =
                    reason == EndReason::Stopped || (self.launched && reason == EndReason::Exited);
                if !expected {
                    self.endings.push(format!("process {pid}: {reason}"));
                }
            }
        }
    }

    fn status(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.ticks as f64 / secs
        } else {
            0.0
        };
        let pushed = match &self.pusher {
            Some(p) => format!(", {}", p.status()),
            None => String::new(),
        };
        format!(
            "pysampler: {:.1} s, {} samples, {:.0} Hz, {} errors{pushed}",
            secs, self.ticks, rate, self.errors
        )
    }
}

/// The header of `record`'s recordings: what it was asked to do.
fn recording_header(args: &crate::cli::RecordArgs, command: &[String], start_unix: f64) -> Header {
    let s = &args.sampling;
    Header {
        command: if command.is_empty() {
            format!("pid {}", s.pid.unwrap_or(0))
        } else {
            command.join(" ")
        },
        rate_hz: s.rate,
        start_unix,
        subprocesses: s.subprocesses,
        idle: s.idle,
        gil: s.gil,
        nonblocking: s.nonblocking,
    }
}
