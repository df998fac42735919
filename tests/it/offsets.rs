//! The committed offsets tables agree with the generator (each interpreter's
//! headers, whatever patch release is installed) and, for 3.13+, with what the
//! running interpreter publishes; the supported versions are written the same
//! everywhere they are named.

use crate::pythons;
use crate::target::Target;
use pysampler::process::locate::locate_interpreter;
use pysampler::process::memory::LiveMemory;
use pysampler::process::ProcessInfo;
use pysampler_core::interpreter::families::supported_versions_text;
use pysampler_core::interpreter::{tables, Version};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs python-offsets/generate.py with `args`.
fn generator(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(repo().join("python-offsets/generate.py"))
        .args(args)
        .output()
        .expect("python3 runs the generator")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn tables_match_the_generator() {
    let out = generator(&["--check"]);
    assert!(
        out.status.success(),
        "python-offsets/ is out of date (run `make offsets`):\n{}",
        text(&out)
    );
}

/// A copy of the committed tables whose version lines name another patch
/// release of the same minor version: the one after the installed one.
fn tables_of_another_patch_release() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo().join("python-offsets")).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".toml") {
            continue;
        }
        let table = std::fs::read_to_string(&path).unwrap();
        let made_from = table
            .lines()
            .find_map(|l| l.strip_prefix("version = "))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{path:?} has no version line"));
        let v = Version::parse(&made_from).unwrap();
        let other = Version::new(v.major, v.minor, Some(v.patch.unwrap_or(0) + 1)).to_string();
        std::fs::write(
            dir.path().join(path.file_name().unwrap()),
            table.replace(&made_from, &other),
        )
        .unwrap();
    }
    dir
}

/// A table stands for every patch release of its minor version: the check
/// compares offsets, so headers of another patch release with the same
/// offsets pass, and a changed offset fails.
#[test]
fn the_check_accepts_another_patch_release_with_the_same_offsets() {
    let tables = tables_of_another_patch_release();
    let dir = tables.path().to_str().unwrap();
    let out = generator(&["--check", "--tables", dir]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("same offsets"), "{}", text(&out));

    let minor = &tables::supported_minors()[0];
    let path: PathBuf = tables.path().join(format!("{minor}.toml"));
    let table = std::fs::read_to_string(&path).unwrap();
    let changed = table.replacen("\nnext = ", "\nnext = 1", 1);
    assert_ne!(changed, table);
    std::fs::write(&path, changed).unwrap();
    let out = generator(&["--check", "--tables", dir, "--only", minor]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// For 3.13+, the table's values equal the live `_Py_DebugOffsets`, so a
/// patch release that moved a field shows up here, not in a user's stack.
#[test]
fn tables_match_runtime_debug_offsets() {
    let publishing: Vec<String> = tables::supported_minors()
        .into_iter()
        .filter(|minor| {
            let v = Version::parse(minor).unwrap();
            !tables::layout_for(&v).unwrap().debug_offsets.is_empty()
        })
        .collect();
    assert!(!publishing.is_empty(), "no version publishes its offsets");
    for label in &publishing {
        let py = pythons::find(label);
        let target = Target::start(&py, "dump_target.py", &[]);
        let process = ProcessInfo::open(target.pid()).unwrap();
        let mem = LiveMemory::new(process.pid);
        let live = locate_interpreter(&process, &mem).unwrap();
        let table = tables::layout_for(&live.version).unwrap();
        assert!(
            !table.debug_offsets.is_empty(),
            "{label}: no debug offsets in the table"
        );
        let mut live_layout = live.layout.clone();
        live_layout.version = table.version.clone();
        assert_eq!(
            live_layout, table,
            "{label}: table differs from the running interpreter"
        );
    }
}

#[test]
fn the_generator_makes_tables_for_the_supported_versions() {
    let out = generator(&["--minors"]);
    assert!(out.status.success(), "{}", text(&out));
    // The minors, then the free-threaded builds with tables of their own.
    let mut minors = tables::supported_minors();
    minors.extend(
        pysampler_core::interpreter::families::FREE_THREADED
            .iter()
            .map(|(major, minor)| format!("{major}.{minor}t")),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        minors.join(" ")
    );
}

/// The README and the package descriptions name the supported versions as
/// `families::SUPPORTED` has them ("2.7 and 3.6 to 3.15", or with a dash),
/// and the wheel's classifiers list exactly those minor versions.
#[test]
fn supported_versions_are_written_as_the_core_lists_them() {
    let range = supported_versions_text();
    let forms: Vec<String> = [" to ", "-", "–"]
        .iter()
        .map(|sep| range.replace(" to ", sep))
        .collect();
    for file in [
        "README.md",
        "Cargo.toml",
        "crates/pysampler-core/Cargo.toml",
        "pyproject.toml",
    ] {
        let raw = std::fs::read_to_string(repo().join(file)).unwrap();
        let flat = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let found: usize = forms.iter().map(|f| flat.matches(f.as_str()).count()).sum();
        assert!(found > 0, "{file} does not say \"{range}\"");
        // Every range that starts like ours ends like ours, and the other
        // way round: a stale bound ("3.6 to 3.14", "2.7 and 3.7 to") fails.
        let starts: usize = forms
            .iter()
            .map(|f| {
                let (at, sep) = f
                    .char_indices()
                    .rev()
                    .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
                    .unwrap();
                flat.matches(&f[..at + sep.len_utf8()]).count()
            })
            .sum();
        assert_eq!(starts, found, "{file}: a range that is not \"{range}\"");
        if let Some((head, _)) = range.split_once(" and ") {
            let heads = flat.matches(&format!("{head} and ")).count();
            assert_eq!(heads, found, "{file}: a range that is not \"{range}\"");
        }
    }
    let pyproject = std::fs::read_to_string(repo().join("pyproject.toml")).unwrap();
    let classified: Vec<&str> = pyproject
        .lines()
        .filter_map(|l| {
            l.trim()
                .trim_matches(|c| c == '"' || c == ',')
                .strip_prefix("Programming Language :: Python :: ")
        })
        .filter(|v| v.contains('.'))
        .collect();
    assert_eq!(
        classified,
        tables::supported_minors(),
        "pyproject.toml classifiers"
    );
}
