//! Plain-text tables for the terminal, as `report` and `diff` print them:
//! as many rows as the terminal shows (all of them when stdout is a pipe or
//! a file), cells cut to its width, the column titles bold on a terminal
//! and no escape codes otherwise.
//!
//! `report`'s table is one screen of `top` for the whole recording: each
//! function (its name, file and first line, as `top` shows it) with its own
//! samples (innermost frame) and total samples (anywhere on the stack, once
//! per sample however often it recurses), as a share of all samples shown
//! and as time (samples ÷ rate).

use crate::aggregate::Profile;
use crate::output::render::{file_names, RenderOptions, ShownFrame};
use crate::output::units::{percent, seconds};
use foldhash::{HashMap, HashSet};
use std::io::IsTerminal;

/// Where a table goes: how many rows and columns fit, and whether to style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    /// Rows of data to show; `None` for all.
    pub rows: Option<usize>,
    /// Characters per line; `None` for no limit.
    pub width: Option<usize>,
    pub styled: bool,
}

impl Screen {
    /// The terminal's size when stdout is one (less `header_lines`), else
    /// everything, plain. `rows` (`--rows`) overrides the height.
    pub fn detect(rows: Option<usize>, header_lines: usize) -> Screen {
        let terminal = std::io::stdout().is_terminal();
        let size = if terminal {
            crossterm::terminal::size().ok()
        } else {
            None
        };
        Screen {
            // The header, the titles, the "more" line and the next prompt.
            rows: rows.or(size.map(|(_, h)| (h as usize).saturating_sub(header_lines + 3).max(5))),
            width: size.map(|(w, _)| (w as usize).max(40)),
            styled: terminal,
        }
    }

    /// All rows, no width limit, no style (for tests and files).
    pub fn plain() -> Screen {
        Screen {
            rows: None,
            width: None,
            styled: false,
        }
    }

    /// `line` cut to the width (by characters, with an ellipsis).
    pub fn fit(&self, line: &str) -> String {
        match self.width {
            Some(w) if line.chars().count() > w => {
                let mut cut: String = line.chars().take(w.saturating_sub(1)).collect();
                cut.push('…');
                cut
            }
            _ => line.to_string(),
        }
    }

    /// The column titles' line, bold on a terminal.
    pub fn titles(&self, line: &str) -> String {
        let line = self.fit(line);
        if self.styled {
            format!("\x1b[1m{line}\x1b[0m")
        } else {
            line
        }
    }

    /// The rows that fit, and a line counting those left out.
    pub fn take<'a, T>(&self, rows: &'a [T], what: &str) -> (&'a [T], Option<String>) {
        match self.rows {
            Some(n) if rows.len() > n => (
                &rows[..n],
                Some(format!(
                    "({} more {what}; --rows N shows more)",
                    rows.len() - n
                )),
            ),
            _ => (rows, None),
        }
    }
}

/// One function of `report`'s table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRow {
    /// "name (file:first line)", or without the line under `--nolineno`.
    pub label: String,
    pub own: u64,
    pub total: u64,
}

/// Every function of the profile, by own samples, then total, then label.
pub fn function_rows(profile: &Profile, opts: &RenderOptions) -> Vec<FunctionRow> {
    let by_function = RenderOptions {
        function: true,
        ..opts.clone()
    };
    let mut rows: HashMap<String, (u64, u64)> = HashMap::default();
    let mut labels: HashMap<(i32, u32), String> = HashMap::default();
    let mut names = HashMap::default();
    let mut seen: HashSet<String> = HashSet::default();
    for (thread, node, count) in profile.stacks() {
        let path = profile.tree.path(node);
        if path.is_empty() {
            continue;
        }
        let pid = profile.threads[thread as usize].pid;
        let names = names
            .entry(pid)
            .or_insert_with(|| file_names(profile, pid, &by_function));
        seen.clear();
        for (depth, &id) in path.iter().enumerate() {
            let label = labels
                .entry((pid, id))
                .or_insert_with(|| {
                    ShownFrame::new(profile.frames.get(id), names, &by_function).label()
                })
                .clone();
            // A recursive frame may be on the stack several times; only the
            // innermost place is its own time.
            let own = depth + 1 == path.len();
            let row = rows.entry(label.clone()).or_default();
            if own {
                row.0 += count;
            }
            if seen.insert(label) {
                row.1 += count;
            }
        }
    }
    let mut rows: Vec<FunctionRow> = rows
        .into_iter()
        .map(|(label, (own, total))| FunctionRow { label, own, total })
        .collect();
    rows.sort_by(|a, b| {
        (b.own, b.total)
            .cmp(&(a.own, a.total))
            .then_with(|| a.label.cmp(&b.label))
    });
    rows
}

/// `report`'s table: two header lines, the titles, the rows.
pub fn report_table(
    profile: &Profile,
    opts: &RenderOptions,
    file: &str,
    screen: &Screen,
) -> String {
    let rows = function_rows(profile, opts);
    let total = profile.total_samples();
    let rate = profile.info.rate_hz;
    let time = |samples: u64| {
        if rate > 0.0 {
            seconds(samples as f64 / rate)
        } else {
            format!("{samples}")
        }
    };
    let version = profile
        .processes
        .first()
        .map(|p| format!(" (Python {})", p.python_version))
        .unwrap_or_default();
    let mut text = String::new();
    let mut line = |s: String| {
        text.push_str(&s);
        text.push('\n');
    };
    line(screen.fit(&format!(
        "pysampler report {file}: {}{version}",
        profile.info.command
    )));
    line(screen.fit(&format!(
        "{total} samples at {} Hz over {:.1} s, {} thread(s); {} functions",
        rate,
        profile.info.duration.as_secs_f64(),
        profile.threads.len(),
        rows.len()
    )));
    line(screen.titles(&format!(
        "{:>7} {:>7} {:>9} {:>9}  Function (File:Line)",
        "%Own", "%Total", "OwnTime", "TotalTime"
    )));
    let (shown, more) = screen.take(&rows, "functions");
    for row in shown {
        line(screen.fit(&format!(
            "{:>7} {:>7} {:>9} {:>9}  {}",
            percent(row.own, total),
            percent(row.total, total),
            time(row.own),
            time(row.total),
            row.label
        )));
    }
    if let Some(more) = more {
        line(more);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::render::fixture;

    #[test]
    fn functions_by_own_time_with_totals() {
        let p = fixture::profile();
        let rows = function_rows(&p, &RenderOptions::default());
        let row = |label: &str| rows.iter().find(|r| r.label == label).unwrap().clone();
        assert_eq!(rows[0].label, "spin (busy.py:4)");
        assert_eq!(
            (row("spin (busy.py:4)").own, row("spin (busy.py:4)").total),
            (4, 4)
        );
        assert_eq!(row("<module> (busy.py:1)").own, 0);
        assert_eq!(row("<module> (busy.py:1)").total, 6);
        let nolineno = RenderOptions {
            nolineno: true,
            ..RenderOptions::default()
        };
        assert_eq!(function_rows(&p, &nolineno)[0].label, "spin (busy.py)");
    }

    #[test]
    fn recursion_counts_once() {
        use crate::aggregate::{FrameInfo, ThreadInfo};
        let mut p = Profile::new(false);
        let t = p.thread_index(&ThreadInfo {
            pid: 1,
            tid: Some(1),
            ident: 1,
            name: None,
        });
        let f = p.frames.intern(FrameInfo {
            name: "fib".into(),
            filename: "/a.py".into(),
            line: 3,
            column: 0,
            first_line: 2,
        });
        let second = std::time::Duration::from_secs(1);
        p.add(t, &[f, f, f], second, second);
        let rows = function_rows(&p, &RenderOptions::default());
        assert_eq!(
            rows,
            vec![FunctionRow {
                label: "fib (/a.py:2)".into(),
                own: 1,
                total: 1
            }]
        );
    }

    #[test]
    fn the_table_fits_the_screen() {
        let p = fixture::profile();
        let text = report_table(
            &p,
            &RenderOptions::default(),
            "r.pysampler",
            &Screen::plain(),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "pysampler report r.pysampler: python3 busy.py (Python 3.12.1)"
        );
        assert!(lines[1].starts_with("6 samples at 100 Hz"), "{}", lines[1]);
        assert!(lines[2].contains("%Own") && !text.contains('\x1b'));
        assert_eq!(
            lines[3],
            "  66.7%   66.7%     0.04s     0.04s  spin (busy.py:4)"
        );
        assert_eq!(lines.len(), 6);
        let small = Screen {
            rows: Some(1),
            width: Some(40),
            styled: true,
        };
        let text = report_table(&p, &RenderOptions::default(), "r.pysampler", &small);
        assert!(
            text.contains("(2 more functions; --rows N shows more)"),
            "{text}"
        );
        assert!(
            text.lines()
                .all(|l| l.chars().count() <= 40 || l.contains('\x1b')),
            "{text}"
        );
        assert!(text.contains("\x1b[1m"));
    }
}
