//! `pysampler top` in a real terminal: tmux runs it in a detached 120x40
//! pane, keys go in with send-keys and the screen comes back with
//! capture-pane. Every wait polls the screen (or the output) until what is
//! expected shows up, with a deadline, so nothing hangs.

use crate::pythons;
use crate::target::{fixtures_dir, Target, PYSAMPLER};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const FIXTURE: &str = "top_target.py";
/// Long enough for a loaded machine; polling ends much sooner normally.
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// A tmux server of its own (its own socket) running one shell command;
/// killed when dropped.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `script` in a 120x40 pane. The script ends by sleeping, so the
    /// pane (and what was printed) stays until the server is killed.
    pub(crate) fn run(script: &str) -> Tmux {
        Tmux::run_exactly(&format!("{script}; exec sleep 600"))
    }

    /// Runs `script` as it is: the pane closes when it ends.
    pub(crate) fn run_exactly(script: &str) -> Tmux {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "pysampler-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let tmux = Tmux { socket };
        let out = tmux
            .command()
            .args(["new-session", "-d", "-s", "main", "-x", "120", "-y", "40"])
            .arg(script)
            .output()
            .expect("tmux is installed (the `top` tests drive a terminal with it)");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn command(&self) -> Command {
        let mut c = Command::new("tmux");
        // No user configuration: the pane behaves the same everywhere.
        c.args(["-L", &self.socket, "-f", "/dev/null"]);
        c
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "main"])
    }

    pub(crate) fn alternate_on(&self) -> bool {
        self.tmux(&["display", "-p", "-t", "main", "#{alternate_on}"])
            .trim()
            == "1"
    }

    pub(crate) fn keys(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", "main", keys]);
    }

    /// Polls the screen until `ready` accepts it.
    pub(crate) fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for the line the script prints when pysampler ended; returns
    /// pysampler's exit status and the screen.
    pub(crate) fn wait_for_exit(&self) -> (i32, String) {
        let screen = self.wait_for("pysampler to exit", |s| s.contains("top exited with "));
        let code = screen
            .lines()
            .find_map(|l| l.trim().strip_prefix("top exited with "))
            .and_then(|c| c.trim().parse().ok())
            .expect("an exit status");
        (code, screen)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// The shell line that runs pysampler with `args` between two markers.
pub(crate) fn script(args: &str) -> String {
    format!("echo BEFORE-TOP; '{PYSAMPLER}' {args}; echo \"top exited with $?\"")
}

/// The first row of the table: the line after the column titles.
fn first_row(screen: &str) -> Option<&str> {
    let mut lines = screen.lines();
    lines.find(|l| l.contains("%Own") && l.contains("Function (File:Line)"))?;
    lines.next().filter(|l| !l.trim().is_empty())
}

/// Every row of the table: (%Total, "function (file:line)").
fn rows(screen: &str) -> Vec<(f64, String)> {
    let mut lines = screen.lines();
    if lines
        .find(|l| l.contains("%Own") && l.contains("Function (File:Line)"))
        .is_none()
    {
        return Vec::new();
    }
    lines
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            // %Own, %Total, OwnTime, TotalTime, then the function.
            let mut fields = l.split_whitespace();
            let total = fields.nth(1)?.strip_suffix('%')?.parse().ok()?;
            let function = fields.skip(2).collect::<Vec<_>>().join(" ");
            Some((total, function))
        })
        .collect()
}

/// The table is sorted by %Total, largest first or smallest first, with
/// `<module>` (on every stack: the largest) at that end, and at least one
/// other function, whose %Total is smaller.
fn sorted_by_total(screen: &str, largest_first: bool) -> bool {
    let mut rows = rows(screen);
    if !largest_first {
        rows.reverse();
    }
    rows.len() >= 2
        && rows.windows(2).all(|w| w[0].0 >= w[1].0)
        && rows[0].1.starts_with("<module> (")
        && rows[rows.len() - 1].0 < rows[0].0
}

pub(crate) fn first_row_has(screen: &str, function: &str) -> bool {
    first_row(screen).is_some_and(|row| row.contains(function))
}

fn start_target() -> Target {
    Target::start(&pythons::find("3.12"), FIXTURE, &[])
}

/// Watching a running fixture with a short refresh period.
fn watch(target: &Target) -> Tmux {
    Tmux::run(&script(&format!("top --pid {} --delay 0.2", target.pid())))
}

#[test]
fn the_hot_function_is_the_first_row() {
    let target = start_target();
    let tmux = watch(&target);
    let screen = tmux.wait_for("hot_loop as the first row", |s| {
        first_row_has(s, "hot_loop (top_target.py:")
    });
    assert!(tmux.alternate_on(), "the view uses the alternate screen");
    // The version as the interpreter reports it, followed by the rate.
    let version = pythons::find("3.12").version_text();
    assert!(
        screen.contains(&format!("pid {}", target.pid()))
            && screen.contains(&format!("Python {version} |")),
        "{screen}"
    );
}

/// A free-threaded build: the same view, without a GIL column.
#[test]
fn the_view_on_a_free_threaded_build_has_no_gil_column() {
    let python = pythons::find("3.13t");
    let target = Target::start(&python, FIXTURE, &[]);
    let tmux = watch(&target);
    let screen = tmux.wait_for("hot_loop as the first row", |s| {
        first_row_has(s, "hot_loop (top_target.py:")
    });
    let header = format!("Python {} |", python.build_version_text());
    let counts = screen
        .lines()
        .find(|l| l.contains(&header))
        .unwrap_or_else(|| panic!("no {header} line:\n{screen}"));
    assert!(counts.contains("| active "), "{counts}");
    assert!(!counts.contains("GIL"), "{counts}");
}

#[test]
fn sort_keys_change_the_order() {
    let target = start_target();
    let tmux = watch(&target);
    tmux.wait_for("hot_loop as the first row", |s| {
        first_row_has(s, "hot_loop")
    });
    // %Total: <module> is on every stack, so it has the largest.
    tmux.keys("2");
    tmux.wait_for("rows by %Total, <module> first", |s| {
        sorted_by_total(s, true) && s.contains("sort: %Total largest first")
    });
    // Reversed: every row's %Total at least the one's above, <module> last.
    // (Polled: a refresh where both functions were seen in every sample
    // ties them, and the next one settles it.)
    tmux.keys("r");
    tmux.wait_for("rows by %Total, smallest first, <module> last", |s| {
        sorted_by_total(s, false) && s.contains("sort: %Total smallest first")
    });
    tmux.keys("1");
    tmux.wait_for("hot_loop first again when sorted by %Own", |s| {
        first_row_has(s, "hot_loop")
    });
}

#[test]
fn q_quits_and_restores_the_terminal() {
    let target = start_target();
    let tmux = watch(&target);
    tmux.wait_for("the table", |s| first_row(s).is_some());
    tmux.keys("q");
    let (code, screen) = tmux.wait_for_exit();
    assert_eq!(code, 0, "{screen}");
    assert!(!tmux.alternate_on(), "still on the alternate screen");
    // The normal screen is back as it was, with nothing of the view on it.
    assert!(
        screen.starts_with("BEFORE-TOP\ntop exited with 0"),
        "{screen}"
    );
}

#[test]
fn the_target_exiting_ends_the_view() {
    let mut target = start_target();
    let pid = target.pid();
    let tmux = watch(&target);
    tmux.wait_for("the table", |s| first_row(s).is_some());
    target.child.kill().unwrap();
    target.child.wait().unwrap();
    let (code, screen) = tmux.wait_for_exit();
    assert_eq!(code, 0, "{screen}");
    assert!(!tmux.alternate_on(), "still on the alternate screen");
    assert!(
        screen.starts_with(&format!(
            "BEFORE-TOP\npysampler: process {pid} exited\ntop exited with 0"
        )),
        "{screen}"
    );
}

#[test]
fn a_closed_terminal_ends_the_view() {
    let target = start_target();
    let pid_file = pythons::scratch_dir().join(format!("top-pid-{}", std::process::id()));
    let _ = std::fs::remove_file(&pid_file);
    // The pane's shell ignores SIGHUP, so it outlives the hang-up and
    // pysampler gets one SIGHUP, not a second when the shell exits (which
    // would end it whatever the view does). The inner shell writes its pid,
    // then becomes pysampler.
    let tmux = Tmux::run_exactly(&format!(
        "trap '' HUP; sh -c \"echo \\$\\$ > '{}'; exec '{PYSAMPLER}' top --pid {} --delay 0.2\"",
        pid_file.display(),
        target.pid()
    ));
    tmux.wait_for("the table", |s| first_row(s).is_some());
    // A key first: the terminal's reader is only set up by the first key.
    tmux.keys("2");
    tmux.wait_for("sorting by %Total", |s| s.contains("sort: %Total"));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_file(&pid_file);
    drop(tmux); // the terminal hangs up
    let deadline = Instant::now() + DEADLINE;
    while running(pid) {
        if Instant::now() > deadline {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            panic!("pysampler kept running after its terminal closed");
        }
        std::thread::sleep(POLL);
    }
}

/// Whether `pid` exists and is not a zombie.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state != 'Z')
        })
        .unwrap_or(false)
}

#[test]
fn a_bad_pid_fails_before_the_view_starts() {
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap(); // reaped: the pid names nothing now
    let tmux = Tmux::run(&script(&format!("top --pid {pid}")));
    let (code, screen) = tmux.wait_for_exit();
    assert_eq!(code, 1, "{screen}");
    assert!(!tmux.alternate_on());
    assert!(
        screen.starts_with(&format!(
            "BEFORE-TOP\npysampler: no process with pid {pid}\ntop exited with 1"
        )),
        "{screen}"
    );
}

#[test]
fn a_launched_program_writes_to_a_log_not_over_the_view() {
    let python = pythons::find("3.12");
    let stop_file = pythons::scratch_dir().join(format!("top-stop-{}", std::process::id()));
    let _ = std::fs::remove_file(&stop_file);
    let tmux = Tmux::run(&format!(
        "cd '{}' && {}",
        fixtures_dir().display(),
        script(&format!(
            "top --delay 0.2 -- '{}' {FIXTURE} '{}'",
            python.exe.display(),
            stop_file.display()
        ))
    ));
    let screen = tmux.wait_for("hot_loop as the first row", |s| {
        first_row_has(s, "hot_loop")
    });
    assert!(
        !screen.contains("READY"),
        "the program printed over the view:\n{screen}"
    );
    std::fs::write(&stop_file, "").unwrap(); // the fixture ends by itself
    let (code, screen) = tmux.wait_for_exit();
    let _ = std::fs::remove_file(&stop_file);
    assert_eq!(code, 0, "{screen}");
    assert!(!tmux.alternate_on());
    let log = screen
        .lines()
        .find_map(|l| l.strip_prefix("pysampler: the program's output is in "))
        .unwrap_or_else(|| panic!("no log named:\n{screen}"))
        .trim()
        .to_string();
    let logged = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert_eq!(logged, "READY\n");
    assert!(screen.contains("pysampler: process "), "{screen}");
}

#[test]
fn piped_stdout_gets_plain_snapshots() {
    let target = start_target();
    let mut top = Command::new(PYSAMPLER)
        .args(["top", "--pid", &target.pid().to_string(), "--delay", "0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = top.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    let mut snapshots = 0;
    let deadline = Instant::now() + DEADLINE;
    while snapshots < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                snapshots += usize::from(line.starts_with("pysampler top - pid "));
                text.push_str(&line);
                text.push('\n');
            }
            Err(e) => {
                let _ = top.kill();
                panic!("no second snapshot ({e}); output so far:\n{text}");
            }
        }
    }
    unsafe {
        libc::kill(top.id() as i32, libc::SIGINT);
    }
    let status = wait_bounded(&mut top);
    assert!(status.success(), "{status}; output:\n{text}");
    assert!(!text.contains('\x1b'), "escape codes in:\n{text}");
    assert!(text.contains("Function (File:Line)"), "{text}");
    assert!(text.contains("hot_loop (top_target.py:"), "{text}");
}

/// Waits for `child` to exit, killing it (and failing) after the deadline.
fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pysampler did not exit after SIGINT");
        }
        std::thread::sleep(POLL);
    }
}

/// `top --async`: suspended tasks' coroutines are rows (the fixture's
/// tasks all wait in `Event.wait`: no thread of it runs them).
#[test]
fn async_tasks_are_rows() {
    let target = Target::start(&pythons::find("3.12"), "async_tasks.py", &[]);
    let tmux = Tmux::run(&script(&format!(
        "top --async --pid {} --delay 0.2",
        target.pid()
    )));
    // Rows are functions, named by their first line: gamma's `def`.
    let line = crate::target::marker_line("async_tasks.py", "LINE_GAMMA") - 1;
    let row = format!("gamma (async_tasks.py:{line})");
    tmux.wait_for("the task coroutine gamma as a row", |s| {
        rows(s).iter().any(|(_, f)| *f == row)
    });
}
