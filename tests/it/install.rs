//! The way Python people install pysampler (issue 7): build the wheel with
//! scripts/build-wheel.sh (what `make wheel` runs), `pip install` it into a
//! fresh virtual environment, offline, and run the installed executable, not
//! the one in target/. Also: `--version`, `completions`, and the man pages
//! (`make man`) rendered with `man -l`.

use crate::pythons::{self, scratch_dir};
use crate::target::{fixtures_dir, Target};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The wheel, built once per test run (cargo only recompiles what changed).
fn wheel() -> &'static Path {
    static WHEEL: OnceLock<PathBuf> = OnceLock::new();
    WHEEL.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("scripts/build-wheel.sh"))
            .output()
            .expect("run scripts/build-wheel.sh");
        assert!(
            out.status.success(),
            "scripts/build-wheel.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = String::from_utf8(out.stdout).unwrap();
        let path = PathBuf::from(path.lines().last().expect("the script prints the wheel"));
        assert!(path.is_file(), "no wheel at {}", path.display());
        path
    })
}

/// `<venv>/bin/pysampler` in a virtual environment made for this run, with
/// the wheel installed by pip from the file alone (no index, no network).
fn installed() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let wheel = wheel();
        let venv = scratch_dir().join("pip-install-venv");
        if venv.exists() {
            std::fs::remove_dir_all(&venv).unwrap();
        }
        let py = pythons::find("3.12");
        run_ok(Command::new(&py.exe).args(["-m", "venv"]).arg(&venv));
        run_ok(
            Command::new(venv.join("bin/python"))
                .args(["-m", "pip", "install", "--no-index", "--no-deps"])
                .args(["--disable-pip-version-check", "--no-cache-dir"])
                .arg(wheel)
                .env("PIP_NO_INPUT", "1"),
        );
        let exe = venv.join("bin/pysampler");
        let meta = std::fs::symlink_metadata(&exe)
            .unwrap_or_else(|e| panic!("pip did not install {}: {e}", exe.display()));
        assert!(meta.is_file(), "{} is not a plain file", exe.display());
        exe
    })
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout_of(args: &[&str]) -> String {
    let out = run_ok(Command::new(installed()).args(args));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn wheel_holds_only_the_executable_and_metadata() {
    let wheel = wheel();
    let name = wheel.file_name().unwrap().to_string_lossy().to_string();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        name,
        format!("pysampler-{version}-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"),
        "the wheel's tags"
    );
    let py = pythons::find("3.12");
    let list = run_ok(
        Command::new(&py.exe)
            .args([
                "-c",
                "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
            ])
            .arg(wheel),
    );
    let mut files: Vec<String> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    files.sort();
    let info = format!("pysampler-{version}.dist-info");
    // A LICENSE file, once the repository has one, goes to dist-info/licenses/.
    files.retain(|f| !f.starts_with(&format!("{info}/licenses/")));
    assert_eq!(
        files,
        vec![
            format!("pysampler-{version}.data/scripts/pysampler"),
            format!("{info}/METADATA"),
            format!("{info}/RECORD"),
            format!("{info}/WHEEL"),
        ],
        "files in {name}"
    );
    let metadata = run_ok(
        Command::new(&py.exe)
            .args(["-c", "import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())"])
            .arg(wheel)
            .arg(format!("{info}/METADATA")),
    );
    let metadata = String::from_utf8(metadata.stdout).unwrap();
    for line in [
        "Name: pysampler".to_string(),
        format!("Version: {version}"),
        "License-Expression: MIT".to_string(),
        "Classifier: Programming Language :: Python :: 2.7".to_string(),
        "Classifier: Programming Language :: Python :: 3.15".to_string(),
        "Classifier: Topic :: Software Development :: Debuggers".to_string(),
        "Description-Content-Type: text/markdown".to_string(),
    ] {
        assert!(
            metadata.lines().any(|l| l.starts_with(&line)),
            "METADATA lacks {line:?}:\n{metadata}"
        );
    }
}

#[test]
fn installed_pysampler_dumps_a_live_process() {
    let exe = installed();
    let py = pythons::find("3.12");
    let target = Target::start(&py, "dump_target.py", &[]);
    let pid = target.pid().to_string();
    // READY is printed from inside spin(), so spin is on the stack from now on.
    let out = run_ok(Command::new(exe).args(["dump", "--pid", &pid]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("spin") && text.contains("dump_target.py"),
        "the installed pysampler's dump does not name spin:\n{text}"
    );
}

#[test]
fn installed_pysampler_records_a_short_script() {
    let exe = installed();
    let py = pythons::find("3.12");
    let profile = scratch_dir().join("pip-install-record.txt");
    let _ = std::fs::remove_file(&profile);
    let out = Command::new(exe)
        .args(["record", "-f", "raw", "-o"])
        .arg(&profile)
        .arg("--")
        .arg(&py.exe)
        .arg(fixtures_dir().join("short_script.py"))
        .output()
        .expect("run the installed pysampler");
    assert!(
        out.status.success(),
        "record failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let collapsed = std::fs::read_to_string(&profile)
        .unwrap_or_else(|e| panic!("record wrote no {}: {e}", profile.display()));
    let hits: u64 = collapsed
        .lines()
        .filter(|l| l.contains("crunch_numbers"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    // About a second at 100 samples per second.
    assert!(
        hits >= 20,
        "only {hits} samples in crunch_numbers; collapsed stacks:\n{collapsed}"
    );
}

#[test]
fn installed_pysampler_version_lists_the_supported_pythons() {
    let text = stdout_of(&["--version"]);
    assert!(
        text.contains(env!("CARGO_PKG_VERSION")),
        "--version: {text}"
    );
    for minor in ["2.7", "3.6", "3.9", "3.12", "3.15"] {
        assert!(
            text.contains(minor),
            "--version does not mention CPython {minor}: {text}"
        );
    }
}

#[test]
fn installed_pysampler_prints_shell_completions() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        assert!(
            script.contains("pysampler") && script.contains("record"),
            "{shell} completions:\n{script}"
        );
    }
    let bash = scratch_dir().join("pysampler.bash-completion");
    std::fs::write(&bash, stdout_of(&["completions", "bash"])).unwrap();
    run_ok(Command::new("bash").arg("-n").arg(&bash));
}

/// `make man`'s generator, then `man -l` on each page: every page renders,
/// without groff warnings, and shows its command's synopsis.
#[test]
fn man_pages_render() {
    let out_dir = repo().join("target/man");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_ok(
        Command::new(cargo)
            .args(["run", "--release", "--quiet", "--example", "gen_man", "--"])
            .arg(&out_dir)
            .current_dir(repo()),
    );
    for page in [
        "pysampler",
        "pysampler-record",
        "pysampler-top",
        "pysampler-dump",
        "pysampler-report",
        "pysampler-diff",
        "pysampler-completions",
    ] {
        let path = out_dir.join(format!("{page}.1"));
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .expect("run man (apt package man-db)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "man -l {} failed ({}):\n{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION"] {
            assert!(text.contains(section), "{page}.1 has no {section}:\n{text}");
        }
        assert!(
            text.contains(page),
            "{page}.1 does not name {page}:\n{text}"
        );
    }
    let record = std::fs::read_to_string(out_dir.join("pysampler-record.1")).unwrap();
    assert!(
        record.contains("pysampler record \\-o profile.svg"),
        "pysampler-record.1 lacks the examples:\n{record}"
    );
}
