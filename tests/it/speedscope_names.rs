//! Speedscope profile names from real recordings, as py-spy writes them:
//! `Thread TID "name"` for one process, `Process PID Thread TID "name"` for
//! several, with the OS thread ids `dump` reports (found differently per
//! version: 3.11+ record them, older ones through glibc's `struct pthread`).

use crate::pythons;
use crate::target::{dump_when, python_command, Target, PYSAMPLER};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

fn out_file(name: &str) -> std::path::PathBuf {
    let dir = pythons::scratch_dir().join("speedscope-names");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `pysampler record -f speedscope ARGS` and returns the profile names.
fn profile_names(args: &[&str], path: &Path) -> BTreeSet<String> {
    let _ = std::fs::remove_file(path);
    let out = Command::new(PYSAMPLER)
        .args(["record", "-f", "speedscope", "-o"])
        .arg(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pysampler record");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn check_one_process(label: &str) {
    let py = pythons::find(label);
    let target = Target::start(&py, "dump_target.py", &[]);
    // Every thread started and named (the sleeper down its frames).
    let dump = dump_when(target.pid(), &[], |d| {
        d["threads"].as_array().is_some_and(|ts| {
            ts.iter()
                .any(|t| t["name"] == "deep-sleeper" && t["active"] == false)
        })
    });
    let expected: BTreeSet<String> = dump["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let tid = t["thread_id"]
                .as_i64()
                .expect("dump knows each OS thread id");
            format!("Thread {tid} \"{}\"", t["name"].as_str().unwrap())
        })
        .collect();
    assert!(
        expected.contains(&format!("Thread {} \"MainThread\"", target.pid())),
        "{label}: {expected:?}"
    );
    let pid = target.pid().to_string();
    let names = profile_names(
        &["--pid", &pid, "--idle", "-d", "1"],
        &out_file(&format!("one-{label}.json")),
    );
    assert_eq!(names, expected, "{label}");
}

#[test]
fn one_process_on_python_2_7() {
    check_one_process("2.7");
}

#[test]
fn one_process_on_python_3_9() {
    check_one_process("3.9");
}

#[test]
fn one_process_on_python_3_12() {
    check_one_process("3.12");
}

#[test]
fn one_process_on_python_3_14_in_sid_root() {
    check_one_process("3.14");
}

/// A multiprocessing pool with --subprocesses: every name has its process,
/// and each of the three processes has its main thread, whose OS id is its
/// pid.
#[test]
fn several_processes_name_the_process() {
    let py = pythons::find("3.12");
    // --idle: the parent mostly waits for its workers.
    let mut args = vec!["-s".to_string(), "--idle".into(), "--".into()];
    args.extend(python_command(&py, "pool.py", &[]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let names = profile_names(&args, &out_file("pool.json"));
    let mut main_threads = BTreeSet::new();
    for name in &names {
        let rest = name
            .strip_prefix("Process ")
            .unwrap_or_else(|| panic!("{name:?} does not name its process: {names:?}"));
        let (pid, thread) = rest
            .split_once(" Thread ")
            .expect("a thread after the process");
        let (tid, thread_name) = thread.split_once(' ').unwrap_or((thread, ""));
        // A thread state caught before its thread ran has no OS id yet:
        // Python's ident shows instead, in hex.
        let tid_ok = tid.parse::<i32>().is_ok()
            || tid
                .strip_prefix("0x")
                .is_some_and(|h| u64::from_str_radix(h, 16).is_ok());
        assert!(pid.parse::<i32>().is_ok() && tid_ok, "{name:?}");
        if thread_name == "\"MainThread\"" && pid == tid {
            main_threads.insert(pid.to_string());
        }
    }
    assert_eq!(
        main_threads.len(),
        3,
        "the parent and both workers: {names:?}"
    );
}
