//! The table's rows: one per function, its share of the shown window
//! (%Own, %Total) and its time since start (OwnTime, TotalTime), as in
//! py-spy's top; sorting and the text of each cell.

use crate::output::filenames::FileNames;
pub use crate::output::units::{percent, seconds};
use crate::top::stats::{Counts, FunctionId, Functions, ThreadId, Window};
use std::cmp::Ordering;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    OwnPercent,
    TotalPercent,
    OwnTime,
    TotalTime,
}

impl Column {
    pub const ALL: [Column; 4] = [
        Column::OwnPercent,
        Column::TotalPercent,
        Column::OwnTime,
        Column::TotalTime,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::OwnPercent => "%Own",
            Column::TotalPercent => "%Total",
            Column::OwnTime => "OwnTime",
            Column::TotalTime => "TotalTime",
        }
    }

    /// Keys 1-4.
    pub fn from_digit(digit: char) -> Option<Column> {
        let index = digit.to_digit(10)?.checked_sub(1)?;
        Column::ALL.get(index as usize).copied()
    }
}

/// Largest first, unless reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: Column,
    pub reverse: bool,
}

impl Default for Sort {
    fn default() -> Sort {
        Sort {
            column: Column::OwnPercent,
            reverse: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub function: FunctionId,
    /// In the shown window (the last interval, or since start).
    pub window: Counts,
    /// Since start.
    pub overall: Counts,
}

/// Rows for every function seen since start (by `thread`, if given), sorted.
pub fn rows(
    window: &Window,
    cumulative: &Window,
    thread: Option<ThreadId>,
    sort: Sort,
    functions: &Functions,
) -> Vec<Row> {
    let in_window = window.by_function(thread);
    let mut rows: Vec<Row> = cumulative
        .by_function(thread)
        .into_iter()
        .map(|(function, overall)| Row {
            function,
            window: in_window.get(&function).copied().unwrap_or_default(),
            overall,
        })
        .collect();
    rows.sort_by(|a, b| {
        let order = compare(a, b, sort.column).then_with(|| by_name(a, b, functions));
        if sort.reverse {
            order.reverse()
        } else {
            order
        }
    });
    rows
}

/// Largest first on the column, then on the other counts.
fn compare(a: &Row, b: &Row, column: Column) -> Ordering {
    let key = |r: &Row| match column {
        Column::OwnPercent => (r.window.own, r.window.total, r.overall.own),
        Column::TotalPercent => (r.window.total, r.window.own, r.overall.total),
        Column::OwnTime => (r.overall.own, r.overall.total, r.window.own),
        Column::TotalTime => (r.overall.total, r.overall.own, r.window.total),
    };
    key(b).cmp(&key(a))
}

fn by_name(a: &Row, b: &Row, functions: &Functions) -> Ordering {
    let (fa, fb) = (functions.get(a.function), functions.get(b.function));
    (&fa.name, &fa.filename, fa.first_line).cmp(&(&fb.name, &fb.filename, fb.first_line))
}

/// How rows become text.
pub struct Cells<'a> {
    pub functions: &'a Functions,
    pub file_names: &'a FileNames,
    /// Ticks in the shown window: 100%.
    pub window_ticks: u64,
    /// Time one sample stands for.
    pub sample_time: Duration,
}

impl Cells<'_> {
    /// %Own, %Total, OwnTime, TotalTime, "function (file:line)".
    pub fn texts(&self, row: &Row) -> [String; 5] {
        [
            percent(row.window.own, self.window_ticks),
            percent(row.window.total, self.window_ticks),
            self.time(row.overall.own),
            self.time(row.overall.total),
            self.function(row.function),
        ]
    }

    pub fn function(&self, id: FunctionId) -> String {
        let f = self.functions.get(id);
        let file = self.file_names.show(&f.filename);
        match f.first_line {
            0 => format!("{} ({file})", f.name),
            line => format!("{} ({file}:{line})", f.name),
        }
    }

    fn time(&self, samples: u64) -> String {
        seconds(self.sample_time.as_secs_f64() * samples as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::stats::{Function, Stack};

    /// Functions 0 = <module>, 1 = hot, 2 = warm; a window where <module>
    /// calls hot in 3 ticks and warm in 1.
    fn setup() -> (Functions, Window) {
        let mut functions = Functions::default();
        for name in ["<module>", "hot", "warm"] {
            functions.intern(Function {
                name: name.into(),
                filename: "t.py".into(),
                first_line: 1,
            });
        }
        let mut w = Window::default();
        let tick = |w: &mut Window, fs: &[FunctionId]| {
            w.add_tick(
                1,
                &[Stack {
                    thread: 0,
                    active: true,
                    owns_gil: true,
                    functions: fs,
                }],
            )
        };
        for _ in 0..3 {
            tick(&mut w, &[1, 0]);
        }
        tick(&mut w, &[2, 0]);
        (functions, w)
    }

    fn order(rows: &[Row]) -> Vec<FunctionId> {
        rows.iter().map(|r| r.function).collect()
    }

    #[test]
    fn sorts_by_each_column_and_reverses() {
        let (functions, w) = setup();
        let sort = |column, reverse| Sort { column, reverse };
        let own = rows(&w, &w, None, sort(Column::OwnPercent, false), &functions);
        assert_eq!(order(&own), vec![1, 2, 0]);
        let total = rows(&w, &w, None, sort(Column::TotalPercent, false), &functions);
        assert_eq!(order(&total), vec![0, 1, 2]);
        let reversed = rows(&w, &w, None, sort(Column::TotalTime, true), &functions);
        assert_eq!(order(&reversed), vec![2, 1, 0]);
    }

    #[test]
    fn percentages_come_from_the_window_and_times_from_the_start() {
        let (functions, cumulative) = setup();
        let empty = Window::default();
        // An interval without samples: every function still listed, at 0%.
        let r = rows(&empty, &cumulative, None, Sort::default(), &functions);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|r| r.window == Counts::default()));
        let cells = Cells {
            functions: &functions,
            file_names: &FileNames::new(None, false),
            window_ticks: cumulative.ticks(),
            sample_time: Duration::from_millis(10),
        };
        let r = rows(&cumulative, &cumulative, None, Sort::default(), &functions);
        assert_eq!(
            cells.texts(&r[0]),
            ["75.0%", "75.0%", "0.03s", "0.03s", "hot (t.py:1)"].map(String::from)
        );
    }

    #[test]
    fn keys_pick_columns() {
        assert_eq!(Column::from_digit('1'), Some(Column::OwnPercent));
        assert_eq!(Column::from_digit('4'), Some(Column::TotalTime));
        assert_eq!(Column::from_digit('0'), None);
        assert_eq!(Column::from_digit('5'), None);
    }

    #[test]
    fn formats() {}
}
