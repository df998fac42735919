//! `dump --async` against a known await tree (fixtures/async_tree.py) on
//! every version it reads (3.8–3.15; a TaskGroup on 3.11+): the exact task names, coroutine functions and
//! lines, and edges. Reading each task's name and coroutine through the
//! offsets in python-offsets/ (TASK_LAYOUTS) is what checks those offsets
//! against live tasks: a wrong one yields no task, a wrong name or no frames.

use crate::pythons;
use crate::target::{dump_when, marker_line, Target};
use serde_json::Value;
use std::collections::BTreeMap;

const SCRIPT: &str = "async_tree.py";

/// A task as the test compares it: (function, line or 0 for a stdlib frame)
/// innermost first, and the names of the tasks it awaits / is awaited by.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    state: String,
    frames: Vec<(String, u64)>,
    awaiting: Vec<String>,
    awaited_by: Vec<String>,
}

fn tasks_by_name(dump: &Value) -> BTreeMap<String, Shown> {
    let loops = dump["asyncio"]["loops"].as_array().expect("asyncio.loops");
    let tasks: Vec<&Value> = loops
        .iter()
        .flat_map(|l| l["tasks"].as_array().expect("tasks").iter())
        .collect();
    let name_of: BTreeMap<&str, &str> = tasks
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["name"].as_str().unwrap()))
        .collect();
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|id| {
                name_of
                    .get(id.as_str().unwrap())
                    .unwrap_or(&"?")
                    .to_string()
            })
            .collect();
        n.sort();
        n
    };
    tasks
        .iter()
        .map(|t| {
            let frames = t["frames"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let ours = f["filename"].as_str().unwrap().ends_with(SCRIPT);
                    let line = if ours { f["line"].as_u64().unwrap() } else { 0 };
                    (f["function"].as_str().unwrap().to_string(), line)
                })
                .collect();
            let shown = Shown {
                state: t["state"].as_str().unwrap().to_string(),
                frames,
                awaiting: names(&t["awaiting"]),
                awaited_by: names(&t["awaited_by"]),
            };
            (t["name"].as_str().unwrap().to_string(), shown)
        })
        .collect()
}

fn shown(frames: &[(&str, u64)], awaiting: &[&str], awaited_by: &[&str]) -> Shown {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Shown {
        state: "suspended".into(),
        frames: frames.iter().map(|(f, l)| (f.to_string(), *l)).collect(),
        awaiting: strings(awaiting),
        awaited_by: strings(awaited_by),
    }
}

/// Runs the fixture on interpreter `label` and checks the whole tree.
pub fn check(label: &str) {
    let py = pythons::find(label);
    let target = Target::start(&py, SCRIPT, &[]);
    let minor = py.minor;
    let count = if minor >= 11 { 9 } else { 7 };
    // READY is printed just before the main task suspends in `await top`.
    let dump = dump_when(target.pid(), &["--async"], |d| {
        d["asyncio"]["loops"][0]["tasks"]
            .as_array()
            .is_some_and(|t| t.len() == count && t.iter().all(|t| t["state"] == "suspended"))
    });
    // Up to 3.10 code objects have no qualified name.
    let event_wait = if minor >= 11 { "Event.wait" } else { "wait" };
    let line = |m| marker_line(SCRIPT, m);
    let mut expected = BTreeMap::new();
    expected.insert(
        "Task-1".to_string(),
        shown(&[("main", line("LINE_MAIN"))], &["parent"], &[]),
    );
    expected.insert(
        "parent".to_string(),
        shown(
            &[("parent", line("LINE_GATHER"))],
            &["child-0", "child-1", "child-2"],
            &["Task-1"],
        ),
    );
    for i in 0..3 {
        let frames = [
            (event_wait, 0),
            ("wait_for_it", line("LINE_WAIT_FOR_IT")),
            ("child", line("LINE_CHILD")),
        ];
        expected.insert(format!("child-{i}"), shown(&frames, &[], &["parent"]));
    }
    expected.insert(
        "nested".to_string(),
        shown(&[("nested", line("LINE_NESTED"))], &["leaf"], &[]),
    );
    expected.insert(
        "leaf".to_string(),
        shown(
            &[(event_wait, 0), ("leaf", line("LINE_LEAF"))],
            &[],
            &["nested"],
        ),
    );
    if minor >= 11 {
        // The group's task waits in the group's exit (3.14+: in the `_aexit`
        // it awaits); its edge to its task comes from the group's `_tasks`.
        let mut exit = vec![("TaskGroup.__aexit__", 0), ("grouped", line("LINE_GROUP"))];
        if minor >= 14 {
            exit.insert(0, ("TaskGroup._aexit", 0));
        }
        expected.insert("grouped".into(), shown(&exit, &["group-leaf"], &[]));
        expected.insert(
            "group-leaf".into(),
            shown(
                &[(event_wait, 0), ("leaf", line("LINE_LEAF"))],
                &[],
                &["grouped"],
            ),
        );
    }
    assert_eq!(tasks_by_name(&dump), expected, "{label}: {dump:#}");
    assert_eq!(dump["asyncio"]["loops"].as_array().unwrap().len(), 1);
}
