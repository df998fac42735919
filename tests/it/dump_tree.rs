//! `dump --subprocesses`: every Python process of a tree, each under its
//! own header, in pid order; a process that is not Python (a shell in
//! between) left out; one that cannot be read shown with its error while
//! the others are still printed. On a multiprocessing fixture
//! (fixtures/process_tree.py) and on a real uvicorn with two workers.

use crate::pythons::{self, Python};
use crate::target::{Target, PYSAMPLER};
use crate::web::Server;
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

/// The fixture's processes, from its "PIDS …" line.
struct Tree {
    root: i32,
    workers: Vec<i32>,
    shell: i32,
    leaf: i32,
}

fn start_tree(py: &Python, args: &[&str]) -> (Target, Tree) {
    let target = Target::start(py, "process_tree.py", args);
    let line = target
        .lines
        .recv_timeout(Duration::from_secs(60))
        .expect("the fixture names its processes after READY");
    let field = |key: &str| -> String {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
            .to_string()
    };
    let pid = |text: &str| -> i32 { text.parse().unwrap_or_else(|_| panic!("{line:?}")) };
    let tree = Tree {
        root: pid(&field("root")),
        workers: field("workers").split(',').map(pid).collect(),
        shell: pid(&field("shell")),
        leaf: pid(&field("leaf")),
    };
    assert_eq!(tree.root, target.pid(), "{line}");
    (target, tree)
}

impl Tree {
    /// (pid, the function it waits in) for each Python process, in pid order.
    fn expected(&self) -> Vec<(i32, &'static str)> {
        let mut all = vec![(self.root, "parent_wait"), (self.leaf, "leaf_wait")];
        all.extend(self.workers.iter().map(|&w| (w, "worker_wait")));
        all.sort_unstable();
        all
    }
}

fn dump(pid: i32, extra: &[&str]) -> Output {
    Command::new(PYSAMPLER)
        .args(["dump", "--pid", &pid.to_string(), "--subprocesses"])
        .args(extra)
        .output()
        .expect("run pysampler dump")
}

/// "Process PID: …" headers of a text dump, in order.
fn headers(text: &str) -> Vec<i32> {
    text.lines()
        .filter_map(|l| l.strip_prefix("Process "))
        .map(|rest| rest.split(':').next().unwrap().parse().unwrap())
        .collect()
}

/// The lines of each process's section of a text dump, by pid.
fn sections(text: &str) -> Vec<(i32, Vec<&str>)> {
    let mut out: Vec<(i32, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Process ") {
            out.push((rest.split(':').next().unwrap().parse().unwrap(), vec![]));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line);
        }
    }
    out
}

fn check_tree(label: &str) {
    let py = pythons::find(label);
    let (_target, tree) = start_tree(&py, &[]);
    let expected = tree.expected();

    let out = dump(tree.root, &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{label}: {stderr}");
    let docs: Value = serde_json::from_slice(&out.stdout).expect("a JSON list");
    let docs = docs.as_array().expect("a JSON list");
    let got: Vec<(i32, String)> = docs
        .iter()
        .map(|d| {
            assert_eq!(d["error"], Value::Null, "{label}: {d}");
            let innermost = d["threads"][0]["frames"][0]["function"].as_str();
            (
                d["pid"].as_i64().unwrap() as i32,
                innermost.unwrap_or("?").to_string(),
            )
        })
        .collect();
    let want: Vec<(i32, String)> = expected.iter().map(|(p, f)| (*p, f.to_string())).collect();
    // In pid order, the shell left out.
    assert_eq!(got, want, "{label}: shell {}", tree.shell);

    let out = dump(tree.root, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{label}: {text}");
    let want_pids: Vec<i32> = expected.iter().map(|(p, _)| *p).collect();
    assert_eq!(headers(&text), want_pids, "{label}:\n{text}");
    for ((pid, lines), (_, function)) in sections(&text).iter().zip(&expected) {
        assert!(
            lines[0].starts_with(&format!("Python v{}.{}", py.major, py.minor)),
            "{label}: process {pid}:\n{text}"
        );
        let first_frame = lines.iter().find(|l| l.starts_with("    ")).unwrap();
        assert!(
            first_frame
                .trim_start()
                .starts_with(&format!("{function} (")),
            "{label}: process {pid}:\n{text}"
        );
    }
}

#[test]
fn tree_on_python_2_7() {
    check_tree("2.7");
}

#[test]
fn tree_on_python_3_9() {
    check_tree("3.9");
}

#[test]
fn tree_on_python_3_12() {
    check_tree("3.12");
}

#[test]
fn tree_on_python_3_14_in_sid_root() {
    check_tree("3.14");
}

#[test]
fn tree_on_python_3_13t_free_threaded() {
    check_tree("3.13t");
}

/// pysampler as nobody over a tree where only the shell and the leaf are
/// nobody's: root's processes get their error, one line under their header,
/// the leaf its stack, the shell nothing; the exit status says not all of
/// it was read. Debian's python, which nobody may read (pyenv's is in /root).
#[test]
fn unreadable_processes_get_their_error_and_the_others_are_printed() {
    let py = pythons::find("debian-3.11");
    let (_target, tree) = start_tree(&py, &["drop"]);
    let as_nobody = |extra: &[&str]| -> Output {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(PYSAMPLER)
            .args(["dump", "--pid", &tree.root.to_string(), "-s"])
            .args(extra)
            .output()
            .expect("setpriv (util-linux) is installed")
    };
    let mut unreadable = vec![tree.root];
    unreadable.extend(&tree.workers);
    let all: Vec<i32> = tree.expected().iter().map(|(p, _)| *p).collect();

    let out = as_nobody(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}{stderr}");
    assert!(
        stderr.contains("3 of the 4 processes shown could not be read"),
        "{stderr}"
    );
    assert_eq!(headers(&text), all, "{text}");
    for (pid, lines) in sections(&text) {
        if unreadable.contains(&pid) {
            let body: Vec<&str> = lines.into_iter().filter(|l| !l.is_empty()).collect();
            assert_eq!(body.len(), 1, "process {pid}:\n{text}");
            assert!(
                body[0].starts_with(&format!("Error: permission denied reading process {pid}: ")),
                "{text}"
            );
        } else {
            assert_eq!(pid, tree.leaf);
            assert!(
                lines.iter().any(|l| l.starts_with("    leaf_wait (")),
                "{text}"
            );
        }
    }

    let out = as_nobody(&["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let docs: Value = serde_json::from_slice(&out.stdout).expect("a JSON list");
    let docs = docs.as_array().expect("a JSON list");
    let pids: Vec<i32> = docs
        .iter()
        .map(|d| d["pid"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(pids, all);
    for d in docs {
        let pid = d["pid"].as_i64().unwrap() as i32;
        assert!(
            d["command_line"]
                .as_str()
                .unwrap()
                .contains("process_tree.py"),
            "{d}"
        );
        if pid == tree.leaf {
            assert_eq!(d["error"], Value::Null, "{d}");
            assert_eq!(d["threads"][0]["frames"][0]["function"], "leaf_wait");
        } else {
            assert!(
                d["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("permission denied")),
                "{d}"
            );
            assert!(d.get("threads").is_none(), "{d}");
        }
    }
}

/// A real uvicorn with `--workers 2`: the supervisor and both workers, in
/// pid order, each a Python process in uvicorn's code.
#[test]
fn uvicorn_supervisor_and_both_workers() {
    let server = Server::start(2);
    assert_eq!(server.server_pids.len(), 2, "uvicorn named its two workers");
    let master = server.child.id() as i32;
    let out = dump(master, &["--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let docs: Value = serde_json::from_slice(&out.stdout).expect("a JSON list");
    let docs = docs.as_array().expect("a JSON list");
    let pids: Vec<i32> = docs
        .iter()
        .map(|d| d["pid"].as_i64().unwrap() as i32)
        .collect();
    let mut sorted = pids.clone();
    sorted.sort_unstable();
    assert_eq!(pids, sorted, "pid order");
    for pid in std::iter::once(&master).chain(&server.server_pids) {
        let doc = docs
            .iter()
            .find(|d| d["pid"] == *pid)
            .unwrap_or_else(|| panic!("process {pid} is missing: {pids:?}"));
        assert_eq!(doc["error"], Value::Null, "{doc}");
        let in_uvicorn = doc["threads"].as_array().unwrap().iter().any(|t| {
            t["frames"].as_array().unwrap().iter().any(|f| {
                f["filename"]
                    .as_str()
                    .is_some_and(|n| n.contains("/uvicorn/"))
            })
        });
        assert!(in_uvicorn, "process {pid} is not in uvicorn's code: {doc}");
    }

    let out = dump(master, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let shown = headers(&text);
    assert_eq!(shown, pids, "the text lists what the JSON lists:\n{text}");
}
