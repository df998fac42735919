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
                    // The spinner counts on between the two reads, and
                    // moves along its line (3.11+ columns).
                    if f["function"] == "spin" {
                        f["locals"] = Value::Null;
                        f["column"] = Value::Null;
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
fn crash(py: &Python, tag: &str) -> (PathBuf, i32, String) {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let pattern = pattern.trim();
    assert!(
        !pattern.starts_with('|') && !pattern.contains('/'),
        "this test needs cores written in the working folder; /proc/sys/kernel/core_pattern is {pattern:?} (set it to `core` to run it)"
    );
    let argv = python_command(py, "core_crash.py", &[]);
    let (exe, script) = (&argv[argv.len() - 2], &argv[argv.len() - 1]);
    let inside = format!(
        "/tmp/pysampler-crash-{tag}-{}-{}",
        py.label,
        std::process::id()
    );
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
    let (core, pid, script) = crash(&py, "stacks");
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

/// pysampler's stderr and exit code on `args`, which must fail cleanly.
fn fails(args: &[&str]) -> String {
    let out = pysampler(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// Not a core, an executable, an empty file, a truncated core, a core of
/// another architecture, a core of a program that is not Python, binaries
/// that are not under --root: each a one-line reason, exit status 1.
#[test]
fn dump_core_bad_input() {
    let py = pythons::find("3.12");
    let (core, _, _) = crash(&py, "bad");
    let dir = core.parent().unwrap().to_path_buf();
    let bytes = std::fs::read(&core).unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        path_arg(&p)
    };
    let text = write("text", b"hello\n");
    assert!(fails(&["dump", "--core", &text]).contains("it is not an ELF file"));
    let empty = write("empty", b"");
    assert!(fails(&["dump", "--core", &empty]).contains("the file is empty"));
    let exe = path_arg(&py.exe);
    assert!(fails(&["dump", "--core", &exe]).contains("not a core dump"));
    let missing = path_arg(&dir.join("no-such-core"));
    assert!(fails(&["dump", "--core", &missing]).contains("No such file"));
    let zstd = write("core.zst", b"\x28\xb5\x2f\xfd rest");
    assert!(fails(&["dump", "--core", &zstd]).contains("zstd -d"));

    // Cut in half: the interpreter's memory is past the end.
    let half = write("half", &bytes[..bytes.len() / 2]);
    let stderr = fails(&["dump", "--core", &half]);
    assert!(stderr.contains("truncated"), "{stderr}");
    // Cut inside the headers.
    let head = write("head", &bytes[..200]);
    assert!(fails(&["dump", "--core", &head]).contains("is the core truncated?"));

    // e_machine = EM_AARCH64.
    let mut arm = bytes.clone();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes());
    let arm = write("arm", &arm);
    assert!(fails(&["dump", "--core", &arm]).contains("another architecture (AARCH64)"));

    let core_arg = path_arg(&core);
    let elsewhere = path_arg(&dir);
    let stderr = fails(&["dump", "--core", &core_arg, "--root", &elsewhere]);
    assert!(
        stderr.contains("is not there") && stderr.contains("--root"),
        "{stderr}"
    );

    // A program that is not Python: gcore of sleep.
    let mut sleep = Command::new("sleep").arg("300").spawn().unwrap();
    let sleep_core = gcore(sleep.id() as i32, "sleep");
    let _ = sleep.kill();
    let _ = sleep.wait();
    let stderr = fails(&["dump", "--core", &path_arg(&sleep_core)]);
    assert!(
        stderr.contains("(/usr/bin/sleep) was not a Python program"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&sleep_core);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The build id as `readelf -n` prints it.
fn readelf_build_id(file: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-n")
        .arg(file)
        .output()
        .expect("readelf (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build id in {}", file.display()))
        .to_string()
}

/// A binary replaced since the crash (here: another build of python under
/// --root, at the crashed executable's path) is named, with both build ids.
#[test]
fn dump_core_warns_of_a_changed_binary() {
    let py = pythons::find("3.12");
    let (core, _, _) = crash(&py, "build-id");
    let root = core.parent().unwrap().join("root");
    let other = pythons::find("debian-3.11").exe;
    // The path the kernel recorded: symlinks resolved.
    let exe = std::fs::canonicalize(&py.exe).unwrap();
    let moved = root.join(exe.strip_prefix("/").unwrap());
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::copy(&other, &moved).unwrap();
    let out = pysampler(&[
        "dump",
        "--core",
        &path_arg(&core),
        "--root",
        &path_arg(&root),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = format!(
        "warning: {} (build id {}) is not the file the process had mapped as {} (build id {})",
        moved.display(),
        readelf_build_id(&other),
        exe.display(),
        readelf_build_id(&exe)
    );
    assert!(
        stderr.contains(&warning),
        "expected {warning:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(core.parent().unwrap());
}

/// `--async` on a gcore of the asyncio fixture: the same tasks, chains and
/// edges as a live `dump --async` just before.
pub fn async_agrees(label: &str) {
    let py = pythons::find(label);
    let target = Target::start(&py, "async_tree.py", &[]);
    let pid = target.pid();
    // 3.11+ add a TaskGroup of two to the fixture (tests/it/asyncio.rs).
    let count = if py.minor >= 11 { 9 } else { 7 };
    let live = dump_when(pid, &["--async"], |d| {
        d["asyncio"]["loops"][0]["tasks"]
            .as_array()
            .is_some_and(|t| t.len() == count && t.iter().all(|t| t["state"] == "suspended"))
    });
    let core = gcore(pid, &format!("async-{label}"));
    let out = dump_core(&core, &py, &["--json", "--async"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dumped: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dumped["asyncio"], live["asyncio"], "{label}: tasks");
    let _ = std::fs::remove_file(&core);
}

/// The parser on a real core cut at many places and with bytes of its
/// headers and notes rewritten: errors or partial results, never a panic.
#[test]
fn dump_core_parser_survives_damage() {
    use pysampler_core::corefile::{build_id, CoreFile, SharedBytes};
    use pysampler_core::memory::MemorySource;
    use std::sync::Arc;
    let py = pythons::find("3.12");
    let (core, _, _) = crash(&py, "damage");
    let bytes = std::fs::read(&core).unwrap();
    let exercise = |data: Vec<u8>| {
        if let Ok(c) = CoreFile::parse(Arc::new(data) as SharedBytes) {
            let _ = (c.command_line(), c.exe(), c.signalled_thread());
            let mut buf = [0u8; 16];
            for f in c.mapped_files().iter().take(64) {
                let _ = build_id::in_core(&c.memory, f.base);
                let _ = c.memory.read(f.base, &mut buf);
            }
        }
    };
    let parsed = CoreFile::parse(Arc::new(bytes.clone()) as SharedBytes).unwrap();
    assert!(parsed.threads.len() == 2 && !parsed.files.is_empty());
    // The notes are in the first pages: cut there densely, then sparsely.
    let cuts = (0..8192.min(bytes.len()))
        .step_by(7)
        .chain((0..bytes.len()).step_by(bytes.len() / 64));
    for cut in cuts {
        exercise(bytes[..cut].to_vec());
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..300 {
        let mut b = bytes[..bytes.len().min(1 << 20)].to_vec();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % 8192.min(b.len());
            b[at] = (state >> 40) as u8;
        }
        exercise(b);
    }
    let _ = std::fs::remove_dir_all(core.parent().unwrap());
}

/// A core cut where the crashed thread's stack begins: the other thread is
/// still shown, the crashed one is reported, exit status 1.
#[test]
fn dump_core_truncated_keeps_the_threads_it_holds() {
    use goblin::elf::Elf;
    use pysampler_core::corefile::{CoreFile, SharedBytes};
    use std::sync::Arc;
    let py = pythons::find("3.12");
    let (core, pid, _) = crash(&py, "cut");
    let bytes = std::fs::read(&core).unwrap();
    let parsed = CoreFile::parse(Arc::new(bytes.clone()) as SharedBytes).unwrap();
    // user_regs_struct: rsp is the 20th register.
    let rsp = parsed.threads[0].registers[19];
    let elf = Elf::parse(&bytes).unwrap();
    let stack = elf
        .program_headers
        .iter()
        .find(|p| {
            p.p_type == goblin::elf::program_header::PT_LOAD
                && p.vm_range().contains(&(rsp as usize))
        })
        .expect("the segment of the crashed thread's stack");
    let cut = core.with_file_name("cut");
    std::fs::write(&cut, &bytes[..stack.p_offset as usize]).unwrap();
    let out = pysampler(&["dump", "--core", &path_arg(&cut), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is truncated") && stderr.contains("1 of the 2 threads"),
        "{stderr}"
    );
    let dump: Value = serde_json::from_slice(&out.stdout).unwrap();
    let threads = dump["threads"].as_array().unwrap();
    let dozer = threads.iter().find(|t| t["name"] == "dozer").unwrap();
    assert_eq!(dozer["frames"][0]["function"], "doze");
    assert!(dozer.get("error").is_none());
    let main = threads.iter().find(|t| t["thread_id"] == pid).unwrap();
    assert!(main["frames"].as_array().unwrap().is_empty());
    assert!(
        main["error"]
            .as_str()
            .unwrap()
            .contains("could not read the memory"),
        "{main}"
    );
    let _ = std::fs::remove_dir_all(core.parent().unwrap());
}
