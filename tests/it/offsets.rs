//! The committed offsets tables agree with the generator (each interpreter's
//! headers) and, for 3.13+, with what the running interpreter publishes.

use crate::pythons;
use crate::target::Target;
use pysampler::process::locate::locate_interpreter;
use pysampler::process::memory::LiveMemory;
use pysampler::process::ProcessInfo;
use pysampler_core::interpreter::tables;
use std::process::Command;

#[test]
fn tables_match_the_generator() {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/python-offsets/generate.py"
        ))
        .arg("--check")
        .output()
        .expect("python3 runs the generator");
    assert!(
        out.status.success(),
        "python-offsets/ is out of date (run `make offsets`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// For 3.13+, the table's values equal the live `_Py_DebugOffsets`, so a
/// patch release that moved a field shows up here, not in a user's stack.
#[test]
fn tables_match_runtime_debug_offsets() {
    for label in ["3.13", "3.14", "3.15"] {
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
