//! Fault injection (issue 6): the target exits under pysampler (`record`,
//! `top`, `dump`), pysampler is signalled or killed, threads churn,
//! recursion is deep, code objects are freed and their addresses reused,
//! names are odd or huge, and the interpreter is starting or finalising.
//! Whatever happens, the target keeps running unharmed and not stopped,
//! pysampler never hangs or panics, and what it prints is either valid or a
//! clear message.
//!
//! Every test repeats its fault `PYSAMPLER_FAULT_ITERATIONS` times (default
//! 10). Random moments come from a seeded generator; the seed is printed and
//! `PYSAMPLER_FAULT_SEED=N` repeats a run. A test runs all its iterations,
//! prints a tally (`--nocapture` shows it) and then fails listing every
//! failed iteration with its interpreter, random choices and what went wrong.
//! Every wait is bounded; handshakes are lines from the fixture or pysampler
//! and /proc polled against a deadline.

use crate::formats::parse_folded_line;
use crate::pythons::{self, Python};
use crate::target::{dump_when, marker_line, python_command, Target, PYSAMPLER};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Repetition, randomness, tallies

/// How many times each fault is injected.
fn iterations() -> usize {
    std::env::var("PYSAMPLER_FAULT_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(10)
}

/// Runs of the multi-second faults (thread churn, code reuse): one per ten
/// iterations, at least one. Each run injects its fault thousands of times.
fn long_runs() -> usize {
    iterations().div_ceil(10)
}

/// The interpreters an iteration runs on, in turn: 3.12 every other time.
const ROTATION: &[&str] = &["3.12", "2.7", "3.12", "3.9", "3.12", "3.14"];

fn python_for(iteration: usize) -> Python {
    pythons::find(ROTATION[iteration % ROTATION.len()])
}

/// splitmix64: small, seedable, good enough for random moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

fn base_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        std::env::var("PYSAMPLER_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    % 1_000_000_007
            })
    })
}

/// Results of one test's iterations, by case ("record/kill/3.12").
struct Tally {
    test: &'static str,
    seed: u64,
    started: Instant,
    cases: BTreeMap<String, (usize, usize)>,
    failures: Vec<String>,
    notes: Vec<String>,
    /// Output folders, removed when every iteration passed.
    dirs: Vec<PathBuf>,
}

impl Tally {
    fn new(test: &'static str) -> (Tally, Rng) {
        let seed = base_seed();
        let mixed = test.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        eprintln!(
            "{test}: {} iterations, seed {seed} (PYSAMPLER_FAULT_SEED={seed} repeats the random moments)",
            iterations()
        );
        let tally = Tally {
            test,
            seed,
            started: Instant::now(),
            cases: BTreeMap::new(),
            failures: Vec::new(),
            notes: Vec::new(),
            dirs: Vec::new(),
        };
        (tally, Rng(mixed))
    }

    /// A fresh output folder for this test, kept only if something failed.
    fn dir(&mut self, name: &str) -> PathBuf {
        let dir = out_dir(name);
        self.dirs.push(dir.clone());
        dir
    }

    fn add(&mut self, case: &str, what: &str, result: Result<String, String>) {
        let entry = self.cases.entry(case.to_string()).or_insert((0, 0));
        entry.0 += 1;
        match result {
            Ok(note) => {
                entry.1 += 1;
                if !note.is_empty() {
                    self.notes.push(format!("{case} {what}: {note}"));
                }
            }
            Err(e) => {
                eprintln!("FAILED {case} {what}: {e}");
                self.failures.push(format!("{case} {what}: {e}"));
            }
        }
    }

    fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn finish(self) {
        let (runs, passed) = self
            .cases
            .values()
            .fold((0, 0), |(r, p), (cr, cp)| (r + cr, p + cp));
        let mut summary = format!(
            "{}: {passed}/{runs} passed in {:.1} s (seed {})",
            self.test,
            self.started.elapsed().as_secs_f64(),
            self.seed
        );
        for (case, (r, p)) in &self.cases {
            summary.push_str(&format!("\n  {case}: {p}/{r}"));
        }
        for note in self.notes.iter().take(40) {
            summary.push_str(&format!("\n  note: {note}"));
        }
        eprintln!("{summary}");
        if self.failures.is_empty() {
            for dir in &self.dirs {
                let _ = std::fs::remove_dir_all(dir);
            }
        } else {
            let shown: Vec<&String> = self.failures.iter().take(25).collect();
            panic!(
                "{summary}\n{} of {runs} failed (PYSAMPLER_FAULT_SEED={} repeats):\n{}",
                self.failures.len(),
                self.seed,
                shown
                    .iter()
                    .map(|f| format!("- {f}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// Output folder of one test in this test process (another test process may
/// be running the same tests in the same build folder).
fn out_dir(test: &str) -> PathBuf {
    let dir = pythons::scratch_dir()
        .join("reliability")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// /proc

fn stat_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// Gone, or a zombie: exited.
fn alive(pid: i32) -> bool {
    matches!(stat_state(pid), Some(c) if c != 'Z' && c != 'X')
}

fn status_field(path: &str, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

fn tracer_of(pid: i32) -> Option<i32> {
    status_field(&format!("/proc/{pid}/status"), "TracerPid")?
        .parse()
        .ok()
}

fn exe_name(pid: i32) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// Every thread of `pid` that is stopped (`t`/`T`) or traced, described.
fn stopped_or_traced(pid: i32) -> Vec<String> {
    let mut bad = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return bad;
    };
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let dir = format!("/proc/{pid}/task/{tid}");
        let state = std::fs::read_to_string(format!("{dir}/stat"))
            .ok()
            .and_then(|s| s[s.rfind(')')? + 1..].trim_start().chars().next());
        let tracer = status_field(&format!("{dir}/status"), "TracerPid");
        if matches!(state, Some('t') | Some('T')) || tracer.as_deref().is_some_and(|t| t != "0") {
            bad.push(format!("thread {tid} state {state:?} TracerPid {tracer:?}"));
        }
    }
    bad
}

/// Polls `f` every millisecond until it holds or `limit` passes.
fn poll(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The target is neither stopped nor traced, within `limit`.
fn target_free(pid: i32, limit: Duration) -> Result<(), String> {
    if poll(limit, || stopped_or_traced(pid).is_empty()) {
        Ok(())
    } else {
        Err(format!(
            "target {pid} still stopped or traced {limit:?} after pysampler ended: {:?}",
            stopped_or_traced(pid)
        ))
    }
}

fn signal(pid: i32, sig: i32) {
    unsafe { libc::kill(pid, sig) };
}

/// A process that is not our child, held by a pidfd: signals reach it and
/// no later process that gets its pid.
struct ProcessHandle(std::os::fd::OwnedFd);

impl ProcessHandle {
    fn open(pid: i32) -> Result<ProcessHandle, String> {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open returns a new descriptor (or -1), which we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(format!(
                "pidfd_open({pid}): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(ProcessHandle(unsafe {
            std::os::fd::OwnedFd::from_raw_fd(fd as i32)
        }))
    }

    /// Sends `sig`; a process already gone is left alone.
    fn signal(&self, sig: i32) {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid pidfd, no siginfo, no flags.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }
}

/// Signal numbers pending for the whole process (`ShdPnd`).
fn shared_pending(pid: i32) -> u64 {
    status_field(&format!("/proc/{pid}/status"), "ShdPnd")
        .and_then(|v| u64::from_str_radix(&v, 16).ok())
        .unwrap_or(0)
}

/// The next line from the fixture starting with `prefix`, within `limit`.
fn target_line(target: &Target, prefix: &str, limit: Duration) -> Result<String, String> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match target.lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return Ok(line),
            Ok(_) => continue,
            Err(e) => return Err(format!("the fixture never printed {prefix:?} ({e})")),
        }
    }
}

fn wait_child(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------
// Running pysampler

/// A pysampler process with its output collected by reader threads.
struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    readers_done: mpsc::Receiver<()>,
}

fn spawn_pysampler<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Spawned {
    spawn_command(Command::new(PYSAMPLER).args(args))
}

fn spawn_command(cmd: &mut Command) -> Spawned {
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
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn wait_line(&self, prefix: &str, limit: Duration) -> Result<String, String> {
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
    fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Instant)> {
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
    fn drain(&self) {
        for _ in 0..2 {
            let _ = self.readers_done.recv_timeout(Duration::from_secs(5));
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn stdout_bytes(&self) -> Vec<u8> {
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
struct Finished {
    /// None: still running at the limit (it was killed).
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    stderr: String,
    started: Instant,
}

fn run_bounded<S: AsRef<std::ffi::OsStr>>(args: &[S], limit: Duration) -> Finished {
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

fn dump_args(pid: i32) -> Vec<String> {
    vec![
        "dump".into(),
        "--pid".into(),
        pid.to_string(),
        "--json".into(),
    ]
}

// ---------------------------------------------------------------------------
// Judging output

/// What a dump may say instead of stacks: each message says plainly what
/// happened. Anything else (a memory read error, "invalid data", "kept
/// changing") from a process that exited, exec'd, or is starting or stopping
/// is not a clear account of what happened.
const CLEAR_MESSAGES: &[&str] = &[
    "exited",
    "no process with pid",
    "is a zombie",
    "is not a Python program",
    "is not initialised yet, or is shutting down",
    "replaced itself with another program",
];

fn no_panic(stderr: &str, status: Option<ExitStatus>) -> Result<(), String> {
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        return Err(format!("pysampler panicked: {stderr}"));
    }
    if let Some(s) = status {
        if s.code() == Some(101) {
            return Err(format!("pysampler exited with 101 (a panic): {stderr}"));
        }
        if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&s) {
            return Err(format!("pysampler died of signal {sig}: {stderr}"));
        }
    }
    Ok(())
}

enum DumpResult {
    Stacks(Value),
    Message(String),
}

/// A dump is valid stacks or one clear error line, never a hang, a panic,
/// or garbage.
fn judge_dump(out: &Finished, py: &Python, pid: i32) -> Result<DumpResult, String> {
    let Some(status) = out.status else {
        return Err(format!(
            "dump --pid {pid} still running after the limit (hang)"
        ));
    };
    no_panic(&out.stderr, Some(status))?;
    if status.success() {
        let doc: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "dump --json printed invalid JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
        check_dump_doc(&doc, py, pid)?;
        return Ok(DumpResult::Stacks(doc));
    }
    let message = out.stderr.trim();
    if status.code() != Some(1)
        || message.lines().count() != 1
        || !message.starts_with("pysampler: ")
    {
        return Err(format!(
            "dump failed with {status} and not one clear line: {message:?}; stdout {:?}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    if !CLEAR_MESSAGES.iter().any(|m| message.contains(m)) {
        return Err(format!("unclear dump error: {message}"));
    }
    Ok(DumpResult::Message(message.to_string()))
}

/// Lines in a source file, when it can be read (host path or inside the
/// interpreter's root), cached.
fn line_count(py: &Python, file: &str) -> Option<usize> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<PathBuf, Option<usize>>>> =
        std::sync::OnceLock::new();
    // The code-reuse fixture rewrites its module every generation: its line
    // count is not fixed (code_reuse_check checks those lines exactly).
    if !file.starts_with('/') || file.contains("/pysampler-faults-") {
        return None;
    }
    let path = match &py.root {
        Some(root) => root.join(file.trim_start_matches('/')),
        None => PathBuf::from(file),
    };
    let cache = CACHE.get_or_init(Default::default);
    if let Some(n) = cache.lock().unwrap().get(&path) {
        return *n;
    }
    let n = std::fs::read(&path)
        .ok()
        .map(|b| b.split(|c| *c == b'\n').count());
    cache.lock().unwrap().insert(path, n);
    n
}

/// A function name as CPython makes them: identifier characters, dots of
/// qualified names, and the angle brackets of `<module>`, `<locals>`, ….
fn plausible_function(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 4096
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_.<>".contains(c))
}

fn plausible_file(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 4096
        && !name.chars().any(|c| c.is_control() || c == '\u{fffd}')
}

/// One frame is not garbage: a plausible name and file and a line that
/// exists in the file (when the file can be read).
fn check_frame(py: &Python, function: &str, file: &str, line: u64) -> Result<(), String> {
    if !plausible_function(function) {
        return Err(format!(
            "garbage function name {function:?} ({file}:{line})"
        ));
    }
    if !plausible_file(file) {
        return Err(format!("garbage file name {file:?} in {function}"));
    }
    let max = line_count(py, file).unwrap_or(100_000) as u64;
    if line > max {
        return Err(format!(
            "absurd line {line} for {function} in {file} ({max} lines)"
        ));
    }
    Ok(())
}

fn check_dump_doc(doc: &Value, py: &Python, pid: i32) -> Result<(), String> {
    if doc["pid"] != pid {
        return Err(format!("dump of pid {} (wanted {pid})", doc["pid"]));
    }
    let version = doc["python_version"].as_str().unwrap_or("");
    if !version.starts_with(&format!("{}.{}.", py.major, py.minor)) {
        return Err(format!("dump says Python {version:?}"));
    }
    let threads = doc["threads"]
        .as_array()
        .ok_or_else(|| format!("no threads array: {doc}"))?;
    if threads.len() > 1000 {
        return Err(format!("{} threads", threads.len()));
    }
    for t in threads {
        let frames = t["frames"]
            .as_array()
            .ok_or_else(|| format!("thread without frames: {t}"))?;
        for f in frames {
            let function = f["function"].as_str().unwrap_or("");
            let file = f["filename"].as_str().unwrap_or("");
            let line = f["line"]
                .as_u64()
                .ok_or_else(|| format!("frame without a line: {f}"))?;
            check_frame(py, function, file, line)?;
        }
    }
    Ok(())
}

/// Function names of every thread, innermost first.
fn thread_functions(doc: &Value) -> Vec<Vec<String>> {
    doc["threads"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    t["frames"]
                        .as_array()
                        .map(|fs| {
                            fs.iter()
                                .map(|f| f["function"].as_str().unwrap_or("").to_string())
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// "name (file:line)" → (name, file, line); "name (file)" → line None.
fn split_label(label: &str) -> Option<(&str, &str, Option<u64>)> {
    let inner = label.strip_suffix(')')?;
    let open = inner.rfind(" (")?;
    let (name, rest) = (&inner[..open], &inner[open + 2..]);
    match rest.rsplit_once(':') {
        Some((file, line)) if line.parse::<u64>().is_ok() => {
            Some((name, file, Some(line.parse().unwrap())))
        }
        _ => Some((name, rest, None)),
    }
}

/// Collapsed stacks (root first) of a raw profile, each frame checked for
/// garbage.
fn read_raw(py: &Python, path: &Path) -> Result<Vec<(Vec<String>, u64)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("no profile at {}: {e}", path.display()))?;
    let mut stacks = Vec::new();
    for line in text.lines() {
        let parsed = std::panic::catch_unwind(|| {
            let (frames, count) = parse_folded_line(line);
            (
                frames.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                count,
            )
        })
        .map_err(|_| format!("malformed raw line {line:?}"))?;
        for label in &parsed.0 {
            let (name, file, line_no) =
                split_label(label).ok_or_else(|| format!("malformed frame label {label:?}"))?;
            // Raw files show paths shortened relative to the target's cwd;
            // line counts are checked for absolute paths only.
            check_frame(py, name, file, line_no.unwrap_or(0))?;
            if file.is_empty() {
                return Err(format!("empty file in {label:?}"));
            }
        }
        stacks.push(parsed);
    }
    Ok(stacks)
}

fn name_of(label: &str) -> &str {
    split_label(label).map(|(n, _, _)| n).unwrap_or(label)
}

fn total(stacks: &[(Vec<String>, u64)]) -> u64 {
    stacks.iter().map(|(_, c)| c).sum()
}

fn samples_with(stacks: &[(Vec<String>, u64)], function: &str) -> u64 {
    stacks
        .iter()
        .filter(|(fs, _)| fs.iter().any(|f| name_of(f) == function))
        .map(|(_, c)| c)
        .sum()
}

/// From the summary line: (samples, late %, errors).
fn summary(stderr: &str) -> Option<(u64, f64, u64)> {
    summary_with_duration(stderr).map(|(s, _, l, e)| (s, l, e))
}

/// From the summary line: (samples, seconds, late %, errors).
fn summary_with_duration(stderr: &str) -> Option<(u64, f64, f64, u64)> {
    let line = stderr.lines().find(|l| l.contains(" samples in "))?;
    let rest = line.strip_prefix("pysampler: ")?;
    let (samples, rest) = rest.split_once(" samples in ")?;
    let (secs, rest) = rest.split_once(" s (")?;
    let (late, rest) = rest.split_once("% late, ")?;
    let (errors, _) = rest.split_once(" errors)")?;
    Some((
        samples.parse().ok()?,
        secs.parse().ok()?,
        late.parse().ok()?,
        errors.parse().ok()?,
    ))
}

/// A recording of a process that stayed alive must not end early: no
/// "pysampler: process PID: <reason>" line, and the whole duration covered.
fn covered_whole_duration(stderr: &str, pid: i32, seconds: f64) -> Result<(), String> {
    if let Some(line) = stderr
        .lines()
        .find(|l| l.starts_with(&format!("pysampler: process {pid}: ")))
    {
        return Err(format!(
            "the recording of the live process ended early: {line}"
        ));
    }
    match summary_with_duration(stderr) {
        Some((_, secs, _, _)) if secs >= seconds * 0.9 => Ok(()),
        Some((_, secs, _, _)) => Err(format!(
            "the recording covers {secs} s of the {seconds} s asked for"
        )),
        None => Err("no summary line".into()),
    }
}

fn record_args(pid: i32, out: &Path, extra: &[&str]) -> Vec<String> {
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
fn wait_until_traced(pid: i32, rec: &Spawned) -> Result<(), String> {
    if poll(Duration::from_secs(10), || {
        tracer_of(pid).is_some_and(|t| t != 0)
    }) {
        Ok(())
    } else {
        Err(format!(
            "target {pid} was never paused within 10 s; pysampler's stderr: {}",
            rec.stderr_text()
        ))
    }
}

// ---------------------------------------------------------------------------
// 1. The target exits during record and dump

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    /// SIGUSR1: `sys.exit(0)`, the interpreter finalises.
    Normal,
    Sigkill,
    /// SIGUSR2: `os.execv("/bin/sleep")`.
    Exec,
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::Normal => "exit",
            Ending::Sigkill => "sigkill",
            Ending::Exec => "execv",
        }
    }
}

/// Makes the target end; returns the moment its end was seen.
fn end_target(target: &Target, how: Ending) -> Result<Instant, String> {
    let pid = target.pid();
    match how {
        Ending::Sigkill => {
            signal(pid, libc::SIGKILL);
            let at = Instant::now();
            if !poll(Duration::from_secs(5), || !alive(pid)) {
                return Err(format!("target {pid} still alive 5 s after SIGKILL"));
            }
            Ok(at)
        }
        Ending::Normal => {
            signal(pid, libc::SIGUSR1);
            if !poll(Duration::from_secs(10), || !alive(pid)) {
                return Err(format!(
                    "target {pid} did not exit within 10 s of SIGUSR1 (state {:?}, {:?})",
                    stat_state(pid),
                    stopped_or_traced(pid)
                ));
            }
            Ok(Instant::now())
        }
        Ending::Exec => {
            signal(pid, libc::SIGUSR2);
            if !poll(Duration::from_secs(5), || {
                exe_name(pid).as_deref() == Some("sleep")
            }) {
                return Err(format!(
                    "target {pid} did not exec /bin/sleep within 5 s of SIGUSR2 (exe {:?}, state {:?}, held: {:?})",
                    exe_name(pid),
                    stat_state(pid),
                    stopped_or_traced(pid)
                ));
            }
            Ok(Instant::now())
        }
    }
}

const EXIT_LIMIT: Duration = Duration::from_secs(1);

/// How the target is recorded while it ends.
#[derive(Clone, Copy)]
enum Recording {
    /// One busy worker thread, default flags, -r 1000.
    Plain,
    /// Eight busy worker threads, `--idle -r 2000`: most samples pause all
    /// nine threads, so the end very likely comes while some are paused.
    ManyPaused,
}

fn record_through_exit(
    py: &Python,
    how: Ending,
    recording: Recording,
    rng: &mut Rng,
    dir: &Path,
    i: usize,
) -> Result<String, String> {
    let (workers, flags, tag): (&str, &[&str], &str) = match recording {
        Recording::Plain => ("1", &["-r", "1000"], "plain"),
        Recording::ManyPaused => ("8", &["-r", "2000", "--idle"], "paused"),
    };
    let target = Target::start(py, "faults_exit.py", &[workers]);
    let pid = target.pid();
    let out = dir.join(format!("{}-{}-{tag}-{i}.txt", py.label, how.name()));
    let mut rec = spawn_pysampler(&record_args(pid, &out, flags));
    rec.wait_line("pysampler: recording", Duration::from_secs(30))?;
    wait_until_traced(pid, &rec)?;
    let delay = rng.millis(400);
    std::thread::sleep(delay);
    let ended = end_target(&target, how)?;
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let Some((status, exited_at)) = rec.wait_exit(Duration::from_secs(15)) else {
        return Err(format!(
            "record still running 15 s after the target's {} {ctx}; stderr: {}",
            how.name(),
            rec.stderr_text()
        ));
    };
    rec.drain();
    let stderr = rec.stderr_text();
    let took = exited_at.saturating_duration_since(ended);
    no_panic(&stderr, Some(status))?;
    let mut problems = Vec::new();
    if !status.success() {
        problems.push(format!("record exited with {status}"));
    }
    if took > EXIT_LIMIT {
        problems.push(format!(
            "record ended {took:?} after the target's {} (limit {EXIT_LIMIT:?})",
            how.name()
        ));
    }
    match read_raw(py, &out) {
        Err(e) => problems.push(e),
        // Either busy function: a kill a few ms in leaves one or two samples,
        // and on 2.7 the thread waiting for the GIL sleeps, so it is idle
        // and rightly left out of that sample.
        Ok(stacks)
            if samples_with(&stacks, "main_work") + samples_with(&stacks, "worker_work") == 0 =>
        {
            problems.push(format!(
                "the profile has no samples of main_work or worker_work ({} in all)",
                total(&stacks)
            ))
        }
        Ok(_) => {}
    }
    let errors = match summary(&stderr) {
        None => {
            problems.push("no summary line".into());
            0
        }
        // An ending is one event, not a run of failed samples.
        Some((_, _, errors)) if errors > 10 => {
            problems.push(format!(
                "{errors} errors reported around the {}",
                how.name()
            ));
            errors
        }
        Some((_, _, errors)) => errors,
    };
    match stderr
        .lines()
        .find(|l| l.starts_with(&format!("pysampler: process {pid}: ")))
    {
        None => problems.push(format!(
            "stderr does not say what happened to process {pid}"
        )),
        Some(said) => {
            let fits = match how {
                Ending::Normal | Ending::Sigkill => said.contains("exited"),
                // After execv the pid lives on as another program.
                Ending::Exec => ["exec", "no longer", "not a Python", "replaced"]
                    .iter()
                    .any(|w| said.contains(w)),
            };
            if !fits {
                problems.push(format!(
                    "stderr's account of the {} does not say so: {said:?}",
                    how.name()
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(format!("{} {ctx}; stderr:\n{stderr}", problems.join("; ")));
    }
    Ok(if errors > 0 {
        format!("{errors} errors, ended after {took:?}")
    } else {
        String::new()
    })
}

#[test]
fn target_exits_during_record() {
    let (mut tally, mut rng) = Tally::new("target_exits_during_record");
    let dir = tally.dir("exit-record");
    for i in 0..iterations() {
        let py = python_for(i);
        for how in [Ending::Normal, Ending::Sigkill, Ending::Exec] {
            let result = record_through_exit(&py, how, Recording::Plain, &mut rng, &dir, i);
            tally.add(
                &format!("record/{}/{}", how.name(), py.label),
                &format!("#{i}"),
                result,
            );
        }
        // Threads paused at the moment of the end: execv and exit must not
        // wait for pysampler (a paused thread killed by the kernel stays a
        // zombie until its tracer reaps it).
        for how in [Ending::Exec, Ending::Normal] {
            let result = record_through_exit(&py, how, Recording::ManyPaused, &mut rng, &dir, i);
            tally.add(
                &format!("record-paused/{}/{}", how.name(), py.label),
                &format!("#{i}"),
                result,
            );
        }
    }
    tally.finish();
}

/// `top` (plain snapshots: stdout is a pipe) watching a target that ends at a
/// random moment: the view ends within `EXIT_LIMIT`, exits 0, says what
/// happened, and its snapshots showed the target's work.
fn top_through_exit(py: &Python, how: Ending, rng: &mut Rng) -> Result<String, String> {
    let target = Target::start(py, "faults_exit.py", &["1"]);
    let pid = target.pid();
    let pid_text = pid.to_string();
    let mut top = spawn_pysampler(&["top", "--pid", &pid_text, "-r", "1000", "--delay", "0.2"]);
    // Handshake: the first snapshot that shows the target's work.
    let seen = poll(Duration::from_secs(30), || {
        String::from_utf8_lossy(&top.stdout_bytes()).contains("main_work")
    });
    if !seen {
        return Err(format!(
            "top never showed main_work (pid {pid}); stderr: {}",
            top.stderr_text()
        ));
    }
    let delay = rng.millis(400);
    std::thread::sleep(delay);
    let ended = end_target(&target, how)?;
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let Some((status, exited_at)) = top.wait_exit(Duration::from_secs(15)) else {
        return Err(format!(
            "top still running 15 s after the target's {} {ctx}; stderr: {}",
            how.name(),
            top.stderr_text()
        ));
    };
    top.drain();
    let stderr = top.stderr_text();
    no_panic(&stderr, Some(status))?;
    let took = exited_at.saturating_duration_since(ended);
    let mut problems = Vec::new();
    if !status.success() {
        problems.push(format!("top exited with {status}"));
    }
    if took > EXIT_LIMIT {
        problems.push(format!(
            "top ended {took:?} after the target's {} (limit {EXIT_LIMIT:?})",
            how.name()
        ));
    }
    let said = stderr
        .lines()
        .find(|l| l.starts_with(&format!("pysampler: process {pid}")))
        .unwrap_or("");
    let fits = match how {
        Ending::Normal | Ending::Sigkill => said.contains("exited"),
        Ending::Exec => said.contains("exec") || said.contains("exited"),
    };
    if !fits {
        problems.push(format!(
            "stderr does not say what happened to process {pid}: {stderr:?}"
        ));
    }
    if !problems.is_empty() {
        return Err(format!("{} {ctx}", problems.join("; ")));
    }
    Ok(String::new())
}

#[test]
fn target_exits_during_top() {
    let (mut tally, mut rng) = Tally::new("target_exits_during_top");
    for i in 0..iterations() {
        let py = python_for(i);
        for how in [Ending::Normal, Ending::Sigkill, Ending::Exec] {
            let result = top_through_exit(&py, how, &mut rng);
            tally.add(
                &format!("top/{}/{}", how.name(), py.label),
                &format!("#{i}"),
                result,
            );
        }
    }
    tally.finish();
}

fn dump_through_exit(py: &Python, how: Ending, rng: &mut Rng) -> Result<String, String> {
    let target = Target::start(py, "faults_exit.py", &[]);
    let pid = target.pid();
    let exited = Arc::new(AtomicBool::new(false));
    let results: Arc<Mutex<Vec<(bool, Finished)>>> = Arc::default();
    let dumper = {
        let (exited, results) = (exited.clone(), results.clone());
        std::thread::spawn(move || {
            let mut after = 0;
            loop {
                let after_exit = exited.load(Ordering::SeqCst);
                let out = run_bounded(&dump_args(pid), Duration::from_secs(10));
                let mut r = results.lock().unwrap();
                r.push((after_exit, out));
                if after_exit {
                    after += 1;
                }
                if after >= 3 || r.len() >= 400 {
                    break;
                }
            }
        })
    };
    if !poll(Duration::from_secs(20), || {
        !results.lock().unwrap().is_empty()
    }) {
        return Err("no dump finished within 20 s".into());
    }
    let delay = rng.millis(300);
    std::thread::sleep(delay);
    let ended = end_target(&target, how);
    exited.store(true, Ordering::SeqCst);
    dumper.join().unwrap();
    let ended = ended?;
    let results = std::mem::take(&mut *results.lock().unwrap());
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let (mut stacks, mut messages) = (0, BTreeMap::<String, usize>::new());
    for (after_exit, out) in &results {
        match judge_dump(out, py, pid).map_err(|e| format!("{e} {ctx}"))? {
            DumpResult::Stacks(doc) => {
                if *after_exit && out.started > ended {
                    return Err(format!(
                        "a dump started after the target's {} still showed stacks {ctx}: {:?}",
                        how.name(),
                        thread_functions(&doc)
                    ));
                }
                stacks += 1;
            }
            DumpResult::Message(m) => {
                let key = m.replace(&pid.to_string(), "PID");
                *messages.entry(key).or_default() += 1;
            }
        }
    }
    if stacks == 0 {
        return Err(format!("no dump showed stacks before the exit {ctx}"));
    }
    Ok(format!("{stacks} stack dumps, messages {messages:?}"))
}

#[test]
fn target_exits_during_dump() {
    let (mut tally, mut rng) = Tally::new("target_exits_during_dump");
    let mut messages = BTreeMap::<String, usize>::new();
    for i in 0..iterations() {
        let py = python_for(i);
        for how in [Ending::Normal, Ending::Sigkill, Ending::Exec] {
            let result = dump_through_exit(&py, how, &mut rng);
            if let Ok(note) = &result {
                *messages
                    .entry(format!("{}: {note}", how.name()))
                    .or_default() += 1;
            }
            tally.add(
                &format!("dump/{}/{}", how.name(), py.label),
                &format!("#{i}"),
                result.map(|_| String::new()),
            );
        }
    }
    for (m, n) in messages.iter().take(12) {
        tally.note(format!("{n}× {m}"));
    }
    tally.finish();
}

// ---------------------------------------------------------------------------
// 2. pysampler is signalled or killed

const MUL: u64 = 6364136223846793005;
const ADD: u64 = 1442695040888963407;

fn chain(seed: u64, n: u64) -> u64 {
    let mut x = seed;
    for i in 0..n {
        x = x.wrapping_mul(MUL).wrapping_add(ADD).wrapping_add(i);
    }
    x
}

/// Lets the checksum fixture finish and checks what it computed.
fn finish_checksums(target: &mut Target) -> Result<(), String> {
    let pid = target.pid();
    signal(pid, libc::SIGUSR1);
    let mut results = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = target.lines.recv_timeout(left).map_err(|_| {
            format!(
                "the target never finished its work after SIGUSR1 (state {:?}, {:?})",
                stat_state(pid),
                stopped_or_traced(pid)
            )
        })?;
        if line == "DONE" {
            break;
        }
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            if parts.len() == 3 {
                results.insert(
                    parts[0].to_string(),
                    (
                        parts[1].parse::<u64>().unwrap(),
                        parts[2].parse::<u64>().unwrap(),
                    ),
                );
            }
        }
    }
    for (name, seed) in [("main", 1), ("napper", 2), ("cruncher", 3)] {
        let &(n, x) = results
            .get(name)
            .ok_or_else(|| format!("no result for {name}: {results:?}"))?;
        if n == 0 || chain(seed, n) != x {
            return Err(format!(
                "{name}: {n} iterations gave {x}, expected {}",
                chain(seed, n)
            ));
        }
    }
    match results.get("pipe") {
        Some(&(n, 1)) if n > 0 => {}
        other => return Err(format!("pipe items lost or out of order: {other:?}")),
    }
    match wait_child(&mut target.child, Duration::from_secs(10)) {
        Some(s) if s.success() => Ok(()),
        other => Err(format!("the target ended with {other:?}")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    Sigint,
    Sigterm,
    Sighup,
    Sigkill,
    /// SIGINT, then a second one once the first was taken.
    DoubleSigint,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Sigint => "sigint",
            Stop::Sigterm => "sigterm",
            Stop::Sighup => "sighup",
            Stop::Sigkill => "sigkill",
            Stop::DoubleSigint => "double-sigint",
        }
    }
}

/// A graceful stop finishes the output within this.
const GRACEFUL_LIMIT: Duration = Duration::from_secs(5);
/// A second Ctrl-C exits within this.
const AT_ONCE: Duration = Duration::from_millis(200);
/// The target is free this soon after pysampler is gone.
const FREE_LIMIT: Duration = Duration::from_millis(500);

fn stop_recording(
    py: &Python,
    stop: Stop,
    rng: &mut Rng,
    dir: &Path,
    i: usize,
) -> Result<String, String> {
    let mut target = Target::start(py, "faults_checksum.py", &[]);
    let pid = target.pid();
    let out = dir.join(format!("{}-{}-{i}.txt", py.label, stop.name()));
    let mut rec = spawn_pysampler(&record_args(pid, &out, &["-r", "2000"]));
    rec.wait_line("pysampler: recording", Duration::from_secs(30))?;
    wait_until_traced(pid, &rec)?;
    // Signals that reach the target while it is paused must not be lost.
    for k in 1..=2 {
        signal(pid, libc::SIGUSR2);
        target_line(&target, &format!("USR2 {k}"), Duration::from_secs(10))
            .map_err(|e| format!("SIGUSR2 #{k} sent during recording was lost: {e}"))?;
    }
    let delay = rng.millis(300);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, pid {pid}, pysampler {})", rec.pid());
    let mut note = String::new();
    match stop {
        Stop::Sigint | Stop::Sigterm | Stop::Sighup => {
            let sig = match stop {
                Stop::Sigint => libc::SIGINT,
                Stop::Sigterm => libc::SIGTERM,
                _ => libc::SIGHUP,
            };
            let sent = Instant::now();
            signal(rec.pid(), sig);
            let (status, at) = rec.wait_exit(GRACEFUL_LIMIT).ok_or_else(|| {
                format!(
                    "record still running {GRACEFUL_LIMIT:?} after {} {ctx}",
                    stop.name()
                )
            })?;
            rec.drain();
            let stderr = rec.stderr_text();
            no_panic(&stderr, Some(status))?;
            if !status.success() {
                return Err(format!(
                    "record exited with {status} after {} {ctx}: {stderr}",
                    stop.name()
                ));
            }
            let stacks = read_raw(py, &out).map_err(|e| format!("{e} {ctx}"))?;
            if total(&stacks) == 0 {
                return Err(format!("empty profile after {} {ctx}", stop.name()));
            }
            note = format!("stopped in {:?}", at - sent);
        }
        Stop::Sigkill => {
            signal(rec.pid(), libc::SIGKILL);
            rec.wait_exit(Duration::from_secs(5))
                .ok_or_else(|| format!("pysampler survived SIGKILL {ctx}"))?;
        }
        Stop::DoubleSigint => {
            signal(rec.pid(), libc::SIGINT);
            // The first must have been taken, or the two merge into one.
            let taken = poll(Duration::from_secs(2), || {
                shared_pending(rec.pid()) & (1 << (libc::SIGINT - 1)) == 0
            });
            if !taken {
                return Err(format!("pysampler never took the first SIGINT {ctx}"));
            }
            let gap = rng.millis(3);
            std::thread::sleep(gap);
            let second = Instant::now();
            signal(rec.pid(), libc::SIGINT);
            let (status, at) = rec
                .wait_exit(Duration::from_secs(5))
                .ok_or_else(|| format!("record still running 5 s after a second SIGINT {ctx}"))?;
            rec.drain();
            no_panic(&rec.stderr_text(), Some(status))?;
            if at - second > AT_ONCE {
                return Err(format!(
                    "record took {:?} to exit after the second SIGINT (limit {AT_ONCE:?}, gap {gap:?}) {ctx}",
                    at - second
                ));
            }
            if !(status.success() || status.code() == Some(130)) {
                return Err(format!(
                    "record exited with {status} after two SIGINTs {ctx}"
                ));
            }
            note = format!(
                "exit {:?} {:?} after the second",
                status.code(),
                at - second
            );
        }
    }
    target_free(pid, FREE_LIMIT).map_err(|e| format!("{e} {ctx}"))?;
    finish_checksums(&mut target).map_err(|e| format!("{e} {ctx}"))?;
    Ok(if i < 2 { note } else { String::new() })
}

#[test]
fn signals_to_pysampler_leave_the_target_running() {
    let (mut tally, mut rng) = Tally::new("signals_to_pysampler_leave_the_target_running");
    let dir = tally.dir("signals");
    for i in 0..iterations() {
        let py = python_for(i);
        for stop in [
            Stop::Sigint,
            Stop::Sigterm,
            Stop::Sighup,
            Stop::Sigkill,
            Stop::DoubleSigint,
        ] {
            let result = stop_recording(&py, stop, &mut rng, &dir, i);
            tally.add(
                &format!("{}/{}", stop.name(), py.label),
                &format!("#{i}"),
                result,
            );
        }
    }
    tally.finish();
}

/// A launched program that ignores SIGINT keeps pysampler's graceful stop
/// waiting for it; a second SIGINT must end pysampler at once, and the
/// program is left running, not stopped, and finishes correctly.
fn double_sigint_launched(
    py: &Python,
    rng: &mut Rng,
    dir: &Path,
    i: usize,
) -> Result<String, String> {
    let out = dir.join(format!("launched-{}-{i}.txt", py.label));
    let mut cmd = Command::new(PYSAMPLER);
    cmd.args(["record", "-r", "2000", "-f", "raw", "-o"])
        .arg(&out)
        .arg("--")
        .args(python_command(py, "faults_checksum.py", &["ignore-sigint"]))
        .env("PYTHONIOENCODING", "utf-8");
    let mut rec = spawn_command(&mut cmd);
    let line = rec.wait_line("pysampler: recording program", Duration::from_secs(30))?;
    let pid: i32 = line
        .split_whitespace()
        .nth(3)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("no pid in {line:?}"))?;
    // Not our child: once pysampler is gone it is reparented and reaped by
    // others, and its pid may be reused (pid_max is 32768 here, and the
    // churn tests start thousands of threads): signal it through a pidfd.
    let program = ProcessHandle::open(pid)?;
    // The program's stdout is pysampler's: its handshake arrives there.
    if !poll(Duration::from_secs(30), || {
        String::from_utf8_lossy(&rec.stdout_bytes()).contains("READY\n")
    }) {
        return Err(format!("the program {pid} never printed READY"));
    }
    wait_until_traced(pid, &rec)?;
    let delay = rng.millis(300);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, program {pid}, pysampler {})", rec.pid());
    signal(rec.pid(), libc::SIGINT);
    // pysampler joins its sampler thread, passes the SIGINT on to the
    // program, which ignores it, and waits for it: once pysampler is down to
    // its main thread it is in that grace period.
    let passed_on = poll(Duration::from_secs(5), || {
        std::fs::read_dir(format!("/proc/{}/task", rec.pid())).map_or(0, |d| d.count()) == 1
    });
    if !passed_on {
        return Err(format!(
            "pysampler did not stop sampling after SIGINT {ctx}"
        ));
    }
    let second = Instant::now();
    signal(rec.pid(), libc::SIGINT);
    let (status, at) = rec
        .wait_exit(Duration::from_secs(10))
        .ok_or_else(|| format!("record still running 10 s after a second SIGINT {ctx}"))?;
    no_panic(&rec.stderr_text(), Some(status))?;
    let took = at - second;
    if took > AT_ONCE {
        return Err(format!(
            "record took {took:?} to exit after the second SIGINT (limit {AT_ONCE:?}) {ctx}"
        ));
    }
    let result = (|| {
        target_free(pid, FREE_LIMIT)?;
        if !alive(pid) {
            return Err(format!(
                "the program {pid} did not survive pysampler's exit"
            ));
        }
        // The program's stdout is pysampler's: read the results from there.
        program.signal(libc::SIGUSR1);
        if !poll(Duration::from_secs(20), || !alive(pid)) {
            return Err(format!("the program {pid} never finished after SIGUSR1"));
        }
        rec.drain();
        let text = String::from_utf8_lossy(&rec.stdout_bytes()).into_owned();
        check_checksum_text(&text)
    })();
    program.signal(libc::SIGKILL);
    result.map_err(|e| format!("{e} {ctx}"))?;
    Ok(if i < 2 {
        format!("exit {:?} {took:?} after the second", status.code())
    } else {
        String::new()
    })
}

fn check_checksum_text(text: &str) -> Result<(), String> {
    let mut results = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let p: Vec<&str> = rest.split(' ').collect();
            if p.len() == 3 {
                results.insert(
                    p[0].to_string(),
                    (
                        p[1].parse::<u64>().unwrap_or(0),
                        p[2].parse::<u64>().unwrap_or(0),
                    ),
                );
            }
        }
    }
    if !text.lines().any(|l| l == "DONE") {
        return Err(format!("the program printed no DONE: {text:?}"));
    }
    for (name, seed) in [("main", 1), ("napper", 2), ("cruncher", 3)] {
        let &(n, x) = results
            .get(name)
            .ok_or_else(|| format!("no result for {name}: {text:?}"))?;
        if n == 0 || chain(seed, n) != x {
            return Err(format!(
                "{name}: {n} iterations gave {x}, expected {}",
                chain(seed, n)
            ));
        }
    }
    match results.get("pipe") {
        Some(&(n, 1)) if n > 0 => Ok(()),
        other => Err(format!("pipe items lost or out of order: {other:?}")),
    }
}

#[test]
fn second_sigint_exits_at_once_while_a_launched_program_ignores_the_first() {
    let (mut tally, mut rng) =
        Tally::new("second_sigint_exits_at_once_while_a_launched_program_ignores_the_first");
    let dir = tally.dir("double-sigint-launched");
    for i in 0..iterations() {
        let py = python_for(i);
        let result = double_sigint_launched(&py, &mut rng, &dir, i);
        tally.add(
            &format!("launched-double-sigint/{}", py.label),
            &format!("#{i}"),
            result,
        );
    }
    tally.finish();
}

// ---------------------------------------------------------------------------
// 3. Thread churn

/// Errors allowed per sample under thread churn: 1%. pysampler pauses every
/// thread it reads, and `pause` already knows which threads exited before
/// they could be stopped; such a thread has no stack to report and should
/// simply be left out of the sample. So the only failures left are reads
/// that race a thread's exit in some way pause cannot see, which at ~1000
/// exits a second should be rare. Each error loses a whole sample, live
/// threads included, so a few percent would already under-represent the
/// busiest moments of the program; an error storm (one dead thread
/// poisoning every walk) is near 100%.
const MAX_ERROR_SHARE: f64 = 0.01;

fn thread_faults(py: &Python, mode: &str, dir: &Path, i: usize) -> Result<String, String> {
    let target = Target::start(py, "faults_threads.py", &[mode]);
    let pid = target.pid();
    let out = dir.join(format!("{}-{mode}-{i}.txt", py.label));
    let seconds = 3.0;
    let started = Instant::now();
    let mut rec = spawn_pysampler(&record_args(pid, &out, &["-r", "500", "-d", "3"]));
    let ctx = format!("(pid {pid}, pysampler {})", rec.pid());
    let limit = Duration::from_secs_f64(seconds + 20.0);
    let Some((status, _)) = rec.wait_exit(limit) else {
        return Err(format!(
            "record -d 3 still running after {limit:?} (hang) {ctx}; stderr: {}",
            rec.stderr_text()
        ));
    };
    let took = started.elapsed();
    rec.drain();
    let stderr = rec.stderr_text();
    no_panic(&stderr, Some(status))?;
    if !status.success() {
        return Err(format!("record exited with {status} {ctx}: {stderr}"));
    }
    // How many threads the fixture started meanwhile (lines every ~0.5 s).
    let counts: Vec<u64> = target
        .lines
        .try_iter()
        .filter_map(|l| l.strip_prefix("STARTED ").and_then(|n| n.parse().ok()))
        .collect();
    let rate = match (counts.first(), counts.last()) {
        (Some(a), Some(b)) if counts.len() > 1 => {
            format!(
                "{:.0} threads started/s",
                (b - a) as f64 / ((counts.len() - 1) as f64 * 0.5)
            )
        }
        _ => "no thread churn".into(),
    };
    let ctx = format!("({rate}, pid {pid})");
    covered_whole_duration(&stderr, pid, seconds)
        .map_err(|e| format!("{e} {ctx}; stderr: {stderr}"))?;
    let (samples, late, errors) =
        summary(&stderr).ok_or_else(|| format!("no summary line {ctx}: {stderr}"))?;
    let stacks = read_raw(py, &out).map_err(|e| format!("{e} {ctx}"))?;
    // Each sample reads every thread's state (/proc stat, thread state),
    // so 500 threads cost ~10 ms a sample on this machine (more with other
    // tests running): far fewer than 1500 samples, but never a standstill.
    if samples < 10 {
        return Err(format!(
            "only {samples} samples in {seconds} s at 500 Hz {ctx}: {stderr}"
        ));
    }
    if errors as f64 > MAX_ERROR_SHARE * samples as f64 {
        return Err(format!(
            "{errors} errors in {samples} samples (limit {:.0}%) {ctx}: {stderr}",
            MAX_ERROR_SHARE * 100.0
        ));
    }
    // The long-lived thread: always under main() under <module>.
    let want = ["<module>", "main", "long_lived_marker"];
    let mut long_lived = 0;
    for (frames, count) in &stacks {
        let names: Vec<&str> = frames.iter().map(|f| name_of(f)).collect();
        if names.contains(&"long_lived_marker") {
            // Below it only say(), which prints the progress lines.
            let below_ok = names.len() == 3 || (names.len() == 4 && names[3] == "say");
            if names[..names.len().min(3)] != want || !below_ok {
                return Err(format!(
                    "wrong stack for the long-lived thread: {frames:?} {ctx}"
                ));
            }
            long_lived += count;
        }
    }
    // The main thread spins, so it is running in most samples; with many
    // threads contending for the GIL it waits for it in some.
    if (long_lived as f64) < 0.2 * samples as f64 {
        return Err(format!(
            "long_lived_marker in only {long_lived} of {samples} samples {ctx}"
        ));
    }
    let line = marker_line("faults_threads.py", "LINE_LONG_LIVED");
    if !stacks.iter().any(|(fs, _)| {
        fs.last()
            .is_some_and(|f| f.ends_with(&format!("faults_threads.py:{line})")))
    }) {
        return Err(format!(
            "long_lived_marker never seen at its loop line {line} {ctx}"
        ));
    }
    target_free(pid, FREE_LIMIT)?;
    if !alive(pid) {
        return Err(format!("the target died {ctx}"));
    }
    Ok(format!(
        "{samples} samples, {late:.1}% late, {errors} errors, long-lived in {long_lived}, {rate}, took {:.1} s",
        took.as_secs_f64()
    ))
}

#[test]
fn thread_churn_and_many_threads() {
    let (mut tally, _) = Tally::new("thread_churn_and_many_threads");
    let dir = tally.dir("threads");
    for i in 0..long_runs() {
        for label in ["3.12", "2.7", "3.9", "3.14"] {
            let py = pythons::find(label);
            for mode in ["churn", "many"] {
                let result = thread_faults(&py, mode, &dir, i);
                tally.add(&format!("{mode}/{label}"), &format!("#{i}"), result);
            }
        }
    }
    tally.finish();
}

/// A thread that spends a few hundred milliseconds inside one system call
/// (running in the kernel, where a PTRACE_INTERRUPT waits until the call
/// returns) while it is being paused: pysampler gives up waiting for the
/// stop after a bounded time, and must then never leave the thread seized
/// (held stopped once the call returns, or refused on the next pause).
fn long_syscall(py: &Python, extra: &[&str], dir: &Path, i: usize) -> Result<String, String> {
    let target = Target::start(py, "faults_long_syscall.py", &[]);
    let pid = target.pid();
    let tag = if extra.is_empty() { "default" } else { "idle" };
    let out = dir.join(format!("{}-{tag}-{i}.txt", py.label));
    let seconds = 4.0;
    let mut args = vec!["-r", "1000", "-d", "4"];
    args.extend_from_slice(extra);
    let mut rec = spawn_pysampler(&record_args(pid, &out, &args));
    let ctx = format!("(pid {pid}, pysampler {})", rec.pid());
    rec.wait_line("pysampler: recording", Duration::from_secs(30))?;
    // Watch the target while it is recorded: the longest stretch in a
    // ptrace stop. A sample holds it for well under a millisecond; a call
    // (~100 ms) outlasts pysampler's bounded wait for the stop (25 ms), so
    // every cycle leaves a late stopper that the next tick must release.
    let mut longest = Duration::ZERO;
    let mut stopped_since: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds + 20.0);
    let status = loop {
        if let Ok(Some(status)) = rec.child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            return Err(format!("record -d 4 still running after 24 s {ctx}"));
        }
        let stopped = matches!(stat_state(pid), Some('t') | Some('T'));
        match (stopped, stopped_since) {
            (true, None) => stopped_since = Some(Instant::now()),
            (false, Some(since)) => {
                longest = longest.max(since.elapsed());
                stopped_since = None;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if let Some(since) = stopped_since {
        longest = longest.max(since.elapsed());
    }
    rec.drain();
    let stderr = rec.stderr_text();
    no_panic(&stderr, Some(status))?;
    let cycles: Vec<f64> = target
        .lines
        .try_iter()
        .filter_map(|l| l.split(' ').nth(2).and_then(|t| t.parse().ok()))
        .collect();
    let slowest = cycles.iter().cloned().fold(0.0, f64::max);
    let ctx = format!(
        "{ctx}, longest stop {longest:?}, slowest call {slowest:.3} s of {}",
        cycles.len()
    );
    if longest > Duration::from_millis(250) {
        return Err(format!(
            "the target was held stopped for {longest:?} while recorded {ctx}; stderr: {stderr}"
        ));
    }
    if !status.success() {
        return Err(format!("record exited with {status} {ctx}: {stderr}"));
    }
    covered_whole_duration(&stderr, pid, seconds)
        .map_err(|e| format!("{e} {ctx}; stderr: {stderr}"))?;
    target_free(pid, FREE_LIMIT)?;
    let stacks = read_raw(py, &out).map_err(|e| format!("{e} {ctx}"))?;
    if samples_with(&stacks, "busy_work") == 0 {
        return Err(format!("no sample of busy_work {ctx}"));
    }
    Ok(if i == 0 { ctx } else { String::new() })
}

#[test]
fn long_system_calls_never_leave_the_target_stopped() {
    let (mut tally, _) = Tally::new("long_system_calls_never_leave_the_target_stopped");
    let dir = tally.dir("long-syscall");
    for i in 0..long_runs() {
        for label in ["3.12", "2.7", "3.9", "3.14"] {
            let py = pythons::find(label);
            for (tag, extra) in [("default", &[][..]), ("idle", &["--idle"][..])] {
                let result = long_syscall(&py, extra, &dir, i);
                tally.add(&format!("{tag}/{label}"), &format!("#{i}"), result);
            }
        }
    }
    tally.finish();
}

// ---------------------------------------------------------------------------
// 4. Deep recursion

/// The documented limit (src/walk/frames.rs MAX_DEPTH, README's schema).
const MAX_DEPTH: usize = 10_000;

fn check_deep(py: &Python, depth: usize, doc: &Value) -> Result<(), String> {
    let file = "faults_deep.py";
    let deep = doc["threads"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == "deep"))
        .ok_or_else(|| "no thread named deep".to_string())?;
    let frames = deep["frames"].as_array().unwrap();
    let at = |k: usize| -> (String, String, u64) {
        let f = &frames[k];
        (
            f["function"].as_str().unwrap_or("").to_string(),
            f["short_filename"].as_str().unwrap_or("").to_string(),
            f["line"].as_u64().unwrap_or(0),
        )
    };
    let expect = |k: usize, name: &str, marker: &str| -> Result<(), String> {
        let want = (
            name.to_string(),
            file.to_string(),
            marker_line(file, marker),
        );
        if k >= frames.len() || at(k) != want {
            return Err(format!(
                "frame {k} of {}: {:?}, expected {want:?}",
                frames.len(),
                (k < frames.len()).then(|| at(k))
            ));
        }
        Ok(())
    };
    expect(0, "leaf", "LINE_LEAF")?;
    expect(1, "recurse", "LINE_BASE")?;
    let truncated = deep["truncated"].as_bool();
    if depth < MAX_DEPTH {
        let recursive = frames.iter().filter(|f| f["function"] == "recurse").count();
        if recursive != depth {
            return Err(format!(
                "{recursive} recurse frames, expected exactly {depth}"
            ));
        }
        for k in 2..=depth {
            expect(k, "recurse", "LINE_RECURSE")?;
        }
        let run = if py.qualnames() { "Thread.run" } else { "run" };
        if at(depth + 1).0 != run {
            return Err(format!(
                "frame after the recursion: {:?}, expected {run}",
                at(depth + 1)
            ));
        }
        if truncated != Some(false) {
            return Err(format!("truncated is {truncated:?} for depth {depth}"));
        }
    } else {
        if frames.len() != MAX_DEPTH {
            return Err(format!(
                "{} frames read of a {depth}-deep stack, expected the limit {MAX_DEPTH}",
                frames.len()
            ));
        }
        for k in 2..MAX_DEPTH {
            expect(k, "recurse", "LINE_RECURSE")?;
        }
        if truncated != Some(true) {
            return Err(format!("truncated is {truncated:?} for depth {depth}"));
        }
    }
    Ok(())
}

fn deep_recursion(label: &str) {
    let (mut tally, _) = Tally::new("deep_recursion");
    let py = pythons::find(label);
    for depth in [5_000usize, 50_000] {
        let target = Target::start(&py, "faults_deep.py", &[&depth.to_string()]);
        let pid = target.pid();
        let case = format!("depth-{depth}/{label}");
        // READY is printed from the leaf just before it sleeps: wait until
        // the leaf is seen in its sleep, after which the stack stands still.
        let leaf_line = marker_line("faults_deep.py", "LINE_LEAF");
        dump_when(pid, &[], |doc| {
            doc["threads"].as_array().is_some_and(|ts| {
                ts.iter().any(|t| {
                    t["name"] == "deep"
                        && t["frames"][0]["function"] == "leaf"
                        && t["frames"][0]["line"] == leaf_line
                })
            })
        });
        // The stack stands still: a third of the iterations is plenty.
        for i in 0..iterations().div_ceil(3).max(3) {
            let out = run_bounded(&dump_args(pid), Duration::from_secs(30));
            let result = match judge_dump(&out, &py, pid) {
                Ok(DumpResult::Stacks(doc)) => check_deep(&py, depth, &doc),
                Ok(DumpResult::Message(m)) => Err(format!("dump failed: {m}")),
                Err(e) => Err(e),
            };
            let took = out.started.elapsed();
            tally.add(
                &case,
                &format!("#{i}"),
                result.map(|_| {
                    if i == 0 {
                        format!("dump took {took:?}")
                    } else {
                        String::new()
                    }
                }),
            );
        }
        // The text form says where it was cut.
        let pid_s = pid.to_string();
        let out = run_bounded(&["dump", "--pid", &pid_s], Duration::from_secs(30));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let result = if out.status.is_some_and(|s| s.success()) {
            let cut = text.contains(&format!("(stack truncated after {MAX_DEPTH} frames)"));
            if cut == (depth > MAX_DEPTH) {
                Ok(String::new())
            } else {
                Err(format!(
                    "text dump: truncation note {} for depth {depth}",
                    if cut { "present" } else { "missing" }
                ))
            }
        } else {
            Err(format!("text dump failed: {}", out.stderr))
        };
        tally.add(&case, "text", result);
    }
    tally.finish();
}

#[test]
fn deep_recursion_on_python_3_12() {
    deep_recursion("3.12");
}

#[test]
fn deep_recursion_on_python_2_7() {
    deep_recursion("2.7");
}

#[test]
fn deep_recursion_on_python_3_9() {
    deep_recursion("3.9");
}

#[test]
fn deep_recursion_on_python_3_14_in_sid_root() {
    deep_recursion("3.14");
}

// ---------------------------------------------------------------------------
// 5. Code objects freed and their addresses reused

/// "f_12" → ('f', 12).
fn generation(name: &str) -> Option<(char, u64)> {
    let (kind, n) = name.split_once('_')?;
    let kind = match kind {
        "f" => 'f',
        "g" => 'g',
        _ => return None,
    };
    Some((kind, n.parse().ok()?))
}

/// The lines of f_<n> or g_<n> in the source faults_codereuse.py makes for
/// generation n (its `source(i)`): g_<n> comes first, with (3n mod 7)
/// padding lines, then a blank line, then f_<n> with (n mod 5) of them.
fn generation_lines(kind: char, n: u64) -> std::ops::RangeInclusive<u64> {
    let (g_pad, f_pad) = ((n * 3) % 7, n % 5);
    match kind {
        'g' => 1..=5 + g_pad,
        _ => 7 + g_pad..=8 + g_pad + f_pad,
    }
}

fn code_reuse(py: &Python, mode: &str, dir: &Path, i: usize) -> Result<String, String> {
    let target = Target::start(py, "faults_codereuse.py", &[mode]);
    let pid = target.pid();
    // The reload mode's module folder, left behind when the fixture is
    // killed while it exists.
    let module_dir = PathBuf::from(format!("/tmp/pysampler-faults-{pid}"));
    let module_dir = match &py.root {
        Some(root) => root.join(module_dir.strip_prefix("/").unwrap()),
        None => module_dir,
    };
    let result = code_reuse_check(py, mode, &target, dir, i);
    drop(target);
    let _ = std::fs::remove_dir_all(module_dir);
    result
}

fn code_reuse_check(
    py: &Python,
    mode: &str,
    target: &Target,
    dir: &Path,
    i: usize,
) -> Result<String, String> {
    let pid = target.pid();
    let out = dir.join(format!("{}-{mode}-{i}.txt", py.label));
    let mut rec = spawn_pysampler(&record_args(pid, &out, &["-r", "2000", "-d", "3"]));
    let ctx = format!("(pid {pid})");
    let Some((status, _)) = rec.wait_exit(Duration::from_secs(30)) else {
        return Err(format!("record -d 3 still running after 30 s {ctx}"));
    };
    rec.drain();
    let stderr = rec.stderr_text();
    no_panic(&stderr, Some(status))?;
    if !status.success() {
        return Err(format!("record exited with {status} {ctx}: {stderr}"));
    }
    covered_whole_duration(&stderr, pid, 3.0)
        .map_err(|e| format!("{e} {ctx}; stderr: {stderr}"))?;
    let (samples, _, errors) =
        summary(&stderr).ok_or_else(|| format!("no summary line {ctx}: {stderr}"))?;
    let stacks = read_raw(py, &out).map_err(|e| format!("{e} {ctx}"))?;
    let mut leaf_samples = 0;
    let mut generations = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    for (frames, count) in &stacks {
        for (k, label) in frames.iter().enumerate() {
            let (name, file, _) = split_label(label).unwrap();
            let Some((kind, n)) = generation(name) else {
                if name.starts_with("f_") || name.starts_with("g_") {
                    wrong.push(format!("odd name {label:?} in {frames:?}"));
                }
                continue;
            };
            generations.insert(n);
            if let Some(line) = split_label(label).and_then(|(_, _, l)| l) {
                let lines = generation_lines(kind, n);
                if !lines.contains(&line) {
                    wrong.push(format!(
                        "{label}: line {line} is not in {name} (lines {lines:?}): {frames:?} ×{count}"
                    ));
                }
            }
            if mode == "exec" && file != format!("gen_{n}.py") {
                wrong.push(format!(
                    "{label} is in {file}, not gen_{n}.py: {frames:?} ×{count}"
                ));
            }
            if mode == "reload" && !file.ends_with("faults_reload_gen.py") {
                wrong.push(format!("{label} is in {file}: {frames:?} ×{count}"));
            }
            match kind {
                'g' => {
                    leaf_samples += count;
                    let parent = k.checked_sub(1).map(|p| name_of(&frames[p]));
                    if parent != Some(format!("f_{n}").as_str()) {
                        wrong.push(format!(
                            "{name} called from {parent:?}, not f_{n}: {frames:?} ×{count}"
                        ));
                    }
                }
                _ => {
                    if let Some(child) = frames.get(k + 1) {
                        if name_of(child) != format!("g_{n}") {
                            wrong.push(format!("{name} calls {child:?}: {frames:?} ×{count}"));
                        }
                    }
                }
            }
        }
    }
    if !wrong.is_empty() {
        return Err(format!(
            "{} stale or wrong names ({} samples, {} generations seen) {ctx}, e.g.:\n    {}",
            wrong.len(),
            samples,
            generations.len(),
            wrong
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n    ")
        ));
    }
    if leaf_samples < 20 || generations.len() < 10 {
        return Err(format!(
            "too little seen to judge: {leaf_samples} samples in g_*, {} generations {ctx}",
            generations.len()
        ));
    }
    Ok(format!(
        "{samples} samples, {errors} errors, {leaf_samples} in g_*, {} generations",
        generations.len()
    ))
}

#[test]
fn freed_and_reused_code_objects_never_show_stale_names() {
    let (mut tally, _) = Tally::new("freed_and_reused_code_objects_never_show_stale_names");
    let dir = tally.dir("code-reuse");
    for i in 0..long_runs() {
        for label in ["3.12", "3.9", "2.7", "3.14"] {
            let py = pythons::find(label);
            for mode in ["exec", "reload"] {
                let result = code_reuse(&py, mode, &dir, i);
                tally.add(&format!("{mode}/{label}"), &format!("#{i}"), result);
            }
        }
    }
    tally.finish();
}

// ---------------------------------------------------------------------------
// 6. Unusual names

/// Longest string pysampler reads (src/walk/objects.rs MAX_STRING_CHARS).
const MAX_STRING_CHARS: usize = 4096;

/// `shown` is `real`, or `real` cut to the documented limit (an ellipsis
/// marking the cut is allowed).
fn cut_ok(shown: &str, real: &str) -> bool {
    let real_len = real.chars().count();
    if real_len <= MAX_STRING_CHARS {
        return shown == real;
    }
    let kept = shown.trim_end_matches(['…', '.']);
    let kept_len = kept.chars().count();
    real.starts_with(kept)
        && kept_len >= MAX_STRING_CHARS - 100
        && shown.chars().count() <= MAX_STRING_CHARS + 3
}

fn short(s: &str) -> String {
    let n = s.chars().count();
    if n <= 60 {
        s.to_string()
    } else {
        format!("{}…({n} chars)", s.chars().take(40).collect::<String>())
    }
}

fn check_names(doc: &Value, expect: &serde_json::Map<String, Value>) -> Result<(), String> {
    for (thread, want) in expect {
        let t = doc["threads"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["name"] == thread.as_str()))
            .ok_or_else(|| format!("no thread {thread:?}"))?;
        let f = &t["frames"][0];
        let (function, file, line) = (
            f["function"].as_str().unwrap_or(""),
            f["filename"].as_str().unwrap_or(""),
            f["line"].as_u64().unwrap_or(0),
        );
        let (wf, wfile, wline) = (
            want["function"].as_str().unwrap(),
            want["filename"].as_str().unwrap(),
            want["line"].as_u64().unwrap(),
        );
        if !cut_ok(function, wf) {
            return Err(format!(
                "{thread}: function {} instead of {}",
                short(function),
                short(wf)
            ));
        }
        if !cut_ok(file, wfile) {
            return Err(format!(
                "{thread}: file {} instead of {}",
                short(file),
                short(wfile)
            ));
        }
        if line != wline {
            return Err(format!("{thread}: line {line} instead of {wline}"));
        }
    }
    Ok(())
}

fn unusual_names(label: &str) {
    let (mut tally, _) = Tally::new("unusual_names");
    let py = pythons::find(label);
    let target = Target::start(&py, "faults_names.py", &[]);
    let pid = target.pid();
    let expect_line = target_line(&target, "EXPECT ", Duration::from_secs(30)).unwrap();
    let expect: Value = serde_json::from_str(&expect_line["EXPECT ".len()..]).unwrap();
    let expect = expect.as_object().unwrap().clone();
    let case = format!("dump/{label}");
    let dump = || -> Result<Value, String> {
        let out = run_bounded(&dump_args(pid), Duration::from_secs(30));
        no_panic(&out.stderr, out.status)?;
        if !out.status.is_some_and(|s| s.success()) {
            return Err(format!("dump failed: {}", out.stderr));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("invalid JSON: {e}"))
    };
    // Each thread may still be between its handshake and its sleep.
    let mut settled = Err(String::new());
    for _ in 0..50 {
        settled = dump().and_then(|d| check_names(&d, &expect));
        if settled.is_ok() {
            break;
        }
    }
    tally.add(&case, "settle", settled.map(|_| String::new()));
    for i in 0..iterations() {
        let r = dump().and_then(|d| check_names(&d, &expect));
        tally.add(&case, &format!("#{i}"), r.map(|_| String::new()));
    }
    // The text form and a recording take them too.
    let pid_s = pid.to_string();
    let out = run_bounded(&["dump", "--pid", &pid_s], Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let result = if !out.status.is_some_and(|s| s.success()) {
        Err(format!("text dump failed: {}", out.stderr))
    } else {
        expect
            .iter()
            .find(|(_, w)| {
                let f = w["function"].as_str().unwrap();
                let head: String = f.chars().take(200).collect();
                !text.contains(&head)
            })
            .map_or(Ok(String::new()), |(t, _)| {
                Err(format!("text dump lacks {t}'s function"))
            })
    };
    tally.add(&format!("text/{label}"), "", result);
    let dir = tally.dir(&format!("names-{label}"));
    let path = dir.join("p.txt");
    let out = run_bounded(
        &record_args(pid, &path, &["--idle", "-r", "200", "-d", "1"]),
        Duration::from_secs(30),
    );
    let result = (|| {
        no_panic(&out.stderr, out.status)?;
        if !out.status.is_some_and(|s| s.success()) {
            return Err(format!("record failed: {}", out.stderr));
        }
        let (samples, _, errors) = summary(&out.stderr).ok_or("no summary line")?;
        if errors > 0 || samples == 0 {
            return Err(format!(
                "{samples} samples, {errors} errors: {}",
                out.stderr
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        for (t, w) in &expect {
            let head: String = w["function"].as_str().unwrap().chars().take(200).collect();
            if !text.contains(&head) {
                return Err(format!("the profile lacks {t}'s function"));
            }
        }
        Ok(String::new())
    })();
    tally.add(&format!("record/{label}"), "", result);
    drop(target);
    tally.finish();
}

#[test]
fn unusual_names_on_python_3_12() {
    unusual_names("3.12");
}

#[test]
fn unusual_names_on_python_2_7() {
    unusual_names("2.7");
}

#[test]
fn unusual_names_on_python_3_9() {
    unusual_names("3.9");
}

#[test]
fn unusual_names_on_python_3_14_in_sid_root() {
    unusual_names("3.14");
}

// ---------------------------------------------------------------------------
// 7. Interpreter start-up and shut-down

/// Starts `script` without waiting for any handshake (what a user attaching
/// to a process that just started gets).
fn spawn_python(py: &Python, script: &str, args: &[&str]) -> Child {
    let argv = python_command(py, script, args);
    Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(crate::target::fixtures_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python")
}

fn tally_message(messages: &mut BTreeMap<String, usize>, pid: i32, m: &str) {
    *messages
        .entry(m.replace(&pid.to_string(), "PID"))
        .or_default() += 1;
}

/// Dumps from the moment the process is spawned until Python runs the
/// fixture's code.
fn dump_during_startup(
    py: &Python,
    rng: &mut Rng,
    messages: &mut BTreeMap<String, usize>,
) -> Result<String, String> {
    let mut child = spawn_python(py, "faults_startup.py", &["2"]);
    let pid = child.id() as i32;
    let delay = rng.millis(40);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut result = Err(format!("never saw started_spin within 20 s {ctx}"));
    let mut dumps = 0;
    while Instant::now() < deadline {
        let out = run_bounded(&dump_args(pid), Duration::from_secs(10));
        dumps += 1;
        match judge_dump(&out, py, pid) {
            Err(e) => {
                result = Err(format!("dump #{dumps}: {e} {ctx}"));
                break;
            }
            Ok(DumpResult::Message(m)) => tally_message(messages, pid, &m),
            Ok(DumpResult::Stacks(doc)) => {
                let threads = thread_functions(&doc);
                if threads
                    .iter()
                    .any(|t| t.first().is_some_and(|f| f == "started_spin"))
                {
                    tally_message(messages, pid, "(stacks in started_spin)");
                    result = Ok(String::new());
                    break;
                }
                tally_message(messages, pid, "(stacks still starting up)");
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `record --pid` attached the moment the process is spawned.
fn record_during_startup(
    py: &Python,
    rng: &mut Rng,
    dir: &Path,
    i: usize,
    messages: &mut BTreeMap<String, usize>,
) -> Result<String, String> {
    let mut child = spawn_python(py, "faults_startup.py", &["1.5"]);
    let pid = child.id() as i32;
    let delay = rng.millis(40);
    std::thread::sleep(delay);
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let path = dir.join(format!("startup-{}-{i}.txt", py.label));
    let out = run_bounded(
        &record_args(pid, &path, &["-r", "1000", "-d", "1"]),
        Duration::from_secs(20),
    );
    let _ = child.kill();
    let _ = child.wait();
    let Some(status) = out.status else {
        return Err(format!("record --pid -d 1 still running after 20 s {ctx}"));
    };
    no_panic(&out.stderr, Some(status))?;
    if status.success() {
        read_raw(py, &path).map_err(|e| format!("{e} {ctx}"))?;
        if let Some(last) = out.stderr.lines().find(|l| l.contains("last error: ")) {
            tally_message(messages, pid, &format!("record ok, {last}"));
        } else {
            tally_message(messages, pid, "record ok");
        }
        return Ok(String::new());
    }
    let message = out
        .stderr
        .lines()
        .find(|l| l.starts_with("pysampler: "))
        .unwrap_or("")
        .to_string();
    if !CLEAR_MESSAGES.iter().any(|m| message.contains(m)) {
        return Err(format!(
            "record failed without a clear message {ctx}: {}",
            out.stderr
        ));
    }
    tally_message(messages, pid, &format!("record failed: {message}"));
    Ok(String::new())
}

#[test]
fn attaching_while_the_interpreter_starts() {
    let (mut tally, mut rng) = Tally::new("attaching_while_the_interpreter_starts");
    let dir = tally.dir("startup");
    let mut messages = BTreeMap::new();
    for i in 0..iterations() {
        let py = python_for(i);
        let r = dump_during_startup(&py, &mut rng, &mut messages);
        tally.add(&format!("dump/{}", py.label), &format!("#{i}"), r);
        let r = record_during_startup(&py, &mut rng, &dir, i, &mut messages);
        tally.add(&format!("record/{}", py.label), &format!("#{i}"), r);
    }
    for (m, n) in &messages {
        tally.note(format!("{n}× {m}"));
    }
    tally.finish();
}

/// Dumps in a loop from just before the interpreter starts finalising until
/// the process is gone.
fn dump_during_shutdown(
    py: &Python,
    rng: &mut Rng,
    seen: &mut BTreeMap<String, usize>,
) -> Result<String, String> {
    let mut target = Target::start(py, "faults_shutdown.py", &[]);
    let pid = target.pid();
    let signalled = Arc::new(AtomicBool::new(false));
    let results: Arc<Mutex<Vec<Finished>>> = Arc::default();
    let dumper = {
        let (signalled, results) = (signalled.clone(), results.clone());
        std::thread::spawn(move || {
            let mut after_gone = 0;
            while after_gone < 2 && results.lock().unwrap().len() < 400 {
                let gone = signalled.load(Ordering::SeqCst) && !alive(pid);
                let out = run_bounded(&dump_args(pid), Duration::from_secs(10));
                results.lock().unwrap().push(out);
                if gone {
                    after_gone += 1;
                }
            }
        })
    };
    let delay = rng.millis(100);
    std::thread::sleep(delay);
    signal(pid, libc::SIGUSR1);
    signalled.store(true, Ordering::SeqCst);
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let exit = wait_child(&mut target.child, Duration::from_secs(20));
    dumper.join().unwrap();
    match exit {
        Some(s) if s.success() => {}
        other => return Err(format!("the target ended with {other:?} {ctx}")),
    }
    for (k, out) in results.lock().unwrap().iter().enumerate() {
        match judge_dump(out, py, pid).map_err(|e| format!("dump #{k}: {e} {ctx}"))? {
            DumpResult::Stacks(doc) => {
                for t in thread_functions(&doc) {
                    for f in ["atexit_work", "__del__", "Finalizer.__del__", "daemon_spin"] {
                        if t.iter().any(|n| n == f) {
                            *seen.entry(f.to_string()).or_default() += 1;
                        }
                    }
                }
                *seen.entry("(stacks)".into()).or_default() += 1;
            }
            DumpResult::Message(m) => {
                *seen.entry(m.replace(&pid.to_string(), "PID")).or_default() += 1
            }
        }
    }
    Ok(String::new())
}

/// `record --pid` attached before the interpreter starts finalising.
fn record_during_shutdown(
    py: &Python,
    rng: &mut Rng,
    dir: &Path,
    i: usize,
) -> Result<String, String> {
    let mut target = Target::start(py, "faults_shutdown.py", &[]);
    let pid = target.pid();
    let path = dir.join(format!("shutdown-{}-{i}.txt", py.label));
    let mut rec = spawn_pysampler(&record_args(pid, &path, &["-r", "2000"]));
    rec.wait_line("pysampler: recording", Duration::from_secs(30))?;
    wait_until_traced(pid, &rec)?;
    let delay = rng.millis(100);
    std::thread::sleep(delay);
    signal(pid, libc::SIGUSR1);
    let ctx = format!("(delay {delay:?}, pid {pid})");
    let exit = wait_child(&mut target.child, Duration::from_secs(20));
    let ended = Instant::now();
    match exit {
        Some(s) if s.success() => {}
        other => return Err(format!("the target ended with {other:?} {ctx}")),
    }
    let Some((status, at)) = rec.wait_exit(Duration::from_secs(15)) else {
        return Err(format!(
            "record still running 15 s after the target exited {ctx}"
        ));
    };
    rec.drain();
    let stderr = rec.stderr_text();
    no_panic(&stderr, Some(status))?;
    if !status.success() {
        return Err(format!("record exited with {status} {ctx}: {stderr}"));
    }
    if at.saturating_duration_since(ended) > EXIT_LIMIT {
        return Err(format!(
            "record ended {:?} after the target {ctx}",
            at.saturating_duration_since(ended)
        ));
    }
    let stacks = read_raw(py, &path).map_err(|e| format!("{e} {ctx}"))?;
    if samples_with(&stacks, "atexit_work") == 0 {
        return Ok("no sample of atexit_work".into());
    }
    Ok(String::new())
}

#[test]
fn attaching_while_the_interpreter_shuts_down() {
    let (mut tally, mut rng) = Tally::new("attaching_while_the_interpreter_shuts_down");
    let dir = tally.dir("shutdown");
    let mut seen = BTreeMap::new();
    for i in 0..iterations() {
        let py = python_for(i);
        let r = dump_during_shutdown(&py, &mut rng, &mut seen);
        tally.add(&format!("dump/{}", py.label), &format!("#{i}"), r);
        let r = record_during_shutdown(&py, &mut rng, &dir, i);
        tally.add(&format!("record/{}", py.label), &format!("#{i}"), r);
    }
    for (m, n) in &seen {
        tally.note(format!("{n}× {m}"));
    }
    // The loop did reach the shut-down: some dump showed its work.
    tally.add(
        "dump/reached-shutdown",
        "",
        if seen.contains_key("atexit_work") {
            Ok(String::new())
        } else {
            Err(format!("no dump caught atexit_work: {seen:?}"))
        },
    );
    tally.finish();
}
