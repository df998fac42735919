//! Bad input: one clear line on stderr, a non-zero exit, never a panic.

use crate::pythons;
use crate::target::{pysampler, Target, PYSAMPLER};
use std::process::{Command, Stdio};

/// Runs pysampler, expects failure, returns stderr.
fn fails(args: &[&str]) -> String {
    let out = pysampler(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "{args:?} should fail; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    stderr
}

#[test]
fn no_such_pid() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id().to_string();
    child.wait().unwrap(); // reaped: the pid names nothing now
    let err = fails(&["dump", "--pid", &pid]);
    assert_eq!(err.trim(), format!("pysampler: no process with pid {pid}"));
}

#[test]
fn not_a_python_process() {
    let mut sleeper = Command::new("sleep").arg("100").spawn().unwrap();
    let pid = sleeper.id().to_string();
    // Until its exec, the child is a copy of this test program. The exec
    // changes the executable first and the argument area last; pysampler
    // tells a process that changed under it by both, so wait until its
    // command line (read from the new argument area) is sleep's.
    let exe = format!("/proc/{pid}/exe");
    let cmdline = format!("/proc/{pid}/cmdline");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(std::fs::read_link(&exe).is_ok_and(|p| p.ends_with("sleep"))
        && std::fs::read(&cmdline).is_ok_and(|c| c == b"sleep\x00100\x00"))
    {
        assert!(std::time::Instant::now() < deadline, "sleep never ran");
        std::thread::yield_now();
    }
    let err = fails(&["dump", "--pid", &pid]);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert!(
        err.contains(&format!(
            "process {pid} (/usr/bin/sleep) is not a Python program"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn own_pid() {
    // `exec` makes pysampler run with the shell's pid, which it is given.
    let out = Command::new("sh")
        .args(["-c", &format!("exec {PYSAMPLER} dump --pid $$")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is pysampler itself"), "{err}");
}

#[test]
fn zombie() {
    let child = Command::new("true").stdout(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    // Not reaped: wait until the kernel shows it as a zombie.
    for _ in 0..1000 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        if stat.contains(") Z ") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let err = fails(&["dump", "--pid", &pid.to_string()]);
    assert!(err.contains("is a zombie"), "{err}");
    drop(child);
}

#[test]
fn bad_pid_syntax() {
    for bad in ["abc", "0", "-3", "0xzz", ""] {
        let err = fails(&["dump", &format!("--pid={bad}")]);
        assert!(
            err.contains("is not a process id") || err.contains("invalid value"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn another_users_process_without_privileges() {
    // An unprivileged user (nobody) may not read root's python.
    let py = pythons::find("3.12");
    let target = Target::start(&py, "dump_target.py", &[]);
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(PYSAMPLER)
        .args(["dump", "--pid", &target.pid().to_string()])
        .output()
        .expect("setpriv (util-linux) is installed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("permission denied"), "{err}");
    assert!(
        err.contains("another user") && err.contains("sudo"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unsupported_version_names_it() {
    use pysampler_core::interpreter::{tables, Version};
    let err = tables::layout_for(&Version::new(3, 16, Some(0))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Python 3.16.0 is not supported by pysampler (supported: 2.7 and 3.6 to 3.15, and the free-threaded 3.13t)"
    );
}
