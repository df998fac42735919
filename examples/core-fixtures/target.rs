//! Running fixtures/core_snapshot_target.py under one interpreter until it
//! holds still: its handshake (the ORACLE and READY lines), then the kernel's
//! word that every thread but the spinner sleeps.

use pysampler::process::{pause, task_state};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SCRIPT: &str = "core_snapshot_target.py";
/// Where the fixture runs, inside the interpreter's root. A fixed folder
/// outside any checkout, so the committed files name the same paths
/// whichever worktree regenerates them.
const FIXTURE_DIR: &str = "/tmp/pysampler-core-fixture";
/// MainThread, worker, spinner, default-named, low-level.
const THREADS: usize = 5;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// System calls `time.sleep` blocks in (select on 2.7, clock_nanosleep
/// later), and `restart_syscall`, which they become after a ptrace stop.
#[cfg(target_arch = "x86_64")]
const SLEEP_SYSCALLS: &[i64] = &[7, 23, 35, 219, 230, 270, 271];
#[cfg(target_arch = "aarch64")]
const SLEEP_SYSCALLS: &[i64] = &[72, 73, 101, 115, 128];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SLEEP_SYSCALLS: &[i64] = &[];

/// One interpreter: its path as the process sees it, and the root it runs
/// in (the Debian sid root for 3.14 and 3.15, through chroot).
pub struct Python {
    pub exe: PathBuf,
    pub root: Option<PathBuf>,
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
}

fn env_path(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(default)
}

impl Python {
    /// "2.7" … "3.13" (pyenv, its newest patch release of that minor),
    /// "debian-3.11" (/usr/bin/python3.11), "3.14", "3.15" (the sid root),
    /// "3.13t" (free-threaded, `make python313t`).
    pub fn find(label: &str) -> Result<Python, String> {
        if label == "debian-3.11" {
            return existing(PathBuf::from("/usr/bin/python3.11"), None);
        }
        if label == "3.13t" {
            let prefix = env_path("PYSAMPLER_PY313T", || {
                home().join(".cache/pysampler/py313t")
            });
            return existing(prefix.join("bin/python3.13t"), None);
        }
        if label == "3.14" || label == "3.15" {
            let root = env_path("PYSAMPLER_SID_ROOT", || {
                home().join(".cache/pysampler/sid-root")
            });
            return existing(PathBuf::from(format!("/usr/bin/python{label}")), Some(root));
        }
        let versions = env_path("PYENV_ROOT", || home().join(".pyenv")).join("versions");
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(&versions)
            .map_err(|e| format!("no pyenv versions in {}: {e}", versions.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let patch: u32 = name.strip_prefix(&format!("{label}."))?.parse().ok()?;
                Some((patch, e.path().join("bin/python")))
            })
            .collect();
        found.sort();
        let (_, exe) = found
            .pop()
            .ok_or_else(|| format!("pyenv has no Python {label} in {}", versions.display()))?;
        existing(exe, None)
    }

    fn host_path(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }
}

fn existing(exe: PathBuf, root: Option<PathBuf>) -> Result<Python, String> {
    let python = Python { exe, root };
    let on_host = python.host_path(&python.exe);
    match on_host.exists() {
        true => Ok(python),
        false => Err(format!(
            "{} does not exist (pyenv install, or `make sid-root` for 3.14/3.15)",
            on_host.display()
        )),
    }
}

/// The fixture, running; killed and reaped when dropped.
pub struct Running {
    child: Child,
    /// The JSON the fixture printed after "ORACLE ".
    pub oracle: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts the fixture under `python` (copying it from `fixtures`) and
    /// returns once it holds still.
    pub fn start(python: &Python, fixtures: &Path) -> Result<Running, String> {
        let dir = python.host_path(Path::new(FIXTURE_DIR));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in std::fs::read_dir(fixtures).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with("core_snapshot_") && name.ends_with(".py") {
                // Through a rename: another run starting its interpreter
                // meanwhile reads the old file or the new one, never half.
                let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
                std::fs::copy(&path, &partial)
                    .and_then(|_| std::fs::rename(&partial, dir.join(&*name)))
                    .map_err(|e| format!("copying {}: {e}", path.display()))?;
            }
        }
        let script = format!("{FIXTURE_DIR}/{SCRIPT}");
        let mut cmd = match &python.root {
            None => {
                let mut c = Command::new(&python.exe);
                c.arg(&script).current_dir(&dir);
                c
            }
            Some(root) => {
                let line = format!("cd {FIXTURE_DIR} && exec {} {script}", python.exe.display());
                let mut c = Command::new("chroot");
                c.arg(root).args(["/bin/sh", "-c", &line]);
                c
            }
        };
        let mut child = cmd
            .env("PYTHONIOENCODING", "utf-8")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.exe.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut running = Running {
            child,
            oracle: String::new(),
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.starts_with("ORACLE ") => {
                    running.oracle = line["ORACLE ".len()..].to_string()
                }
                Ok(line) if line == "READY" => break,
                Ok(_) => continue,
                Err(e) => return Err(format!("no READY from the fixture ({e:?})")),
            }
        }
        if running.oracle.is_empty() {
            return Err("the fixture said READY without its ORACLE line".into());
        }
        running.wait_until_still()?;
        Ok(running)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// READY comes just before the main thread goes to sleep and the
    /// spinner starts; wait until the kernel shows exactly that: every
    /// thread but one blocked in a sleep, and that one running.
    fn wait_until_still(&self) -> Result<(), String> {
        let pid = self.pid();
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let tids = pause::thread_ids(pid).map_err(|e| e.to_string())?;
            let asleep = tids.iter().filter(|t| in_sleep(pid, **t)).count();
            let running = tids
                .iter()
                .filter(|t| task_state::is_running(pid, **t) == Some(true))
                .count();
            if tids.len() == THREADS && asleep == THREADS - 1 && running == 1 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the fixture's threads {tids:?} never settled ({asleep} asleep, {running} running)"
                ));
            }
            // A condition polled, not a guess at how long it takes.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn in_sleep(pid: i32, tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
        .is_some_and(|n| SLEEP_SYSCALLS.contains(&n))
}
