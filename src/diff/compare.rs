//! Comparing two sides: both normalised to their sampled time (each side's
//! counts as shares of its own samples, so a run twice as long does not look
//! twice as slow), then
//!
//! - the differential flame graph, drawn by inferno from three-column
//!   collapsed stacks "stack FIRST SECOND": widths from SECOND, colour from
//!   SECOND − FIRST (red grew, blue shrank), the change in each tooltip as
//!   points of the whole. FIRST is BEFORE scaled to AFTER's total and SECOND
//!   AFTER; with `--negate` FIRST is AFTER scaled to BEFORE's total and
//!   SECOND BEFORE, with inferno's negation so that red still means "grew"
//!   while the widths show BEFORE (what shrank or disappeared);
//! - `-f raw`: those same three-column lines, which flamegraph.pl and
//!   inferno draw the same way;
//! - the table: each function's own time (innermost frame) before and
//!   after, as shares, largest change first, and the two totals.

use super::Side;
use crate::error::{Error, Result};
use crate::output::table::Screen;
use crate::output::units::seconds;
use std::collections::{BTreeMap, BTreeSet};
use std::io;

/// Refuses two sides that share no frame: comparing them means nothing.
pub fn check_common(before: &Side, after: &Side, lines: bool) -> Result<()> {
    fn frames(s: &Side) -> BTreeSet<&str> {
        s.stacks
            .keys()
            .flat_map(|k| k.iter().map(String::as_str))
            .collect()
    }
    if frames(before).is_disjoint(&frames(after)) {
        return Err(Error::NothingInCommon {
            before: before.name.clone(),
            after: after.name.clone(),
            lines: if lines { " and line" } else { "" },
        });
    }
    Ok(())
}

/// `count` of a side with `from_total` samples, scaled to `to_total`.
fn scaled(count: u64, from_total: u64, to_total: u64) -> u64 {
    if from_total == 0 {
        return 0;
    }
    (count as f64 * to_total as f64 / from_total as f64).round() as u64
}

/// The three-column lines, sorted (see the module docs for the columns).
pub fn diff_lines(before: &Side, after: &Side, negate: bool) -> Vec<String> {
    let (base, width) = if negate {
        (after, before)
    } else {
        (before, after)
    };
    let mut stacks: BTreeMap<&Vec<String>, (u64, u64)> = BTreeMap::new();
    for (stack, n) in &base.stacks {
        stacks.entry(stack).or_default().0 = scaled(*n, base.total, width.total);
    }
    for (stack, n) in &width.stacks {
        stacks.entry(stack).or_default().1 = *n;
    }
    stacks
        .into_iter()
        .filter(|(_, (first, second))| *first > 0 || *second > 0)
        .map(|(stack, (first, second))| format!("{} {first} {second}", stack.join(";")))
        .collect()
}

pub fn write_raw(
    before: &Side,
    after: &Side,
    negate: bool,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    for line in diff_lines(before, after, negate) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

pub fn write_flamegraph(
    before: &Side,
    after: &Side,
    negate: bool,
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let lines = diff_lines(before, after, negate);
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("pysampler diff: {} → {}", before.name, after.name);
    options.subtitle = Some(if negate {
        format!(
            "Widths: before ({} samples). Red grew, blue shrank or is gone in after ({} samples, scaled); the tooltip gives the change in points of the whole.",
            before.total, after.total
        )
    } else {
        format!(
            "Widths: after ({} samples). Red grew, blue shrank since before ({} samples, scaled); the tooltip gives the change in points of the whole.",
            after.total, before.total
        )
    });
    options.count_name = "samples".to_string();
    options.negate_differentials = negate;
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
}

/// One function's own samples on both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub label: String,
    pub before: u64,
    pub after: u64,
    /// Shares of each side's samples, in percent.
    pub before_share: f64,
    pub after_share: f64,
}

impl Change {
    /// After minus before, in percentage points.
    pub fn points(&self) -> f64 {
        self.after_share - self.before_share
    }
}

/// Every function with own samples on either side, largest change first.
pub fn own_changes(before: &Side, after: &Side) -> Vec<Change> {
    let mut own: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (stack, n) in &before.stacks {
        if let Some(leaf) = stack.last() {
            own.entry(leaf).or_default().0 += n;
        }
    }
    for (stack, n) in &after.stacks {
        if let Some(leaf) = stack.last() {
            own.entry(leaf).or_default().1 += n;
        }
    }
    let share = |n: u64, total: u64| {
        if total == 0 {
            0.0
        } else {
            100.0 * n as f64 / total as f64
        }
    };
    let mut changes: Vec<Change> = own
        .into_iter()
        .map(|(label, (b, a))| Change {
            label: label.to_string(),
            before: b,
            after: a,
            before_share: share(b, before.total),
            after_share: share(a, after.total),
        })
        .collect();
    changes.sort_by(|x, y| {
        y.points()
            .abs()
            .total_cmp(&x.points().abs())
            .then_with(|| x.label.cmp(&y.label))
    });
    changes
}

/// "1000 samples (10.00s)".
fn describe(side: &Side) -> String {
    match side.seconds() {
        Some(s) => format!("{} samples ({})", side.total, seconds(s)),
        None => format!("{} samples", side.total),
    }
}

/// The table of own-time changes, with both totals.
pub fn table(before: &Side, after: &Side, screen: &Screen) -> String {
    let changes = own_changes(before, after);
    let mut text = String::new();
    let mut line = |s: String| {
        text.push_str(&s);
        text.push('\n');
    };
    line(screen.fit(&format!("before: {}: {}", before.name, describe(before))));
    line(screen.fit(&format!("after:  {}: {}", after.name, describe(after))));
    line(
        screen.fit(
            "Own time of each function, as a share of each side's samples; largest change first",
        ),
    );
    line(screen.titles(&format!(
        "{:>7} {:>7} {:>8}  Function (File)",
        "Before", "After", "Change"
    )));
    let (shown, more) = screen.take(&changes, "functions");
    for c in shown {
        line(screen.fit(&format!(
            "{:>6.1}% {:>6.1}% {:>+8.1}  {}",
            c.before_share,
            c.after_share,
            c.points(),
            c.label
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

    fn side(name: &str, stacks: &[(&str, u64)]) -> Side {
        Side::from_stacks(
            name,
            stacks
                .iter()
                .map(|(s, n)| (s.split(';').map(str::to_string).collect::<Vec<_>>(), *n)),
            false,
        )
    }

    #[test]
    fn shares_move_and_widths_come_from_the_right_side() {
        let before = side(
            "b",
            &[
                ("main (m.py:1);a (m.py:5)", 300),
                ("main (m.py:1);b (m.py:9)", 100),
            ],
        );
        let after = side(
            "a",
            &[
                ("main (m.py:2);a (m.py:5)", 50),
                ("main (m.py:2);b (m.py:9)", 150),
            ],
        );
        check_common(&before, &after, false).unwrap();
        let changes = own_changes(&before, &after);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].label, "a (m.py)");
        assert!((changes[0].points() + 50.0).abs() < 1e-9);
        assert!((changes[1].points() - 50.0).abs() < 1e-9);
        // before scaled to after's 200 samples: 150 and 50.
        assert_eq!(
            diff_lines(&before, &after, false),
            vec!["main (m.py);a (m.py) 150 50", "main (m.py);b (m.py) 50 150"]
        );
        assert_eq!(
            diff_lines(&before, &after, true),
            vec![
                "main (m.py);a (m.py) 100 300",
                "main (m.py);b (m.py) 300 100"
            ]
        );
        let table = table(&before, &after, &Screen::plain());
        assert!(table.contains("before: b: 400 samples"), "{table}");
        assert!(
            table.contains("  75.0%   25.0%    -50.0  a (m.py)"),
            "{table}"
        );
        assert!(
            table.contains("  25.0%   75.0%    +50.0  b (m.py)"),
            "{table}"
        );
        let mut svg = Vec::new();
        write_flamegraph(&before, &after, false, &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(
            svg.contains("a (m.py) (50 samples, 25.00%; -50.00%)"),
            "{svg}"
        );
    }

    #[test]
    fn nothing_in_common_is_an_error() {
        let before = side("b", &[("x (a.py:1)", 3)]);
        let after = side("a", &[("y (b.py:1)", 3)]);
        let err = check_common(&before, &after, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("b and a have no function in common"), "{err}");
    }
}
