//! Attaching while the interpreter shuts down: atexit handlers, `__del__`
//! at module teardown, daemon threads.

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

/// Whether a dump's output shows `function` on some thread.
fn dump_shows(out: &Finished, function: &str) -> bool {
    serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok_and(|doc| {
        thread_functions(&doc)
            .iter()
            .any(|t| t.iter().any(|f| f == function))
    })
}

/// Dumps in a loop from just before the interpreter starts finalising until
/// the process is gone. The fixture's atexit handler holds the shut-down
/// until some dump has shown it, so every iteration sees that phase; the
/// phases after it come at their own pace.
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
    let held = target_line(&target, "ATEXIT", Duration::from_secs(30)).and_then(|_| {
        let mut checked = 0;
        let shown = poll(Duration::from_secs(30), || {
            let results = results.lock().unwrap();
            let found = results[checked..]
                .iter()
                .any(|out| dump_shows(out, "atexit_work"));
            checked = results.len();
            found
        });
        match shown {
            true => Ok(()),
            false => Err(format!(
                "no dump showed atexit_work in 30 s while it ran {ctx}"
            )),
        }
    });
    signal(pid, libc::SIGUSR2); // the shut-down goes on
    let exit = wait_child(&mut target.child, Duration::from_secs(20));
    dumper.join().unwrap();
    held?;
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

/// `record --pid` attached before the interpreter starts finalising. The
/// fixture's atexit handler runs until the test has seen pysampler pause
/// the process since it began: the recording must hold samples of it.
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
    let held = target_line(&target, "ATEXIT", Duration::from_secs(30))
        .and_then(|_| wait_until_traced(pid, &rec))
        .map_err(|e| format!("{e} {ctx}"));
    signal(pid, libc::SIGUSR2); // the shut-down goes on
    let exit = wait_child(&mut target.child, Duration::from_secs(20));
    held?;
    let ended = Instant::now();
    match exit {
        Some(s) if s.success() => {}
        other => return Err(format!("the target ended with {other:?} {ctx}")),
    }
    let Some((status, at)) = rec.wait_exit(EXIT_LIMIT * 3) else {
        return Err(format!(
            "record still running {:?} after the target exited {ctx}",
            EXIT_LIMIT * 3
        ));
    };
    rec.drain();
    let stderr = rec.stderr_text();
    no_panic(&stderr, Some(status))?;
    if !status.success() {
        return Err(format!("record exited with {status} {ctx}: {stderr}"));
    }
    measured(
        &format!("record ended after the target's shut-down (pid {pid})"),
        at.saturating_duration_since(ended),
        EXIT_LIMIT,
    );
    if at.saturating_duration_since(ended) > EXIT_LIMIT {
        return Err(format!(
            "record ended {:?} after the target {ctx}",
            at.saturating_duration_since(ended)
        ));
    }
    let stacks = read_raw(py, &path).map_err(|e| format!("{e} {ctx}"))?;
    if samples_with(&stacks, "atexit_work") == 0 {
        return Err(format!(
            "no sample of atexit_work, which ran until pysampler had paused it ({} samples in all) {ctx}; stderr: {stderr}",
            total(&stacks)
        ));
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
