//! Starting a fixture program on an interpreter, reading what it prints,
//! and its handshake: it prints a line starting with "READY" once it is at
//! its known point, and whoever started it waits for that line (with a
//! bound), never for a fixed time.

use crate::pythons::Python;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a fixture may take to say READY: seconds normally, but a
/// loaded machine starting 3.14 through chroot can take a while; only a
/// fixture that never gets there should fail.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository's fixtures/ folder, where relative script names are found.
pub fn fixtures_dir() -> PathBuf {
    // crates/pysampler-testkit → the repository, without `..` in the path
    // (the paths fixtures run under end up in profiles).
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the testkit lives in crates/ of the repository");
    repo.join("fixtures")
}

/// `script` as a path: relative names are in fixtures/.
fn script_path(script: &Path) -> PathBuf {
    if script.is_absolute() {
        script.to_path_buf()
    } else {
        fixtures_dir().join(script)
    }
}

/// Where the scripts of `dir` are copied inside a root (one folder per
/// test process: several may run at once).
fn inside_root(root: &Path, dir: &Path) -> PathBuf {
    let inside = PathBuf::from(format!(
        "/tmp/pysampler-testkit-{}/{}",
        std::process::id(),
        dir.file_name()
            .map_or("scripts".into(), |n| n.to_string_lossy())
    ));
    copy_scripts(dir, &root.join(inside.strip_prefix("/").unwrap()));
    inside
}

/// Copies the .py files of `from` (a fixture may import its neighbours).
fn copy_scripts(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("cannot create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            let copy = to.join(path.file_name().unwrap());
            std::fs::copy(&path, &copy)
                .unwrap_or_else(|e| panic!("cannot copy {} into the root: {e}", path.display()));
        }
    }
}

/// The command line that runs `script` (relative: in fixtures/) under
/// `python`, by absolute path, through chroot for interpreters in a root:
/// for a program that something else (pysampler) launches.
pub fn python_command(python: &Python, script: impl AsRef<Path>, args: &[&str]) -> Vec<String> {
    let script = script_path(script.as_ref());
    let mut argv: Vec<String> = match &python.root {
        None => vec![
            python.exe.display().to_string(),
            script.display().to_string(),
        ],
        Some(root) => {
            let inside = inside_root(root, script.parent().unwrap());
            vec![
                "chroot".into(),
                root.display().to_string(),
                python.exe.display().to_string(),
                inside
                    .join(script.file_name().unwrap())
                    .display()
                    .to_string(),
            ]
        }
    };
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// A running fixture; killed and reaped when dropped.
pub struct Target {
    pub child: Child,
    /// Its stdout, line by line.
    pub lines: mpsc::Receiver<String>,
}

impl Target {
    /// Starts `script` under `python` and returns at once, without waiting
    /// for any handshake (what attaching to a process that just started
    /// meets). The script runs in its own folder, by its file name, so its
    /// code objects carry that name (a root gets a copy of the folder's
    /// scripts).
    pub fn spawn(
        python: &Python,
        script: impl AsRef<Path>,
        args: &[&str],
    ) -> Result<Target, String> {
        let script = script_path(script.as_ref());
        let dir = script.parent().unwrap();
        let name = script.file_name().unwrap();
        let mut cmd = match &python.root {
            None => {
                let mut c = Command::new(&python.exe);
                c.arg(name).args(args).current_dir(dir);
                c
            }
            Some(root) => {
                // chroot has no option for the working folder: a shell in
                // the root changes to it, then becomes python.
                let inside = inside_root(root, dir);
                let mut line = format!(
                    "cd '{}' && exec '{}' '{}'",
                    inside.display(),
                    python.exe.display(),
                    name.to_string_lossy()
                );
                for a in args {
                    line.push_str(&format!(" '{a}'"));
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
            .map_err(|e| format!("cannot start {} {}: {e}", python.label, script.display()))?;
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
        Ok(Target { child, lines })
    }

    /// Starts `script` and waits until it prints a line starting with
    /// "READY".
    pub fn try_start(
        python: &Python,
        script: impl AsRef<Path>,
        args: &[&str],
    ) -> Result<Target, String> {
        let script = script.as_ref();
        let mut target = Target::spawn(python, script, args)?;
        if let Err(e) = target.wait_for_line("READY", HANDSHAKE_TIMEOUT) {
            // Say how it ended: a signal here is someone else's (nothing has
            // attached to this process yet).
            let status = target.child.try_wait();
            return Err(format!(
                "{} {} never printed READY ({e}); pid {}, status {status:?}",
                python.label,
                script.display(),
                target.pid()
            ));
        }
        Ok(target)
    }

    /// [`Target::try_start`], failing (panicking) when the fixture does not
    /// get to READY.
    pub fn start(python: &Python, script: impl AsRef<Path>, args: &[&str]) -> Target {
        Target::try_start(python, script, args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Blocks until the fixture prints a line starting with `prefix`, at
    /// most `limit`; lines before it are dropped.
    pub fn wait_for_line(&self, prefix: &str, limit: Duration) -> Result<String, String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("no line starting with {prefix:?} within {limit:?}"))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("it closed its stdout before printing {prefix:?}"))
                }
            }
        }
    }

    /// Waits (at most `limit`) until the fixture has `threads` threads, every
    /// one blocked in a sleep system call: READY is printed just before the
    /// last one goes to sleep, and only then does the process stand still.
    pub fn wait_until_asleep(&self, threads: usize, limit: Duration) -> Result<(), String> {
        let pid = self.pid();
        let deadline = Instant::now() + limit;
        loop {
            let states = thread_syscalls(pid);
            if states.len() == threads
                && states
                    .iter()
                    .all(|(_, n)| n.is_some_and(|n| SLEEP_SYSCALLS.contains(&n)))
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the {threads} threads of {pid} did not all reach a sleep within {limit:?}: (tid, system call) {states:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// System calls `time.sleep` blocks in (select on 2.7/3.9, clock_nanosleep
/// later), and `restart_syscall`, which they become after a ptrace stop.
#[cfg(target_arch = "x86_64")]
const SLEEP_SYSCALLS: &[i64] = &[7, 23, 35, 219, 230, 270, 271];
#[cfg(target_arch = "aarch64")]
const SLEEP_SYSCALLS: &[i64] = &[72, 73, 101, 115, 128];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SLEEP_SYSCALLS: &[i64] = &[];

/// Each thread of `pid` and the system call it is blocked in (None: it
/// runs, or the file could not be read).
fn thread_syscalls(pid: i32) -> Vec<(i32, Option<i64>)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| t.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .map(|tid| {
            let call = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok());
            (tid, call)
        })
        .collect()
}
