//! Running pysampler: its output read as it comes, bounded runs, and the
//! command lines the fault tests use.

use super::procfs::{poll, tracer_of};
use crate::target::PYSAMPLER;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A pysampler process with its output collected by reader threads.
pub(super) struct Spawned {
    pub(super) child: Child,
    pub(super) lines: mpsc::Receiver<String>,
    pub(super) stderr: Arc<Mutex<String>>,
    pub(super) stdout: Arc<Mutex<Vec<u8>>>,
    pub(super) readers_done: mpsc::Receiver<()>,
}

pub(super) fn spawn_pysampler<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Spawned {
    spawn_command(Command::new(PYSAMPLER).args(args))
}

pub(super) fn spawn_command(cmd: &mut Command) -> Spawned {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pysampler");
    let (tx, lines) = mpsc::channel();
    let (done_tx, readers_done) = mpsc::channel();
    let stderr = Arc::new(Mutex::new(String::new()));
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let err_pipe = child.stderr.take().unwrap();
    let (text, done) = (stderr.clone(), done_tx.clone());
    std::thread::spawn(move || {
        let mut reader = BufReader::new(err_pipe);
        let mut raw = Vec::new();
        while let Ok(n) = reader.read_until(b'\n', &mut raw) {
            if n == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&raw).into_owned();
            text.lock().unwrap().push_str(&line);
            let _ = tx.send(line.trim_end().to_string());
            raw.clear();
        }
        let _ = done.send(());
    });
    let mut out_pipe = child.stdout.take().unwrap();
    let out = stdout.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = out_pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        let _ = done_tx.send(());
    });
    Spawned {
        child,
        lines,
        stderr,
        stdout,
        readers_done,
    }
}

impl Spawned {
    pub(super) fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub(super) fn wait_line(&self, prefix: &str, limit: Duration) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => continue,
                Err(_) => {
                    return Err(format!(
                        "pysampler never printed {prefix:?}; stderr: {}",
                        self.stderr_text()
                    ))
                }
            }
        }
    }

    /// Waits for the exit; returns the status and when it was seen.
    pub(super) fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Instant)> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status, Instant::now()));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Lets the readers drain both pipes (after the exit), at most 5 s.
    pub(super) fn drain(&self) {
        for _ in 0..2 {
            let _ = self.readers_done.recv_timeout(Duration::from_secs(5));
        }
    }

    pub(super) fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub(super) fn stdout_bytes(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One finished (or timed-out) pysampler run.
pub(super) struct Finished {
    /// None: still running at the limit (it was killed).
    pub(super) status: Option<ExitStatus>,
    pub(super) stdout: Vec<u8>,
    pub(super) stderr: String,
    pub(super) started: Instant,
}

pub(super) fn run_bounded<S: AsRef<std::ffi::OsStr>>(args: &[S], limit: Duration) -> Finished {
    let started = Instant::now();
    let mut p = spawn_pysampler(args);
    let status = p.wait_exit(limit).map(|(s, _)| s);
    if status.is_some() {
        p.drain();
    }
    Finished {
        status,
        stdout: p.stdout_bytes(),
        stderr: p.stderr_text(),
        started,
    }
}

pub(super) fn dump_args(pid: i32) -> Vec<String> {
    vec![
        "dump".into(),
        "--pid".into(),
        pid.to_string(),
        "--json".into(),
    ]
}

pub(super) fn record_args(pid: i32, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "record".into(),
        "--pid".into(),
        pid.to_string(),
        "-f".into(),
        "raw".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Waits until `rec` has paused the target at least once: sampling runs.
pub(super) fn wait_until_traced(pid: i32, rec: &Spawned) -> Result<(), String> {
    // At 1000 Hz or more the target is paused within milliseconds; 30 s is
    // only there to end a test whose pysampler never samples.
    if poll(Duration::from_secs(30), || {
        tracer_of(pid).is_some_and(|t| t != 0)
    }) {
        Ok(())
    } else {
        Err(format!(
            "target {pid} was never paused within 30 s; pysampler's stderr: {}",
            rec.stderr_text()
        ))
    }
}
