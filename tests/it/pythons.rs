//! The interpreters the tests run, as pysampler-testkit finds them (pyenv's
//! 2.7 and 3.6–3.13, Debian's python3.11, 3.14 and 3.15 in the Debian sid
//! root, a virtual environment and a symlinked python; a missing one fails
//! the test that needs it), with the tests' scratch folder, in the build
//! folder, for the venv and the symlink they make.

pub use pysampler_testkit::pythons::{extra_pythons, Python, ALL_LABELS};
use std::path::{Path, PathBuf};

/// Finds an interpreter by label: "2.7" … "3.13", "debian-3.11", "3.14",
/// "3.15", "venv-3.12", "symlink-3.9"; a missing one panics.
pub fn find(label: &str) -> Python {
    pysampler_testkit::pythons::find(label, &scratch_dir())
}

/// Scratch space for the test run, inside the build folder.
pub fn scratch_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("it");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Where the tests' downloaded tools are cached: `$PYSAMPLER_CACHE`, or
/// ~/.cache/pysampler (`make test-deps` fills it).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("PYSAMPLER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/pysampler")
        })
}
