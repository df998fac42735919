//! `top -- COMMAND`: in a real terminal the program is launched with stdin
//! from /dev/null and stdout and stderr into a log file (given to it at
//! launch; pysampler's own descriptors are never swapped), so nothing it
//! writes lands on the view and it reads none of the keys. Exit status as
//! for `record`: the program's own when it ends by itself, 0 when `top`
//! ends it.

use crate::pythons;
use crate::target::{fixtures_dir, python_command, PYSAMPLER};
use crate::top::{first_row_has, script, Tmux};
use std::process::{Command, Stdio};

#[test]
fn a_launched_program_gets_dev_null_and_the_log_for_its_streams() {
    let python = pythons::find("3.12");
    let stop_file = pythons::scratch_dir().join(format!("top-streams-{}", std::process::id()));
    let _ = std::fs::remove_file(&stop_file);
    let tmux = Tmux::run(&format!(
        "cd '{}' && {}",
        fixtures_dir().display(),
        script(&format!(
            "top --delay 0.2 -- '{}' streams.py '{}'",
            python.exe.display(),
            stop_file.display()
        ))
    ));
    // hot_loop only runs once the program's read of stdin has ended, which
    // it would never do on the terminal.
    let screen = tmux.wait_for("hot_loop as the first row", |s| {
        first_row_has(s, "hot_loop")
    });
    assert!(
        !screen.contains("to stdout") && !screen.contains("to stderr"),
        "the program wrote over the view:\n{screen}"
    );
    std::fs::write(&stop_file, "").unwrap();
    let (code, screen) = tmux.wait_for_exit();
    let _ = std::fs::remove_file(&stop_file);
    assert_eq!(code, 0, "{screen}");
    assert!(!tmux.alternate_on(), "the terminal was left in the view");
    let log = screen
        .lines()
        .find_map(|l| l.strip_prefix("pysampler: the program's output is in "))
        .unwrap_or_else(|| panic!("no log named:\n{screen}"))
        .trim()
        .to_string();
    let logged = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert_eq!(logged, "to stdout\nto stderr\nstdin gave 0 bytes\n");
    assert!(
        screen.contains("pysampler: the program exited with status 0"),
        "{screen}"
    );
    assert!(
        screen.contains("BEFORE-TOP"),
        "the terminal's earlier output is back:\n{screen}"
    );
}

#[test]
fn q_ends_a_launched_program_and_exits_0() {
    let python = pythons::find("3.12");
    let tmux = Tmux::run(&format!(
        "cd '{}' && {}",
        fixtures_dir().display(),
        script(&format!(
            "top --delay 0.2 -- '{}' exit_modes.py busy",
            python.exe.display()
        ))
    ));
    tmux.wait_for("busy_loop as the first row", |s| {
        first_row_has(s, "busy_loop")
    });
    tmux.keys("q");
    let (code, screen) = tmux.wait_for_exit();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("pysampler: quit; the program ended on SIGINT"),
        "{screen}"
    );
}

#[test]
fn a_launched_program_ending_on_its_own_passes_its_status_through() {
    let python = pythons::find("3.12");
    // Plain snapshots (stdout is not a terminal): the program keeps
    // pysampler's streams.
    let out = Command::new(PYSAMPLER)
        .args(["top", "--delay", "0.2", "--"])
        .args(python_command(&python, "exit_status.py", &["3"]))
        .stdin(Stdio::null())
        .output()
        .expect("run pysampler top");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("pysampler: the program exited with status 3"),
        "{stderr}"
    );
}
