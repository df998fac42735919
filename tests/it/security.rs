//! Security (issue 6): a program launched under sudo runs as the invoking
//! user and the output file is theirs; output files follow the umask; and
//! pysampler never writes into the target (checked with strace: no
//! PTRACE_POKE*, PTRACE_SET*REGS or process_vm_writev, while ptrace and
//! process_vm_readv are seen, so the trace is known to cover them).

use crate::formats::parse_folded_line;
use crate::pythons;
use crate::target::{Target, PYSAMPLER};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Debian's python: readable by every user, unlike pyenv's under /root.
const SYSTEM_PYTHON: &str = "/usr/bin/python3.11";
const NOBODY: u32 = 65534;

/// A folder every user can read and enter, holding `script` as `name`.
fn shared_dir(test: &str, name: &str, script: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pysampler-sec-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join(name), script).unwrap();
    dir
}

const WHO_AM_I: &str = "\
import os, time

def report_identity():
    print('uid %d gid %d' % (os.getuid(), os.getgid()), flush=True)

def spin_for_a_while():
    end = time.time() + 1.0
    n = 0
    while time.time() < end:
        n += 1

report_identity()
spin_for_a_while()
";

#[test]
fn a_program_launched_under_sudo_runs_as_the_user_who_owns_the_output() {
    let dir = shared_dir("sudo", "whoami.py", WHO_AM_I);
    let out = dir.join("profile.txt");
    let result = Command::new(PYSAMPLER)
        .args(["record", "-f", "raw", "-r", "200", "-o"])
        .arg(&out)
        .arg("--")
        .arg(SYSTEM_PYTHON)
        .arg(dir.join("whoami.py"))
        .env("SUDO_UID", NOBODY.to_string())
        .env("SUDO_GID", NOBODY.to_string())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run pysampler");
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("uid {NOBODY} gid {NOBODY}")),
        "the program ran as another user: {stdout:?}; {stderr}"
    );
    let meta = std::fs::metadata(&out).expect("the profile was written");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (NOBODY, NOBODY),
        "owner of the profile"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let spins: u64 = text
        .lines()
        .map(parse_folded_line)
        .filter(|(frames, _)| frames.iter().any(|f| f.starts_with("spin_for_a_while (")))
        .map(|(_, count)| count)
        .sum();
    assert!(spins >= 20, "{spins} samples in spin_for_a_while: {text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn output_files_follow_the_umask() {
    let dir = shared_dir("umask", "whoami.py", WHO_AM_I);
    for (umask, mode) in [("077", 0o600), ("022", 0o644), ("002", 0o664)] {
        let out = dir.join(format!("profile-{umask}.svg"));
        let line = format!(
            "umask {umask} && exec '{PYSAMPLER}' record -r 100 -o '{}' -- {SYSTEM_PYTHON} '{}'",
            out.display(),
            dir.join("whoami.py").display()
        );
        let result = Command::new("sh")
            .args(["-c", &line])
            .stdin(Stdio::null())
            .output()
            .expect("run sh");
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        let meta = std::fs::metadata(&out).expect("the flame graph was written");
        assert_eq!(
            meta.permissions().mode() & 0o777,
            mode,
            "mode of a file written with umask {umask}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pysampler_never_writes_into_the_target() {
    let py = pythons::find("3.12");
    let target = Target::start(&py, "deep_busy.py", &["30"]);
    let pid = target.pid().to_string();
    let dir = pythons::scratch_dir().join("security");
    std::fs::create_dir_all(&dir).unwrap();
    let runs: [(&str, Vec<&str>); 3] = [
        (
            "record",
            vec!["record", "--pid", &pid, "-r", "500", "-d", "1", "-f", "raw"],
        ),
        (
            "record-idle",
            vec!["record", "--pid", &pid, "-r", "500", "-d", "1", "--idle"],
        ),
        ("dump", vec!["dump", "--pid", &pid, "--locals"]),
    ];
    for (name, mut args) in runs {
        let log = dir.join(format!("{name}.strace"));
        let out = dir.join(format!("{name}.out"));
        let out_text = out.display().to_string();
        if name != "dump" {
            args.extend(["-o", &out_text]);
        }
        let result = Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=ptrace,process_vm_readv,process_vm_writev",
            ])
            .arg("-o")
            .arg(&log)
            .arg(PYSAMPLER)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("strace is installed (.ci/run installs it)");
        assert!(
            result.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        let trace = std::fs::read_to_string(&log).unwrap();
        assert!(
            trace.contains("PTRACE_SEIZE") && trace.contains("process_vm_readv("),
            "{name}: the trace does not show the pausing and reading it should: {}",
            &trace[..trace.len().min(2000)]
        );
        for forbidden in [
            "PTRACE_POKE",
            "PTRACE_SETREGS",
            "PTRACE_SETFPREGS",
            "process_vm_writev(",
        ] {
            assert!(
                !trace.contains(forbidden),
                "{name}: pysampler called {forbidden} on the target"
            );
        }
    }
}
