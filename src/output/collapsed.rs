//! The "raw" format: collapsed (folded) stacks, one `a;b;c 42` line per
//! distinct stack, root first, as flamegraph.pl, inferno and speedscope read
//! them.
//!
//! Escaping, so that every label survives the round trip as one frame:
//! - `;` (the frame separator) becomes `,`;
//! - control characters (newlines, tabs, ...) become spaces;
//! - surrounding whitespace is trimmed, and an empty label becomes `?`;
//! - readers take a trailing number after a space as a count (and a second
//!   one as a differential count), so a label whose last word is a number
//!   ("thread 140") has that space replaced by a no-break space (U+00A0);
//! - readers skip lines starting with `# `, so a label starting with `# `
//!   has that space replaced by a no-break space too.
//!
//! Labels are escaped the same way wherever they appear, so equal frames stay
//! equal. Samples with an empty stack (no Python frame, and no thread or
//! process frame asked for) have no line.

use crate::aggregate::Profile;
use crate::output::render::{collapsed_stacks, RenderOptions};
use std::io;

const NBSP: char = '\u{a0}';

/// A label made safe for the folded format (see the module docs).
pub fn escape_label(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .map(|c| match c {
            ';' => ',',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let mut label = cleaned.trim().to_string();
    if label.is_empty() {
        return "?".to_string();
    }
    if let Some(space) = label.rfind(' ') {
        let last_word = &label[space + 1..];
        if last_word.chars().all(|c| c.is_ascii_digit() || c == '.') {
            label.replace_range(space..space + 1, &NBSP.to_string());
        }
    }
    if label.starts_with("# ") {
        label.replace_range(1..2, &NBSP.to_string());
    }
    label
}

/// One folded line (without newline) for a stack of unescaped labels.
pub fn fold<S: AsRef<str>>(labels: &[S], count: u64) -> String {
    let stack: Vec<String> = labels.iter().map(|l| escape_label(l.as_ref())).collect();
    format!("{} {count}", stack.join(";"))
}

/// The folded lines of `profile`, sorted.
pub fn lines(profile: &Profile, opts: &RenderOptions) -> Vec<String> {
    collapsed_stacks(profile, opts)
        .iter()
        .filter(|(labels, count)| !labels.is_empty() && *count > 0)
        .map(|(labels, count)| fold(labels, *count))
        .collect()
}

/// Writes the folded lines one by one (never all of them in memory at once).
pub fn write(profile: &Profile, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
    for (labels, count) in collapsed_stacks(profile, opts) {
        if !labels.is_empty() && count > 0 {
            writeln!(out, "{}", fold(&labels, count))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::render::fixture;

    #[test]
    fn escapes_what_readers_would_misread() {
        assert_eq!(escape_label("f (a;b.py:3)"), "f (a,b.py:3)");
        assert_eq!(escape_label(" two\nlines\t"), "two lines");
        assert_eq!(escape_label("thread 140"), "thread\u{a0}140");
        assert_eq!(
            escape_label("process 1: python x.py 2.5"),
            "process 1: python x.py\u{a0}2.5"
        );
        assert_eq!(escape_label("# note"), "#\u{a0}note");
        assert_eq!(escape_label(" \n"), "?");
        assert_eq!(escape_label("spin (busy.py:6)"), "spin (busy.py:6)");
    }

    #[test]
    fn writes_sorted_lines() {
        let mut out = Vec::new();
        write(&fixture::profile(), &RenderOptions::default(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<module> (busy.py:10);spin (busy.py:5) 1\n\
             <module> (busy.py:10);spin (busy.py:6) 3\n\
             <module> (busy.py:10);wait (threading.py:320) 2\n"
        );
    }

    #[test]
    fn inferno_reads_it() {
        let opts = RenderOptions {
            threads: true,
            processes: true,
            ..Default::default()
        };
        let lines = lines(&fixture::profile(), &opts);
        let mut svg = Vec::new();
        let mut o = inferno::flamegraph::Options::default();
        inferno::flamegraph::from_lines(&mut o, lines.iter().map(String::as_str), &mut svg)
            .unwrap();
        assert!(String::from_utf8(svg)
            .unwrap()
            .contains("total_samples=\"6\""));
    }
}
