//! Starting a fixture program under an interpreter and waiting for its
//! handshake ("READY" on stdout), and running pysampler against it.

use crate::pythons::Python;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const PYSAMPLER: &str = env!("CARGO_BIN_EXE_pysampler");
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A running fixture; killed when dropped.
pub struct Target {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Target {
    /// Starts `script` (a file in fixtures/) under `python` and waits until it
    /// prints a line starting with "READY".
    pub fn start(python: &Python, script: &str, args: &[&str]) -> Target {
        let mut cmd = match &python.root {
            None => {
                let mut c = Command::new(&python.exe);
                c.arg(script).args(args).current_dir(fixtures_dir());
                c
            }
            Some(root) => {
                let inside = PathBuf::from(format!("/tmp/pysampler-it-{}", std::process::id()));
                copy_fixtures(&root.join(inside.strip_prefix("/").unwrap()));
                let mut line = format!(
                    "cd {} && exec {} {}",
                    inside.display(),
                    python.exe.display(),
                    script
                );
                for a in args {
                    line.push(' ');
                    line.push_str(a);
                }
                let mut c = Command::new("chroot");
                c.arg(root).args(["/bin/sh", "-c", &line]);
                c
            }
        };
        cmd.env("PYTHONIOENCODING", "utf-8")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {script}: {e}", python.label));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut target = Target { child, lines };
        if let Err(e) = target.wait_for_line("READY") {
            // Say how it ended: a signal here is someone else's (no profiler
            // has seen this process yet).
            let status = target.child.try_wait();
            panic!(
                "{} {script} never printed READY ({e}); pid {}, status {status:?}",
                python.label,
                target.pid()
            );
        }
        target
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Blocks until the fixture prints a line starting with `prefix`.
    fn wait_for_line(&self, prefix: &str) -> Result<String, mpsc::RecvTimeoutError> {
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The command line that runs fixture `script` under `python` (through
/// chroot for interpreters in the sid root).
pub fn python_command(python: &Python, script: &str, args: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = match &python.root {
        None => vec![
            python.exe.display().to_string(),
            fixtures_dir().join(script).display().to_string(),
        ],
        Some(root) => {
            let inside = PathBuf::from(format!("/tmp/pysampler-it-{}", std::process::id()));
            copy_fixtures(&root.join(inside.strip_prefix("/").unwrap()));
            vec![
                "chroot".into(),
                root.display().to_string(),
                python.exe.display().to_string(),
                inside.join(script).display().to_string(),
            ]
        }
    };
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

fn copy_fixtures(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Runs pysampler with `args`.
pub fn pysampler(args: &[&str]) -> Output {
    Command::new(PYSAMPLER)
        .args(args)
        .output()
        .expect("run pysampler")
}

/// `pysampler dump --json` of `pid`, parsed.
pub fn dump_json(pid: i32, extra: &[&str]) -> Value {
    let pid = pid.to_string();
    let mut args = vec!["dump", "--pid", &pid, "--json"];
    args.extend_from_slice(extra);
    let out = pysampler(&args);
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("dump --json prints valid JSON")
}

/// Dumps until `ready` accepts the result (the fixture may still be on its
/// way to the known point right after its handshake), at most 200 times.
pub fn dump_when(pid: i32, extra: &[&str], ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = dump_json(pid, extra);
        if ready(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the fixture never reached the expected state; last dump:\n{last:#}");
}

/// Line number of the line holding `marker` (e.g. "# LINE_SPIN") in a fixture.
pub fn marker_line(file: &str, marker: &str) -> u64 {
    let text = std::fs::read_to_string(fixtures_dir().join(file)).unwrap();
    let needle = format!("# {marker}");
    text.lines()
        .position(|l| l.trim_end().ends_with(&needle))
        .unwrap_or_else(|| panic!("{file} has no {needle}")) as u64
        + 1
}
