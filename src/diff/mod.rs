//! `diff`: two profiles of the same program, before and after a change.
//! Each side is read as collapsed stacks — from a recording (replayed with
//! `report`'s default view) or from a collapsed-stacks file — with frames
//! named by function and file, line numbers dropped unless `--lines`, so a
//! function that moved a few lines still matches. `compare` does the rest.

pub mod compare;

use crate::error::{Error, Result};
use crate::output::collapsed::escape_label;
use crate::output::render::{collapsed_stacks, RenderOptions};
use crate::recording::replay::{self, Filters};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Largest collapsed-stacks file read.
const MAX_TEXT_BYTES: u64 = 1 << 30;

/// One side of a comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Side {
    /// The file, as given.
    pub name: String,
    /// Root-first frame labels (escaped as in collapsed files) → samples.
    pub stacks: BTreeMap<Vec<String>, u64>,
    pub total: u64,
    /// Samples per second, for a recording (collapsed files do not say).
    pub rate_hz: Option<f64>,
}

impl Side {
    /// A side from (labels, samples) pairs, lines dropped unless `lines`.
    pub fn from_stacks<I, S>(name: &str, stacks: I, lines: bool) -> Side
    where
        I: IntoIterator<Item = (Vec<S>, u64)>,
        S: AsRef<str>,
    {
        let mut side = Side {
            name: name.to_string(),
            ..Side::default()
        };
        for (labels, count) in stacks {
            if labels.is_empty() || count == 0 {
                continue;
            }
            let labels: Vec<String> = labels
                .iter()
                .map(|l| {
                    let l = escape_label(l.as_ref());
                    if lines {
                        l
                    } else {
                        without_line(&l).to_string()
                    }
                })
                .collect();
            *side.stacks.entry(labels).or_insert(0) += count;
            side.total += count;
        }
        side
    }

    /// Sampled seconds, when the rate is known.
    pub fn seconds(&self) -> Option<f64> {
        self.rate_hz
            .filter(|r| *r > 0.0)
            .map(|r| self.total as f64 / r)
    }
}

/// "name (file:12)" → "name (file)"; other labels as they are.
pub fn without_line(label: &str) -> String {
    let Some(body) = label.strip_suffix(')') else {
        return label.to_string();
    };
    let Some(open) = body.rfind(" (") else {
        return label.to_string();
    };
    let inside = &body[open + 2..];
    match inside.rsplit_once(':') {
        Some((file, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{} ({file})", &body[..open])
        }
        _ => label.to_string(),
    }
}

/// Reads `path`: a recording, or collapsed stacks ("a;b;c 12" lines).
pub fn load(path: &Path, lines: bool) -> Result<Side> {
    let name = path.display().to_string();
    let mut file = std::fs::File::open(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
    let mut start = [0u8; 8];
    let got = file.read(&mut start).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
    let is_recording = got > 0 && start[..got] == crate::recording::MAGIC[..got];
    let side = if is_recording {
        let replayed = replay::load(path, &Filters::default(), false)?;
        for notice in replayed.notices(&name, &Filters::default()) {
            eprintln!("pysampler: {notice}");
        }
        let opts = RenderOptions {
            nolineno: !lines,
            ..RenderOptions::default()
        };
        let mut side = Side::from_stacks(&name, collapsed_stacks(&replayed.profile, &opts), lines);
        side.rate_hz = Some(replayed.header.rate_hz);
        side
    } else {
        let mut text = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_TEXT_BYTES).read_to_end(&mut text))
            .map_err(|source| Error::File {
                path: path.to_path_buf(),
                source,
            })?;
        let stacks = parse_collapsed(&text).map_err(|why| Error::BadRecording {
            message: format!(
                "{name} is neither a pysampler recording nor collapsed stacks ({why})"
            ),
        })?;
        Side::from_stacks(&name, stacks, lines)
    };
    if side.total == 0 {
        return Err(Error::NoMatchingSamples {
            message: format!("{name} holds no samples to compare"),
        });
    }
    Ok(side)
}

/// Collapsed stacks: "frame;frame;frame COUNT" per line; blank lines and
/// `# ` comments skipped. Anything else is an error naming the line.
pub fn parse_collapsed(text: &[u8]) -> std::result::Result<Vec<(Vec<String>, u64)>, String> {
    let text = std::str::from_utf8(text)
        .map_err(|e| format!("byte {} is not UTF-8 text", e.valid_up_to()))?;
    let mut stacks = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with("# ") {
            continue;
        }
        let shown: String = line.chars().take(60).collect();
        let (stack, count) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("line {}, {shown:?}, has no count at its end", n + 1))?;
        let count: u64 = count
            .parse()
            .map_err(|_| format!("line {}, {shown:?}, does not end in a count", n + 1))?;
        if stack.is_empty() {
            return Err(format!("line {}, {shown:?}, has no stack", n + 1));
        }
        stacks.push((stack.split(';').map(str::to_string).collect(), count));
    }
    Ok(stacks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_off_labels_that_have_them() {
        assert_eq!(without_line("spin (busy.py:12)"), "spin (busy.py)");
        assert_eq!(without_line("spin (busy.py)"), "spin (busy.py)");
        assert_eq!(without_line("f (C:/x.py:3)"), "f (C:/x.py)");
        assert_eq!(
            without_line("process 12: python a.py"),
            "process 12: python a.py"
        );
        assert_eq!(without_line("MainThread (1234)"), "MainThread (1234)");
        assert_eq!(without_line("g (a.py:)"), "g (a.py:)");
    }

    #[test]
    fn collapsed_text_is_read_strictly() {
        let stacks = parse_collapsed(b"# comment\na;b 3\n\na;c (x.py:4) 1\n").unwrap();
        assert_eq!(stacks.len(), 2);
        assert_eq!(stacks[1].0, vec!["a", "c (x.py:4)"]);
        let side = Side::from_stacks("x", stacks, false);
        assert_eq!(side.total, 4);
        assert!(side
            .stacks
            .contains_key(&vec!["a".to_string(), "c (x.py)".to_string()]));
        assert!(parse_collapsed(b"a;b\n").unwrap_err().contains("line 1"));
        assert!(parse_collapsed(b"a;b 3\na;b x\n")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_collapsed(b"\xff\xfe").unwrap_err().contains("UTF-8"));
    }
}
