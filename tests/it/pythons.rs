//! The interpreters the tests run: pyenv's 2.7 and 3.6–3.13, Debian's
//! python3.11, python3.14 and 3.15 inside the Debian sid root (a container in
//! all but name), a virtual environment and a symlinked python. A missing one
//! fails the test that needs it: nothing is skipped silently.
//! `PYSAMPLER_EXTRA_PYTHONS` (colon-separated paths) adds more to `all()`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How to start one interpreter.
#[derive(Debug, Clone)]
pub struct Python {
    pub label: String,
    pub major: u32,
    pub minor: u32,
    /// The interpreter's path as the process sees it.
    pub exe: PathBuf,
    /// Set for interpreters that run inside a chroot.
    pub root: Option<PathBuf>,
}

pub fn pyenv_root() -> PathBuf {
    std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".pyenv"))
}

pub fn sid_root() -> PathBuf {
    std::env::var_os("PYSAMPLER_SID_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/pysampler/sid-root"))
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
}

/// The pyenv interpreter for "X.Y".
fn pyenv(minor: &str) -> Result<Python, String> {
    let versions = pyenv_root().join("versions");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&versions)
        .map_err(|e| format!("no pyenv versions in {}: {e}", versions.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with(&format!("{minor}."))
                && name[minor.len() + 1..].chars().all(|c| c.is_ascii_digit())
        })
        .collect();
    found.sort();
    let dir = found
        .pop()
        .ok_or_else(|| format!("pyenv has no Python {minor} in {}", versions.display()))?;
    let (major, minor_n) = split(minor);
    Ok(Python {
        label: minor.to_string(),
        major,
        minor: minor_n,
        exe: dir.join("bin/python"),
        root: None,
    })
}

fn split(minor: &str) -> (u32, u32) {
    let (a, b) = minor.split_once('.').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// Finds an interpreter by label: "2.7" … "3.13", "debian-3.11", "3.14",
/// "3.15", "venv-3.12", "symlink-3.9".
pub fn find(label: &str) -> Python {
    let found = match label {
        "debian-3.11" => existing("/usr/bin/python3.11").map(|exe| Python {
            label: label.into(),
            major: 3,
            minor: 11,
            exe,
            root: None,
        }),
        "3.14" | "3.15" => {
            let root = sid_root();
            let exe = PathBuf::from(format!("/usr/bin/python{label}"));
            if root.join(exe.strip_prefix("/").unwrap()).exists() {
                let (major, minor) = split(label);
                Ok(Python {
                    label: label.into(),
                    major,
                    minor,
                    exe,
                    root: Some(root),
                })
            } else {
                Err(format!(
                    "{} has no python{label}; run `make sid-root`",
                    root.display()
                ))
            }
        }
        "venv-3.12" => venv_312(),
        "symlink-3.9" => symlink_39(),
        minor => pyenv(minor),
    };
    found.unwrap_or_else(|e| panic!("interpreter {label} is missing: {e}"))
}

fn existing(path: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(path);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!("{path} does not exist"))
    }
}

/// Scratch space for the test run, inside the build folder.
pub fn scratch_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("it");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn venv_312() -> Result<Python, String> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = VENV
        .get_or_init(|| {
            let base = pyenv("3.12")?;
            let dir = scratch_dir().join("venv-3.12");
            if !dir.join("bin/python").exists() {
                let status = Command::new(&base.exe)
                    .args(["-m", "venv", "--without-pip"])
                    .arg(&dir)
                    .status()
                    .map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err(format!("python -m venv failed: {status}"));
                }
            }
            Ok(dir)
        })
        .clone()?;
    Ok(Python {
        label: "venv-3.12".into(),
        major: 3,
        minor: 12,
        exe: dir.join("bin/python"),
        root: None,
    })
}

fn symlink_39() -> Result<Python, String> {
    let base = pyenv("3.9")?;
    let link = scratch_dir().join("my-python-link");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink(&base.exe, &link).map_err(|e| e.to_string())?;
    }
    Ok(Python {
        label: "symlink-3.9".into(),
        major: 3,
        minor: 9,
        exe: link,
        root: None,
    })
}

/// Every interpreter the issue names, plus `PYSAMPLER_EXTRA_PYTHONS`.
pub const ALL_LABELS: &[&str] = &[
    "2.7",
    "3.6",
    "3.7",
    "3.8",
    "3.9",
    "3.10",
    "3.11",
    "3.12",
    "3.13",
    "debian-3.11",
    "3.14",
    "3.15",
    "venv-3.12",
    "symlink-3.9",
];

pub fn extra_pythons() -> Vec<Python> {
    let Ok(list) = std::env::var("PYSAMPLER_EXTRA_PYTHONS") else {
        return vec![];
    };
    list.split(':')
        .filter(|p| !p.is_empty())
        .map(|path| {
            let out = Command::new(path)
                .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
                .output()
                .unwrap_or_else(|e| panic!("PYSAMPLER_EXTRA_PYTHONS: cannot run {path}: {e}"));
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let (major, minor) = split(&v);
            Python {
                label: format!("extra-{path}"),
                major,
                minor,
                exe: path.into(),
                root: None,
            }
        })
        .collect()
}

impl Python {
    pub fn qualnames(&self) -> bool {
        (self.major, self.minor) >= (3, 11)
    }
}
