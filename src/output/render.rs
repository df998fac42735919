//! What the output formats of `record` share: how a frame is labelled under
//! the options, and the collapsed (label-merged) stacks. A leaf: the formats
//! use it, `output/mod.rs` chooses among them.

use crate::aggregate::{FrameId, FrameInfo, NodeId, Profile, ThreadIndex};
use crate::output::filenames::FileNames;
use foldhash::HashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Aggregate by function: the line is the function's first line.
    pub function: bool,
    /// No line numbers at all.
    pub nolineno: bool,
    /// A thread frame as the outermost frame (under the process frame).
    pub threads: bool,
    /// Each process is its own root: "process PID: COMMAND LINE".
    pub processes: bool,
    pub full_filenames: bool,
    /// Idle threads or suspended asyncio tasks were sampled: samples are
    /// wall time, not CPU time (pprof's sample type).
    pub idle: bool,
}

/// A frame as the options show it; frames that show the same are merged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShownFrame {
    pub name: String,
    pub file: String,
    /// `None` with `nolineno` or when the line is unknown (0).
    pub line: Option<u32>,
    /// 1-based start column (3.11+); `None` when unknown or when the line
    /// is not shown (`--nolineno`, `--function`). Only speedscope and Chrome
    /// trace show it: labels, and so the aggregating outputs, leave it out.
    pub column: Option<u32>,
}

impl ShownFrame {
    pub fn new(frame: &FrameInfo, names: &FileNames, opts: &RenderOptions) -> ShownFrame {
        let line = if opts.function {
            frame.first_line
        } else {
            frame.line
        };
        let line = (!opts.nolineno && line != 0).then_some(line);
        let with_column = line.is_some() && !opts.function && frame.column != 0;
        ShownFrame {
            name: frame.name.to_string(),
            file: names.show(&frame.filename).to_string(),
            line,
            column: with_column.then_some(frame.column),
        }
    }

    /// "name (file:line)", or "name (file)" without a line.
    pub fn label(&self) -> String {
        match self.line {
            Some(line) => format!("{} ({}:{})", self.name, self.file, line),
            None => format!("{} ({})", self.name, self.file),
        }
    }
}

/// The label of one frame: "name (file:line)", "name (file)" with nolineno,
/// "name (file:first_line)" with function.
pub fn frame_label(frame: &FrameInfo, names: &FileNames, opts: &RenderOptions) -> String {
    ShownFrame::new(frame, names, opts).label()
}

/// How file names of `pid`'s frames are shown.
pub fn file_names(profile: &Profile, pid: i32, opts: &RenderOptions) -> FileNames {
    let cwd = profile.process(pid).and_then(|p| p.cwd.clone());
    FileNames::new(cwd, opts.full_filenames)
}

/// The frames of `node`'s stack (outermost first) as sampled in `thread`.
pub fn shown_stack(
    profile: &Profile,
    thread: ThreadIndex,
    node: NodeId,
    opts: &RenderOptions,
) -> Vec<ShownFrame> {
    let names = file_names(profile, profile.threads[thread as usize].pid, opts);
    let path = profile.tree.path(node);
    path.iter()
        .map(|id| ShownFrame::new(profile.frames.get(*id), &names, opts))
        .collect()
}

/// "process PID: COMMAND LINE" (or "process PID" when the process is unknown).
pub fn process_label(profile: &Profile, pid: i32) -> String {
    match profile.process(pid) {
        Some(p) if !p.command_line.is_empty() => format!("process {pid}: {}", p.command_line),
        _ => format!("process {pid}"),
    }
}

/// Collapsed stacks: one (root-first labels, count) per distinct stack after
/// label merging, sorted by labels. Labels are not escaped here (see
/// `collapsed` for the folded text format). Each label is made once and
/// shared: a long recording has tens of thousands of distinct stacks but
/// only as many labels as frames.
pub fn collapsed_stacks(profile: &Profile, opts: &RenderOptions) -> Vec<(Vec<Arc<str>>, u64)> {
    let mut merged: BTreeMap<Vec<Arc<str>>, u64> = BTreeMap::new();
    let mut names: HashMap<i32, FileNames> = HashMap::default();
    let mut frame_labels: HashMap<(i32, FrameId), Arc<str>> = HashMap::default();
    let mut root_labels: HashMap<(i32, ThreadIndex), Vec<Arc<str>>> = HashMap::default();
    for (thread, node, count) in profile.stacks() {
        let info = &profile.threads[thread as usize];
        let pid = info.pid;
        let mut labels = root_labels
            .entry((pid, thread))
            .or_insert_with(|| {
                let mut roots: Vec<Arc<str>> = Vec::new();
                if opts.processes {
                    roots.push(process_label(profile, pid).into());
                }
                if opts.threads {
                    roots.push(info.label().into());
                }
                roots
            })
            .clone();
        let file_names = names
            .entry(pid)
            .or_insert_with(|| file_names(profile, pid, opts));
        for id in profile.tree.path(node) {
            let label = frame_labels
                .entry((pid, id))
                .or_insert_with(|| frame_label(profile.frames.get(id), file_names, opts).into());
            labels.push(label.clone());
        }
        *merged.entry(labels).or_insert(0) += count;
    }
    merged.into_iter().collect()
}

/// "2.50 s", "120 ms": a short human duration.
pub(crate) fn human_duration(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{:.0} ms", seconds * 1000.0)
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    use crate::aggregate::{FrameInfo, ProcessSummary, Profile, ThreadInfo};
    use std::time::Duration;

    fn frame(name: &str, file: &str, line: u32, first_line: u32) -> FrameInfo {
        FrameInfo {
            name: name.into(),
            filename: file.into(),
            line,
            column: 0,
            first_line,
        }
    }

    /// One process, one thread, 100 Hz: 3 × spin:6, 1 × spin:5, 2 × threading wait.
    pub fn profile() -> Profile {
        build(true)
    }

    pub fn build(keep_timeline: bool) -> Profile {
        let mut p = Profile::new(keep_timeline);
        p.info.command = "python3 busy.py".into();
        p.info.rate_hz = 100.0;
        p.info.duration = Duration::from_millis(60);
        p.info.samples = 6;
        p.processes.push(ProcessSummary {
            pid: 7,
            command_line: "python3 busy.py".into(),
            cwd: Some("/srv".into()),
            python_version: "3.12.1".into(),
        });
        let t = p.thread_index(&ThreadInfo {
            pid: 7,
            tid: Some(7),
            ident: 1,
            name: Some("MainThread".into()),
        });
        let module = p.frames.intern(frame("<module>", "/srv/busy.py", 10, 1));
        let spin6 = p.frames.intern(frame("spin", "/srv/busy.py", 6, 4));
        let spin5 = p.frames.intern(frame("spin", "/srv/busy.py", 5, 4));
        let wait = p
            .frames
            .intern(frame("wait", "/usr/lib/python3.12/threading.py", 320, 300));
        let ms = Duration::from_millis;
        let every = ms(10);
        for (i, stack) in [
            vec![spin6, module],
            vec![spin6, module],
            vec![spin5, module],
            vec![spin6, module],
            vec![wait, module],
            vec![wait, module],
        ]
        .iter()
        .enumerate()
        {
            p.add(t, stack, ms(10 * i as u64), every);
        }
        p.info.samples = p.total_samples();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_options() {
        let f = FrameInfo {
            name: "spin".into(),
            filename: "/srv/busy.py".into(),
            line: 6,
            column: 0,
            first_line: 4,
        };
        let names = FileNames::new(Some("/srv".into()), false);
        let label = |opts: RenderOptions| frame_label(&f, &names, &opts);
        assert_eq!(label(RenderOptions::default()), "spin (busy.py:6)");
        assert_eq!(
            label(RenderOptions {
                function: true,
                ..Default::default()
            }),
            "spin (busy.py:4)"
        );
        assert_eq!(
            label(RenderOptions {
                nolineno: true,
                function: true,
                ..Default::default()
            }),
            "spin (busy.py)"
        );
        let full = file_names(
            &fixture::profile(),
            7,
            &RenderOptions {
                full_filenames: true,
                ..Default::default()
            },
        );
        assert_eq!(
            frame_label(&f, &full, &RenderOptions::default()),
            "spin (/srv/busy.py:6)"
        );
    }

    #[test]
    fn collapsed_stacks_merge_by_label() {
        let p = fixture::profile();
        let stacks = collapsed_stacks(&p, &RenderOptions::default());
        let s = |v: &[&str], n| (v.iter().map(|x| Arc::from(*x)).collect::<Vec<_>>(), n);
        assert_eq!(
            stacks,
            vec![
                s(&["<module> (busy.py:10)", "spin (busy.py:5)"], 1),
                s(&["<module> (busy.py:10)", "spin (busy.py:6)"], 3),
                s(&["<module> (busy.py:10)", "wait (threading.py:320)"], 2),
            ]
        );
        let opts = RenderOptions {
            function: true,
            threads: true,
            processes: true,
            ..Default::default()
        };
        let stacks = collapsed_stacks(&p, &opts);
        let root = [
            "process 7: python3 busy.py",
            "MainThread (7)",
            "<module> (busy.py:1)",
        ];
        assert_eq!(
            stacks[0],
            s(&[&root[..], &["spin (busy.py:4)"]].concat(), 4)
        );
        assert_eq!(stacks.len(), 2);
    }
}
