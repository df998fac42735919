//! `pysampler dump` on every interpreter: exact stacks, thread names, GIL and
//! idle flags, locals, JSON and text.

use crate::pythons::{self, Python};
use crate::target::{dump_when, marker_line, pysampler, Target};
use serde_json::Value;

const SCRIPT: &str = "dump_target.py";
const NONASCII: &str = "nonascii_名前.py";

fn threads(dump: &Value) -> &Vec<Value> {
    dump["threads"].as_array().expect("threads array")
}

fn thread<'a>(dump: &'a Value, name: &str) -> Option<&'a Value> {
    threads(dump).iter().find(|t| t["name"] == name)
}

fn frames(thread: &Value) -> Vec<(String, String, u64)> {
    thread["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap().to_string(),
                f["short_filename"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn innermost(dump: &Value, thread_name: &str) -> Option<String> {
    let t = thread(dump, thread_name)?;
    Some(t["frames"][0]["function"].as_str()?.to_string())
}

/// The fixture's steady state: every thread where it stays, and the GIL
/// with the spinner (handed about while the others start and go to sleep;
/// a dump takes 2 ms now and can land in that).
fn settled(py: &Python) -> impl Fn(&Value) -> bool + '_ {
    move |d: &Value| {
        innermost(d, "MainThread").as_deref() == Some("spin")
            && thread(d, "MainThread").is_some_and(|t| t["owns_gil"] == !py.free_threaded())
            && innermost(d, "deep-sleeper").as_deref() == Some("idle_forever")
            // In its frame a moment before it is asleep in the kernel: a
            // dump (~2 ms) can land between the two. One that never finds it
            // idle fails on the wait.
            && thread(d, "deep-sleeper").is_some_and(|t| t["active"] == false)
            && (py.major == 2 || innermost(d, "nöt-ascii-🧵").as_deref() == Some("grüße_名前"))
    }
}

fn f(name: &str, file: &str, line: u64) -> (String, String, u64) {
    (name.to_string(), file.to_string(), line)
}

/// Runs the dump checks on one interpreter by label.
pub fn check(label: &str) {
    check_extra(&pythons::find(label));
}

/// Runs the dump checks on `py`.
pub fn check_extra(py: &Python) {
    let py = py.clone();
    let label = py.label.as_str();
    let target = Target::start(&py, SCRIPT, &[]);
    let pid = target.pid();
    let dump = dump_when(pid, &[], settled(&py));
    let line = |m| marker_line(SCRIPT, m);

    assert_eq!(dump["pid"], pid);
    // The whole version, as the interpreter itself reports it.
    let version = dump["python_version"].as_str().unwrap();
    assert_eq!(version, py.build_version_text(), "{label}: version");

    // Main thread: spinning, holding the GIL, in a method called from <module>.
    let main = thread(&dump, "MainThread").expect("a MainThread");
    let checkout = if py.qualnames() {
        "Shop.checkout"
    } else {
        "checkout"
    };
    assert_eq!(
        frames(main),
        vec![
            f("spin", SCRIPT, line("LINE_SPIN")),
            f(checkout, SCRIPT, line("LINE_CHECKOUT")),
            f("<module>", SCRIPT, line("LINE_MODULE")),
        ],
        "{label}: main thread"
    );
    assert_eq!(
        main["thread_id"], pid,
        "{label}: main thread's OS id is the pid"
    );
    // A free-threaded build has no GIL to hold.
    assert_eq!(
        main["owns_gil"],
        !py.free_threaded(),
        "{label}: the spinning thread holds the GIL"
    );
    assert_eq!(
        main["active"], true,
        "{label}: the spinning thread is active"
    );

    // A named thread, 52 frames deep in recursion, sleeping.
    let deep = thread(&dump, "deep-sleeper").expect("the deep-sleeper thread");
    let deep_frames = frames(deep);
    let mut expected = vec![
        f("idle_forever", SCRIPT, line("LINE_SLEEP")),
        f("recurse", SCRIPT, line("LINE_RECURSE_BASE")),
    ];
    expected.extend((0..50).map(|_| f("recurse", SCRIPT, line("LINE_RECURSE"))));
    assert_eq!(deep_frames[..52], expected[..], "{label}: deep-sleeper");
    let run = if py.qualnames() { "Thread.run" } else { "run" };
    assert_eq!(deep_frames[52].0, run, "{label}: called from threading");
    assert!(deep_frames[52..]
        .iter()
        .all(|(_, file, line)| file == "threading.py" && *line > 0));
    assert_eq!(deep["owns_gil"], false);
    assert_eq!(deep["active"], false, "{label}: a sleeping thread is idle");
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert!(deep["thread_id"].as_i64().unwrap() != pid as i64 && tasks >= 2);

    // Non-ASCII file, function and thread names (Python 3 only allows them).
    if py.major == 3 {
        let t = thread(&dump, "nöt-ascii-🧵").expect("the non-ASCII thread");
        assert_eq!(
            frames(t)[0],
            f("grüße_名前", NONASCII, marker_line(NONASCII, "LINE_GRUSSE"))
        );
    }
    assert_eq!(threads(&dump).len(), if py.major == 3 { 3 } else { 2 });

    check_locals(&py, pid);
    check_text(&py, pid);
    drop(target);
}

fn check_locals(py: &Python, pid: i32) {
    let dump = dump_when(pid, &["--locals"], settled(py));
    let main = thread(&dump, "MainThread").unwrap();
    let checkout = &main["frames"][1];
    let locals: Vec<(String, String, bool)> = checkout["locals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["value"].as_str().unwrap().to_string(),
                l["is_argument"].as_bool().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = locals.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "self", "items", "discount", "total", "price", "label", "raw", "nothing", "flag",
            "basket"
        ],
        "{}: locals of checkout",
        py.label
    );
    let value = |n: &str| locals.iter().find(|l| l.0 == n).unwrap().1.clone();
    let is_arg = |n: &str| locals.iter().find(|l| l.0 == n).unwrap().2;
    assert!(is_arg("self") && is_arg("items") && is_arg("discount") && !is_arg("total"));
    assert!(
        value("self").starts_with("<Shop at 0x"),
        "{}",
        value("self")
    );
    assert!(
        value("items").starts_with("<list at 0x"),
        "{}",
        value("items")
    );
    assert_eq!(value("discount"), "0.5");
    assert_eq!(value("total"), "42");
    assert_eq!(value("price"), "2.5");
    let py2 = py.major == 2;
    assert_eq!(value("label"), if py2 { "u'café'" } else { "'café'" });
    assert_eq!(value("raw"), if py2 { "'\\x00ab'" } else { "b'\\x00ab'" });
    assert_eq!(value("nothing"), "None");
    assert_eq!(value("flag"), "True");
    // `n` in spin is the loop counter: an int that only grows.
    let spin_n = &main["frames"][0]["locals"][0];
    assert_eq!(spin_n["name"], "n");
    assert!(spin_n["value"].as_str().unwrap().parse::<i64>().unwrap() >= 2);
}

/// The text format: py-spy's dump layout.
fn check_text(py: &Python, pid: i32) {
    for _ in 0..200 {
        let out = pysampler(&["dump", "--pid", &format!("{pid:#x}")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(&format!("Process {pid}: ")), "{text}");
        assert!(lines[0].ends_with(SCRIPT), "{text}");
        assert!(
            lines[1].starts_with(&format!("Python v{} (", py.build_version_text())),
            "{text}"
        );
        assert_eq!(lines[2], "");
        let flags = if py.free_threaded() {
            "active"
        } else {
            "active+gil"
        };
        let header = format!("Thread {pid} ({flags}): \"MainThread\"");
        let Some(at) = lines.iter().position(|l| *l == header) else {
            continue; // caught before the main thread reached spin(); look again
        };
        if lines[at + 1] != format!("    spin ({SCRIPT}:{})", marker_line(SCRIPT, "LINE_SPIN")) {
            continue;
        }
        // Between setting its event and entering sleep() the sleeper is
        // briefly runnable: a dump that caught it there looks again.
        if !lines
            .iter()
            .any(|l| l.starts_with("Thread ") && l.ends_with("(idle): \"deep-sleeper\""))
        {
            continue;
        }
        return;
    }
    panic!(
        "{}: text dump never showed the main thread spinning and the sleeper idle",
        py.label
    );
}
