//! What `record -- COMMAND` exits with, and what its closing summary says,
//! for each way a recording ends (README.md, "Exit status"): the program
//! ending on its own passes its status through; pysampler ending it (the
//! duration, SIGINT to the whole process group as a terminal's Ctrl-C
//! sends, SIGTERM, SIGHUP) exits 0 once the profile is written, also when
//! the program ignores SIGINT or a non-daemon thread keeps it alive and it
//! has to be killed; a profile that cannot be written exits non-zero and
//! says why. Signals are sent after the program's READY handshake (it
//! shares pysampler's stdout), never after a fixed sleep.

use crate::formats::parse_folded_line;
use crate::pythons::{self, Python};
use crate::target::{python_command, PYSAMPLER};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a run may take: the 5 s pysampler waits after SIGINT, plus a
/// generous margin for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(120);
const KILLED: &str = "the program was killed after it ignored SIGINT for 5 s";

/// `pysampler record` running a program, in a process group of its own.
struct Recording {
    child: Child,
    started: Instant,
    /// The shared stdout's lines, with when each arrived.
    stdout: mpsc::Receiver<(Instant, String)>,
    stderr: Option<JoinHandle<String>>,
}

impl Recording {
    fn start(args: &[&str], command: &[String]) -> Recording {
        let started = Instant::now();
        let mut child = Command::new(PYSAMPLER)
            .arg("record")
            .args(args)
            .arg("--")
            .args(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("run pysampler record");
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send((Instant::now(), line));
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = Some(std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        }));
        Recording {
            child,
            started,
            stdout,
            stderr,
        }
    }

    /// Waits for the program's READY on the shared stdout.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok((_, line)) if line.starts_with("READY") => return,
                Ok(_) => {}
                Err(e) => panic!("the program never said READY ({e})"),
            }
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) with our child's pid; no memory involved.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Ctrl-C in a terminal: SIGINT to pysampler and the program at once.
    fn signal_group(&self, signal: i32) {
        // SAFETY: as in `signal`, to the process group it leads.
        unsafe { libc::kill(-(self.child.id() as i32), signal) };
    }

    /// pysampler's exit status and its stderr.
    fn finish(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.signal_group(libc::SIGKILL);
                panic!("pysampler did not exit within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (status, stderr)
    }

    /// How long after the start the program said READY, once it has ended
    /// (its stdout is read to the end).
    fn ready_after(&self) -> Option<Duration> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok((at, line)) if line.starts_with("READY") => return Some(at - self.started),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("stdout never ended"),
            }
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // A failed test leaves neither pysampler nor its program running.
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal_group(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// The closing summary line ("pysampler: N samples in …").
fn summary(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("pysampler: ") && l.contains(" samples in "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"))
}

fn out_dir(label: &str, case: &str) -> PathBuf {
    let dir = pythons::scratch_dir()
        .join("exit-status")
        .join(format!("{label}-{case}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Samples with `function` anywhere in the stack, in a raw profile.
fn samples_in(path: &Path, function: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let prefix = format!("{function} (");
    text.lines()
        .map(parse_folded_line)
        .filter(|(frames, _)| frames.iter().any(|f| f.starts_with(&prefix)))
        .map(|(_, n)| n)
        .sum()
}

/// `command` started with SIGINT ignored: the disposition is inherited
/// through exec, so the program ignores it from its first instruction and
/// a short `--duration` cannot end it before it is set up.
fn ignoring_sigint(command: Vec<String>) -> Vec<String> {
    let mut argv: Vec<String> = ["sh", "-c", "trap '' INT; exec \"$@\"", "sh"]
        .map(String::from)
        .to_vec();
    argv.extend(command);
    argv
}

fn check(label: &str) {
    let py = pythons::find(label);
    on_its_own(&py);
    on_its_own_slowly(&py);
    duration_ends_a_cooperative_program(&py);
    duration_ends_a_program_that_ignores_sigint(&py);
    sigterm_ends_a_program_kept_alive_by_a_thread(&py);
    ctrl_c_ends_recording_and_program(&py);
    an_output_that_cannot_be_written(&py);
}

fn on_its_own(py: &Python) {
    let path = out_dir(&py.label, "own").join("p.txt");
    let mut rec = Recording::start(
        &["-f", "raw", "-o", path.to_str().unwrap()],
        &python_command(py, "exit_status.py", &["3"]),
    );
    let (status, stderr) = rec.finish();
    assert_eq!(status.code(), Some(3), "{}: {stderr}", py.label);
    assert!(
        summary(&stderr).contains("; the program exited with status 3; wrote "),
        "{}: {stderr}",
        py.label
    );
    assert!(path.exists(), "{}: no profile", py.label);
}

/// `record -d N` of `command`, with N doubled from 1 s until the program
/// said READY with at least half the duration left: a loaded machine can
/// take more than a second to start an interpreter, and a duration that
/// ends before the program is set up tests nothing. Returns the status,
/// stderr and the duration used.
/// A program whose exit takes a while (a gigabyte to unmap): its memory is
/// gone before its status can be collected, and pysampler must wait for the
/// status rather than interrupt a program that is ending by itself.
fn on_its_own_slowly(py: &Python) {
    let path = out_dir(&py.label, "own-slowly").join("p.txt");
    let mut rec = Recording::start(
        &["-f", "raw", "-o", path.to_str().unwrap()],
        &python_command(py, "exit_status.py", &["3", "--leave-big"]),
    );
    let (status, stderr) = rec.finish();
    assert_eq!(status.code(), Some(3), "{}: {stderr}", py.label);
    assert!(
        summary(&stderr).contains("; the program exited with status 3; wrote "),
        "{}: {stderr}",
        py.label
    );
}

fn record_for_a_duration(path: &Path, command: &[String]) -> (ExitStatus, String, u64) {
    let mut seconds = 1;
    loop {
        let mut rec = Recording::start(
            &[
                "-f",
                "raw",
                "-d",
                &seconds.to_string(),
                "-o",
                path.to_str().unwrap(),
            ],
            command,
        );
        let (status, stderr) = rec.finish();
        let ready = rec.ready_after();
        let in_time = ready.is_some_and(|at| at <= Duration::from_millis(seconds * 500));
        if in_time || seconds >= 16 {
            assert!(
                in_time,
                "the program was not ready within {seconds} s: {ready:?}"
            );
            return (status, stderr, seconds);
        }
        seconds *= 2;
    }
}

fn duration_ends_a_cooperative_program(py: &Python) {
    let path = out_dir(&py.label, "duration").join("p.txt");
    let (status, stderr, seconds) =
        record_for_a_duration(&path, &python_command(py, "exit_modes.py", &["busy"]));
    assert_eq!(status.code(), Some(0), "{}: {stderr}", py.label);
    // KeyboardInterrupt: 2.7 exits 1, 3.x ends by SIGINT.
    let line = summary(&stderr);
    let stopped = format!("; stopped after {seconds} s; the program ");
    assert!(
        line.contains(&format!("{stopped}ended on SIGINT; wrote "))
            || line.contains(&format!(
                "{stopped}exited with status 1 after SIGINT; wrote "
            )),
        "{}: {stderr}",
        py.label
    );
    assert!(samples_in(&path, "busy_loop") > 0, "{}", py.label);
}

fn duration_ends_a_program_that_ignores_sigint(py: &Python) {
    let path = out_dir(&py.label, "duration-ignore").join("p.txt");
    let (status, stderr, seconds) = record_for_a_duration(
        &path,
        &ignoring_sigint(python_command(py, "exit_modes.py", &["ignore"])),
    );
    assert_eq!(status.code(), Some(0), "{}: {stderr}", py.label);
    assert!(
        summary(&stderr).contains(&format!("; stopped after {seconds} s; {KILLED}; wrote ")),
        "{}: {stderr}",
        py.label
    );
    assert!(samples_in(&path, "busy_loop") > 0, "{}", py.label);
}

fn sigterm_ends_a_program_kept_alive_by_a_thread(py: &Python) {
    let path = out_dir(&py.label, "sigterm").join("p.txt");
    let mut rec = Recording::start(
        &["-f", "raw", "--idle", "-o", path.to_str().unwrap()],
        &python_command(py, "exit_modes.py", &["non-daemon"]),
    );
    rec.wait_ready();
    rec.signal(libc::SIGTERM);
    let (status, stderr) = rec.finish();
    assert_eq!(status.code(), Some(0), "{}: {stderr}", py.label);
    assert!(
        summary(&stderr).contains(&format!("; stopped by SIGTERM; {KILLED}; wrote ")),
        "{}: {stderr}",
        py.label
    );
    // --idle: the thread that kept it alive is in the profile.
    assert!(samples_in(&path, "blocked_forever") > 0, "{}", py.label);
}

fn ctrl_c_ends_recording_and_program(py: &Python) {
    let path = out_dir(&py.label, "ctrl-c").join("p.txt");
    let mut rec = Recording::start(
        &["-f", "raw", "-o", path.to_str().unwrap()],
        &python_command(py, "exit_modes.py", &["busy"]),
    );
    rec.wait_ready();
    rec.signal_group(libc::SIGINT);
    let (status, stderr) = rec.finish();
    assert_eq!(status.code(), Some(0), "{}: {stderr}", py.label);
    // The program had the SIGINT too: gone before pysampler looked, or
    // after pysampler's own.
    let line = summary(&stderr);
    assert!(
        line.contains("; stopped by SIGINT; the program ") && line.contains("; wrote "),
        "{}: {stderr}",
        py.label
    );
    assert!(path.exists(), "{}: no profile", py.label);
}

fn an_output_that_cannot_be_written(py: &Python) {
    let path = out_dir(&py.label, "unwritable").join("p.txt");
    let mut rec = Recording::start(
        &["-f", "raw", "-o", path.to_str().unwrap()],
        &python_command(py, "exit_modes.py", &["ignore"]),
    );
    rec.wait_ready();
    // A folder where the profile should go: moving it into place fails.
    std::fs::create_dir(&path).unwrap();
    rec.signal(libc::SIGHUP);
    let (status, stderr) = rec.finish();
    assert_eq!(status.code(), Some(1), "{}: {stderr}", py.label);
    assert!(
        summary(&stderr).ends_with(&format!(
            "; stopped by SIGHUP; {KILLED}; the output was not written"
        )),
        "{}: {stderr}",
        py.label
    );
    let reason = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "pysampler: cannot put the output at {}: ",
                path.display()
            ))
        })
        .unwrap_or_else(|| panic!("{}: no reason given: {stderr}", py.label));
    let kept = reason
        .split("; it was written to ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(" instead: move it from there"))
        .unwrap_or_else(|| panic!("{}: where is the profile? {stderr}", py.label));
    assert!(samples_in(Path::new(kept), "busy_loop") > 0, "{}", py.label);
}

#[test]
fn exit_status_on_python_2_7() {
    check("2.7");
}

#[test]
fn exit_status_on_python_3_9() {
    check("3.9");
}

#[test]
fn exit_status_on_python_3_12() {
    check("3.12");
}

#[test]
fn exit_status_on_python_3_14_in_sid_root() {
    check("3.14");
}
