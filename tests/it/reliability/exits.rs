//! The target exits (normally, by SIGKILL, or by `exec`) at a random moment
//! while `record`, `top` or `dump` watches it.

use super::harness::*;
use super::judge::*;
use super::procfs::*;
use super::spawn::*;
use crate::pythons::Python;
use crate::target::Target;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
            if !poll(Duration::from_secs(10), || !alive(pid)) {
                return Err(format!("target {pid} still alive 10 s after SIGKILL"));
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
            if !poll(Duration::from_secs(10), || {
                exe_name(pid).as_deref() == Some("sleep")
            }) {
                return Err(format!(
                    "target {pid} did not exec /bin/sleep within 10 s of SIGUSR2 (exe {:?}, state {:?}, held: {:?})",
                    exe_name(pid),
                    stat_state(pid),
                    stopped_or_traced(pid)
                ));
            }
            Ok(Instant::now())
        }
    }
}

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
    let Some((status, exited_at)) = rec.wait_exit(EXIT_LIMIT * 3) else {
        return Err(format!(
            "record still running {:?} after the target's {} {ctx}; stderr: {}",
            EXIT_LIMIT * 3,
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
    measured(
        &format!("record ended after the target's {} (pid {pid})", how.name()),
        took,
        EXIT_LIMIT,
    );
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
    let Some((status, exited_at)) = top.wait_exit(EXIT_LIMIT * 3) else {
        return Err(format!(
            "top still running {:?} after the target's {} {ctx}; stderr: {}",
            EXIT_LIMIT * 3,
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
    measured(
        &format!("top ended after the target's {} (pid {pid})", how.name()),
        took,
        EXIT_LIMIT,
    );
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
