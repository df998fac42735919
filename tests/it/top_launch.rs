//! `top -- COMMAND` in a real terminal: the program is launched with stdin
//! from /dev/null and stdout and stderr into a log file (given to it at
//! launch; pysampler's own descriptors are never swapped), so nothing it
//! writes lands on the view and it reads none of the keys.

use crate::pythons;
use crate::target::fixtures_dir;
use crate::top::{first_row_has, script, Tmux};

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
        screen.contains("BEFORE-TOP"),
        "the terminal's earlier output is back:\n{screen}"
    );
}
