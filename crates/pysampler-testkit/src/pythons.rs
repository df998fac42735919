//! The interpreters the tests run: pyenv's 2.7 and 3.6–3.13, Debian's
//! python3.11, python3.14 and 3.15 inside the Debian sid root (a container in
//! all but name), the free-threaded 3.13t that scripts/build-python313t.sh
//! builds, a virtual environment and a symlinked python. A missing one
//! fails whatever needs it: nothing is skipped silently.
//! `PYSAMPLER_EXTRA_PYTHONS` (colon-separated paths) adds more to
//! [`extra_pythons`].
//!
//! Interpreters are found by minor version, never by patch: pyenv's newest
//! 3.12.x is "3.12" whichever it is, and what a test expects of the version
//! comes from [`Python::version`], which asks the interpreter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

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
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".pyenv"))
}

pub fn sid_root() -> PathBuf {
    std::env::var_os("PYSAMPLER_SID_ROOT")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/pysampler/sid-root"))
}

/// Where scripts/build-python313t.sh installs the free-threaded 3.13.
pub fn py313t_prefix() -> PathBuf {
    std::env::var_os("PYSAMPLER_PY313T")
        .filter(|r| !r.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/pysampler/py313t"))
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
}

/// The pyenv interpreter for "X.Y": the newest X.Y.Z installed.
fn pyenv(minor: &str) -> Result<Python, String> {
    let versions = pyenv_root().join("versions");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(&versions)
        .map_err(|e| format!("no pyenv versions in {}: {e}", versions.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().to_string();
            let patch = name.strip_prefix(&format!("{minor}."))?.parse().ok()?;
            p.join("bin/python").exists().then_some((patch, p))
        })
        .collect();
    // By number: 3.12.10 is newer than 3.12.9.
    found.sort();
    let (_, dir) = found
        .pop()
        .ok_or_else(|| format!("pyenv has no Python {minor} in {}", versions.display()))?;
    let (major, minor_n) = split(minor)?;
    Ok(Python {
        label: minor.to_string(),
        major,
        minor: minor_n,
        exe: dir.join("bin/python"),
        root: None,
    })
}

fn split(minor: &str) -> Result<(u32, u32), String> {
    let parse = |s: &str| s.parse().map_err(|_| format!("not a version: {minor:?}"));
    let (a, b) = minor
        .split_once('.')
        .ok_or_else(|| format!("not a version: {minor:?}"))?;
    Ok((parse(a)?, parse(b)?))
}

/// Finds an interpreter by label: "2.7" … "3.13" (pyenv), "debian-3.11",
/// "3.14", "3.15" (the sid root), "3.13t" (free-threaded), "venv-3.12",
/// "symlink-3.9". The last two are made in `scratch` the first time.
pub fn locate(label: &str, scratch: &Path) -> Result<Python, String> {
    match label {
        "3.13t" => {
            let exe = py313t_prefix().join("bin/python3.13t");
            if exe.exists() {
                Ok(Python {
                    label: label.into(),
                    major: 3,
                    minor: 13,
                    exe,
                    root: None,
                })
            } else {
                Err(format!(
                    "{} does not exist; run `make python313t`",
                    exe.display()
                ))
            }
        }
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
                let (major, minor) = split(label)?;
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
        "venv-3.12" => venv_312(scratch),
        "symlink-3.9" => symlink_39(scratch),
        minor => pyenv(minor),
    }
}

/// [`locate`], failing (panicking) when the interpreter is missing.
pub fn find(label: &str, scratch: &Path) -> Python {
    locate(label, scratch).unwrap_or_else(|e| panic!("interpreter {label} is missing: {e}"))
}

fn existing(path: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(path);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!("{path} does not exist"))
    }
}

fn venv_312(scratch: &Path) -> Result<Python, String> {
    // Made once per process; `python -m venv` on an existing one is skipped.
    static VENVS: OnceLock<Mutex<HashMap<PathBuf, Result<PathBuf, String>>>> = OnceLock::new();
    let dir = scratch.join("venv-3.12");
    let mut made = VENVS.get_or_init(Default::default).lock().unwrap();
    let dir = made
        .entry(dir.clone())
        .or_insert_with(|| {
            let base = pyenv("3.12")?;
            if !dir.join("bin/python").exists() {
                std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
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

fn symlink_39(scratch: &Path) -> Result<Python, String> {
    let base = pyenv("3.9")?;
    let link = scratch.join("my-python-link");
    if std::fs::symlink_metadata(&link).is_err() {
        std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
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

/// Every interpreter the issue names.
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
    "3.13t",
    "venv-3.12",
    "symlink-3.9",
];

/// The interpreters named in `PYSAMPLER_EXTRA_PYTHONS`.
pub fn extra_pythons() -> Vec<Python> {
    let Ok(list) = std::env::var("PYSAMPLER_EXTRA_PYTHONS") else {
        return vec![];
    };
    list.split(':')
        .filter(|p| !p.is_empty())
        .map(|path| {
            let mut python = Python {
                label: format!("extra-{path}"),
                major: 0,
                minor: 0,
                exe: path.into(),
                root: None,
            };
            let (major, minor, _) = python.version();
            (python.major, python.minor) = (major, minor);
            python
        })
        .collect()
}

impl Python {
    /// Whether code objects carry qualified names (`Class.method`): 3.11+.
    pub fn qualnames(&self) -> bool {
        (self.major, self.minor) >= (3, 11)
    }

    /// A command that runs this interpreter (through chroot for one in a
    /// root), to which arguments can be added.
    pub fn command(&self) -> Command {
        match &self.root {
            None => Command::new(&self.exe),
            Some(root) => {
                let mut c = Command::new("chroot");
                c.arg(root).arg(&self.exe);
                c
            }
        }
    }

    /// `sys.version_info[:3]` as the interpreter says it, asked once per
    /// interpreter and process. Tests take what they expect of a version
    /// from here: the next machine may have 3.12.2 where this one has
    /// 3.12.1.
    pub fn version(&self) -> (u32, u32, u32) {
        let (version, _) = self.asked_version();
        version
    }

    /// A free-threaded build (no GIL): its label ends in "t", as its
    /// offsets table's name does ("3.13t").
    pub fn free_threaded(&self) -> bool {
        self.label.ends_with('t')
    }

    /// The version as pysampler writes it: CPython's, with a "t" for a
    /// free-threaded build ("3.13.5t").
    pub fn build_version_text(&self) -> String {
        let suffix = if self.free_threaded() { "t" } else { "" };
        format!("{}{suffix}", self.version_text())
    }

    /// The version as CPython writes it: "3.12.1", "3.15.0a1" (the
    /// pre-release suffix as in `sys.version`: a, b, rc).
    pub fn version_text(&self) -> String {
        let ((major, minor, micro), suffix) = self.asked_version();
        format!("{major}.{minor}.{micro}{suffix}")
    }

    fn asked_version(&self) -> ((u32, u32, u32), String) {
        type Asked = HashMap<(Option<PathBuf>, PathBuf), ((u32, u32, u32), String)>;
        static ASKED: OnceLock<Mutex<Asked>> = OnceLock::new();
        let key = (self.root.clone(), self.exe.clone());
        let mut asked = ASKED.get_or_init(Default::default).lock().unwrap();
        if let Some(v) = asked.get(&key) {
            return v.clone();
        }
        let out = self
            .command()
            .args([
                "-c",
                "import sys; print('%d %d %d %s %d' % tuple(sys.version_info[:5]))",
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.label));
        let text = String::from_utf8_lossy(&out.stdout);
        let parts: Vec<&str> = text.split_whitespace().collect();
        let number = |i: usize| parts.get(i).and_then(|p| p.parse::<u32>().ok());
        let (Some(major), Some(minor), Some(micro), Some(level), Some(serial)) =
            (number(0), number(1), number(2), parts.get(3), number(4))
        else {
            panic!(
                "{} did not say its version: {text:?} {}",
                self.label,
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let suffix = match *level {
            "alpha" => format!("a{serial}"),
            "beta" => format!("b{serial}"),
            "candidate" => format!("rc{serial}"),
            _ => String::new(),
        };
        let answer = ((major, minor, micro), suffix);
        asked.insert(key, answer.clone());
        answer
    }
}
