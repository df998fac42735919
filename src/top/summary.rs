//! What both the full-screen view and the plain snapshots show: the header
//! lines and the table's rows and cells, for the current view settings.

use crate::top::keys::ViewState;
use crate::top::state::Top;
use crate::top::stats::Window;
use crate::top::table::{self, Cells, Row};

pub const TITLES: [&str; 5] = [
    "%Own",
    "%Total",
    "OwnTime",
    "TotalTime",
    "Function (File:Line)",
];

/// The window the percentages are of.
pub fn window<'a>(top: &'a Top, view: &ViewState) -> &'a Window {
    if view.cumulative {
        &top.tally.cumulative
    } else {
        &top.tally.last
    }
}

pub fn rows(top: &Top, view: &ViewState) -> Vec<Row> {
    table::rows(
        window(top, view),
        &top.tally.cumulative,
        view.thread,
        view.sort,
        &top.functions,
    )
}

pub fn cells<'a>(top: &'a Top, view: &ViewState) -> Cells<'a> {
    Cells {
        functions: &top.functions,
        file_names: &top.file_names,
        window_ticks: window(top, view).ticks(),
        sample_time: top.sample_time,
    }
}

/// Three lines: what is profiled; counts and activity; what is shown.
pub fn header(top: &Top, view: &ViewState) -> [String; 3] {
    [
        target_line(top),
        counts_line(top, view),
        showing_line(top, view),
    ]
}

fn target_line(top: &Top) -> String {
    let command = top
        .root_summary()
        .map(|p| p.command_line.as_str())
        .unwrap_or("(starting)");
    if top.subprocesses {
        format!(
            "pysampler top - {} processes ({} running), pid {}: {command}",
            top.processes.len(),
            top.running_processes(),
            top.root
        )
    } else {
        format!("pysampler top - pid {}: {command}", top.root)
    }
}

fn counts_line(top: &Top, view: &ViewState) -> String {
    let version = top
        .root_summary()
        .map(|p| p.python_version.as_str())
        .unwrap_or("?");
    let w = window(top, view);
    let activity = w.activity(view.thread);
    // One thread: its share of all ticks; all: share of ticks with any thread busy.
    let whole = match view.thread {
        Some(_) => w.ticks(),
        None => activity.samples,
    };
    // A free-threaded build ("3.13.5t") has no GIL for a thread to hold.
    let gil = if version.ends_with('t') {
        String::new()
    } else {
        format!(" | GIL {}", table::percent(activity.gil, whole))
    };
    format!(
        "Python {version} | {} Hz | samples {} | errors {} | threads {} | active {}{gil}",
        top.rate_hz,
        top.samples,
        top.errors,
        w.thread_count(),
        table::percent(activity.active, whole),
    )
}

fn showing_line(top: &Top, view: &ViewState) -> String {
    let percent = if view.cumulative {
        let since = table::seconds(top.started.elapsed().as_secs_f64());
        format!("% since start ({since})")
    } else {
        format!(
            "% of last {}",
            table::seconds(top.last_interval.as_secs_f64())
        )
    };
    let thread = match view.thread.and_then(|t| top.threads.get(t as usize)) {
        Some(t) if top.subprocesses => t.name().label_with_pid(t.pid),
        Some(t) => t.label(),
        None => "all".into(),
    };
    let order = if view.sort.reverse {
        "smallest first"
    } else {
        "largest first"
    };
    format!(
        "{percent}, times since start | thread: {thread} | sort: {} {order}",
        view.sort.column.title()
    )
}
