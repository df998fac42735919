//! `pysampler dump --core`: cores written by gdb's `gcore` of the dump
//! fixture show what a live `dump` showed just before; a real crash (SIGSEGV
//! in C called through ctypes) names the signal, the fault address and the
//! crashing thread; bad cores give clear errors.

use crate::pythons::{self, Python};
use crate::target::{dump_when, marker_line, pysampler, python_command, Target};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a dump says of each thread: (id, name, GIL, frames with locals).
fn threads(dump: &Value) -> Vec<Value> {
    let mut threads: Vec<Value> = dump["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .map(|t| {
            serde_json::json!({
                "thread_id": t["thread_id"],
                "name": t["name"],
                "owns_gil": t["owns_gil"],
                "frames": t["frames"].as_array().unwrap().iter().map(|f| {
                    let mut f = f.clone();
                    // The spinner counts on between the two reads.
                    if f["function"] == "spin" {
                        f["locals"] = Value::Null;
                    }
                    f
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    threads.sort_by_key(|t| t["thread_id"].as_i64());
    threads
}

fn innermost(dump: &Value, name: &str) -> Option<String> {
    let t = dump["threads"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)?;
    Some(t["frames"][0]["function"].as_str()?.to_string())
}

/// Runs `gcore` on `pid`, the core written into the scratch folder.
fn gcore(pid: i32, label: &str) -> PathBuf {
    let prefix = pythons::scratch_dir().join(format!("gcore-{label}"));
    let out = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .output()
        .expect("run gcore (apt install gdb; .ci/run does)");
    let core = PathBuf::from(format!("{}.{pid}", prefix.display()));
    assert!(
        out.status.success() && core.exists(),
        "gcore failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    core
}

fn dump_core(core: &Path, py: &Python, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "dump".to_string(),
        "--core".into(),
        core.display().to_string(),
    ];
    if let Some(root) = &py.root {
        args.extend(["--root".into(), root.display().to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    pysampler(&args)
}

/// A live dump of the dump fixture, then a core of it by gcore: the core's
/// dump shows the same threads, names, frames, lines and locals.
pub fn gcore_agrees(label: &str) {
    let py = pythons::find(label);
    let target = Target::start(&py, "dump_target.py", &[]);
    let pid = target.pid();
    let live = dump_when(pid, &["--locals"], |d| {
        innermost(d, "MainThread").as_deref() == Some("spin")
            // The GIL is handed about while the other threads go to sleep.
            && d["threads"].as_array().is_some_and(|t| {
                t.iter().any(|t| t["name"] == "MainThread" && t["owns_gil"] == true)
            })
            && innermost(d, "deep-sleeper").as_deref() == Some("idle_forever")
    });
    let core = gcore(pid, label);
    let out = dump_core(&core, &py, &["--json", "--locals"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{label}: dump --core failed: {stderr}"
    );
    let dumped: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let (core_threads, live_threads) = (threads(&dumped), threads(&live));
    for (c, l) in core_threads.iter().zip(&live_threads) {
        assert_eq!(c.to_string(), l.to_string(), "{label}: core vs live");
    }
    assert_eq!(core_threads.len(), live_threads.len(), "{label}: threads");
    for key in ["pid", "python_version", "command_line"] {
        assert_eq!(dumped[key], live[key], "{label}: {key}");
    }
    assert_eq!(
        dumped["core"]["signal"],
        Value::Null,
        "{label}: gcore is no signal"
    );
    assert!(dumped["threads"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["active"].is_null()));

    // The text form: the live one's, thread states aside.
    let text = String::from_utf8(dump_core(&core, &py, &[]).stdout).unwrap();
    assert!(
        text.contains(&format!("Thread {pid} (gil): \"MainThread\"\n")),
        "{text}"
    );
    assert!(
        text.contains("(state unknown): \"deep-sleeper\"\n"),
        "{text}"
    );
    let spin = format!(
        "    spin (dump_target.py:{})\n",
        marker_line("dump_target.py", "LINE_SPIN")
    );
    assert!(
        text.contains(&spin),
        "{label}: short file names as live:\n{text}"
    );
    let _ = std::fs::remove_file(&core);
}

/// The crash fixture run with core dumps enabled, in a fresh folder (in
/// the root for interpreters in one); the core the kernel wrote there, the
/// crashed pid and the script's path as the process saw it.
fn crash(py: &Python) -> (PathBuf, i32, String) {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let pattern = pattern.trim();
    assert!(
        !pattern.starts_with('|') && !pattern.contains('/'),
        "this test needs cores written in the working folder; /proc/sys/kernel/core_pattern is {pattern:?} (set it to `core` to run it)"
    );
    let argv = python_command(py, "core_crash.py", &[]);
    let (exe, script) = (&argv[argv.len() - 2], &argv[argv.len() - 1]);
    let inside = format!("/tmp/pysampler-crash-{}-{}", py.label, std::process::id());
    let dir = match &py.root {
        Some(root) => root.join(inside.trim_start_matches('/')),
        None => PathBuf::from(&inside),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let line = format!("cd '{inside}' && ulimit -c unlimited && exec '{exe}' '{script}'");
    let mut command = match &py.root {
        Some(root) => {
            let mut c = Command::new("chroot");
            c.arg(root).args(["/bin/sh", "-c", &line]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.args(["-c", &line]);
            c
        }
    };
    let mut child = command.spawn().unwrap();
    let pid = child.id() as i32;
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(11),
        "the fixture dies of SIGSEGV: {status:?}"
    );
    assert!(
        status.core_dumped(),
        "the kernel wrote no core ({status:?})"
    );
    let core = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("core"))
        .expect("a core file in the working folder");
    (core, pid, script.clone())
}

/// A real crash: the signal, the fault address (0), the crashing thread
/// marked, and its Python stack the one that called into C.
pub fn kernel_core(label: &str) {
    let py = pythons::find(label);
    let (core, pid, script) = crash(&py);
    let out = dump_core(&core, &py, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dump["pid"], pid);
    assert_eq!(dump["core"]["signal_name"], "SIGSEGV");
    assert_eq!(dump["core"]["fault_address"], 0);
    assert_eq!(dump["core"]["signalled_thread"], pid);
    assert_eq!(
        dump["command_line"].as_str().unwrap(),
        format!("{} {script}", py.exe.display()),
        "the whole command line, longer than the core's 80-byte copy"
    );
    let line = |m| marker_line("core_crash.py", m);
    let frames = |name: &str| -> Vec<(String, u64)> {
        let t = dump["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name);
        let t = t.unwrap_or_else(|| panic!("no thread {name}: {dump:#}"));
        t["frames"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["filename"] == script.as_str())
            .map(|f| {
                (
                    f["function"].as_str().unwrap().into(),
                    f["line"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let main = dump["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "MainThread")
        .unwrap();
    assert_eq!(main["received_signal"], true);
    assert_eq!(main["owns_gil"], true, "it crashed holding the GIL");
    assert_eq!(
        frames("MainThread"),
        vec![
            ("read_null".into(), line("LINE_READ_NULL")),
            ("handle_request".into(), line("LINE_HANDLE")),
            ("<module>".into(), line("LINE_MODULE")),
        ]
    );
    assert_eq!(frames("dozer"), vec![("doze".into(), line("LINE_DOZE"))]);

    let text = String::from_utf8(dump_core(&core, &py, &[]).stdout).unwrap();
    assert!(
        text.contains(&format!(
            "Signal: SIGSEGV at address 0x0, received by thread {pid}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "Thread {pid} (gil, received SIGSEGV): \"MainThread\"\n"
        )),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(core.parent().unwrap());
}
