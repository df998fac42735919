//! Fixture programs (started by pysampler-testkit, which waits for their
//! READY handshake) and running pysampler against them.

pub use pysampler_testkit::{fixtures_dir, python_command, Target};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

pub const PYSAMPLER: &str = env!("CARGO_BIN_EXE_pysampler");

/// Runs pysampler with `args`.
pub fn pysampler(args: &[&str]) -> Output {
    Command::new(PYSAMPLER)
        .args(args)
        .output()
        .expect("run pysampler")
}

/// `pysampler dump --json` of `pid`, parsed.
pub fn dump_json(pid: i32, extra: &[&str]) -> Value {
    let pid = pid.to_string();
    let mut args = vec!["dump", "--pid", &pid, "--json"];
    args.extend_from_slice(extra);
    let out = pysampler(&args);
    assert!(
        out.status.success(),
        "dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("dump --json prints valid JSON")
}

/// Dumps until `ready` accepts the result (the fixture may still be on its
/// way to the known point right after its handshake), at most 200 times.
pub fn dump_when(pid: i32, extra: &[&str], ready: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = dump_json(pid, extra);
        if ready(&last) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the fixture never reached the expected state; last dump:\n{last:#}");
}

/// Line number of the line holding `marker` (e.g. "# LINE_SPIN") in a fixture.
pub fn marker_line(file: &str, marker: &str) -> u64 {
    let text = std::fs::read_to_string(fixtures_dir().join(file)).unwrap();
    let needle = format!("# {marker}");
    text.lines()
        .position(|l| l.trim_end().ends_with(&needle))
        .unwrap_or_else(|| panic!("{file} has no {needle}")) as u64
        + 1
}
