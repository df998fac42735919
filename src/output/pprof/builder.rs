//! Building the pprof messages from a profile: strings, functions and
//! locations each stored once and referred to by index or id.

use super::proto;
use crate::aggregate::{FrameId, FrameTable, Profile, ThreadIndex};
use crate::output::filenames::FileNames;
use crate::output::render::{file_names, RenderOptions};
use foldhash::HashMap;

/// Samples are worth one period each; a rate of 0 (never recorded) counts 1 ns.
fn period_nanos(rate_hz: f64) -> i64 {
    if rate_hz > 0.0 {
        (1e9 / rate_hz).round().max(1.0) as i64
    } else {
        1
    }
}

#[derive(Default)]
struct Builder {
    out: proto::Profile,
    strings: HashMap<String, i64>,
    /// (name, file, first line) → function id.
    functions: HashMap<(i64, i64, i64), u64>,
    /// (function id, line, column) → location id.
    locations: HashMap<(u64, i64, i64), u64>,
    /// (pid, frame) → location id: file names depend on the process.
    frames: HashMap<(i32, FrameId), u64>,
    names: HashMap<i32, FileNames>,
}

impl Builder {
    fn string(&mut self, s: &str) -> i64 {
        if let Some(i) = self.strings.get(s) {
            return *i;
        }
        let i = self.out.string_table.len() as i64;
        self.out.string_table.push(s.to_string());
        self.strings.insert(s.to_string(), i);
        i
    }

    fn value_type(&mut self, kind: &str, unit: &str) -> proto::ValueType {
        proto::ValueType {
            r#type: self.string(kind),
            unit: self.string(unit),
        }
    }

    fn location(
        &mut self,
        profile: &Profile,
        frames: &FrameTable,
        pid: i32,
        id: FrameId,
        opts: &RenderOptions,
    ) -> u64 {
        if let Some(loc) = self.frames.get(&(pid, id)) {
            return *loc;
        }
        let frame = frames.get(id);
        let file = self
            .names
            .entry(pid)
            .or_insert_with(|| file_names(profile, pid, opts))
            .show(&frame.filename)
            .to_string();
        let name = self.string(&frame.name);
        let file = self.string(&file);
        let start_line = i64::from(frame.first_line);
        let next_function = self.out.function.len() as u64 + 1;
        let function = *self
            .functions
            .entry((name, file, start_line))
            .or_insert(next_function);
        if function == next_function {
            self.out.function.push(proto::Function {
                id: function,
                name,
                // Left empty: Go's pprof "demangles" a system name equal to the
                // name, and turns "<module>" into "".
                system_name: 0,
                filename: file,
                start_line,
            });
        }
        // The column (3.11+, 1-based, 0 unknown) only where lines are kept.
        let (line, column) = match (opts.nolineno, opts.function) {
            (true, _) => (0, 0),
            (false, true) => (start_line, 0),
            (false, false) => (i64::from(frame.line), i64::from(frame.column)),
        };
        let next_location = self.out.location.len() as u64 + 1;
        let location = *self
            .locations
            .entry((function, line, column))
            .or_insert(next_location);
        if location == next_location {
            self.out.location.push(proto::Location {
                id: location,
                line: vec![proto::Line {
                    function_id: function,
                    line,
                    column,
                }],
                ..Default::default()
            });
        }
        self.frames.insert((pid, id), location);
        location
    }

    fn labels(&mut self, profile: &Profile, thread: ThreadIndex) -> Vec<proto::Label> {
        let info = &profile.threads[thread as usize];
        let mut labels = vec![proto::Label {
            key: self.string("pid"),
            num: i64::from(info.pid),
            ..Default::default()
        }];
        if let Some(tid) = info.tid {
            labels.push(proto::Label {
                key: self.string("thread_id"),
                num: i64::from(tid),
                ..Default::default()
            });
        }
        if let Some(name) = info.name.clone() {
            labels.push(proto::Label {
                key: self.string("thread_name"),
                str: self.string(&name),
                ..Default::default()
            });
        }
        labels
    }
}

/// `frames` is the profile's own table, or (for Pyroscope's windows) the
/// session's, which the window's frame ids refer to.
pub fn build(profile: &Profile, frames: &FrameTable, opts: &RenderOptions) -> proto::Profile {
    let mut b = Builder::default();
    b.string("");
    let period = period_nanos(profile.info.rate_hz);
    let time = if opts.idle { "wall" } else { "cpu" };
    let count = b.value_type("samples", "count");
    let nanos = b.value_type(time, "nanoseconds");
    b.out.default_sample_type = nanos.r#type;
    b.out.period_type = Some(nanos.clone());
    b.out.sample_type = vec![count, nanos];
    b.out.period = period;
    b.out.time_nanos = (profile.info.start_unix * 1e9) as i64;
    b.out.duration_nanos = i64::try_from(profile.info.duration.as_nanos()).unwrap_or(i64::MAX);
    let comment = format!(
        "pysampler {}: {}",
        env!("CARGO_PKG_VERSION"),
        profile.info.command
    );
    let comment = b.string(&comment);
    b.out.comment.push(comment);
    let mut thread_labels: HashMap<ThreadIndex, Vec<proto::Label>> = HashMap::default();
    for (thread, node, samples) in profile.stacks() {
        let pid = profile.threads[thread as usize].pid;
        let path = profile.tree.path(node);
        if path.is_empty() {
            // A thread seen without a Python frame: nothing to show.
            continue;
        }
        let location_id = path
            .iter()
            .rev()
            .map(|id| b.location(profile, frames, pid, *id, opts))
            .collect();
        let label = match thread_labels.get(&thread) {
            Some(labels) => labels.clone(),
            None => {
                let labels = b.labels(profile, thread);
                thread_labels.insert(thread, labels.clone());
                labels
            }
        };
        let samples = i64::try_from(samples).unwrap_or(i64::MAX);
        b.out.sample.push(proto::Sample {
            location_id,
            value: vec![samples, samples.saturating_mul(period)],
            label,
        });
    }
    b.out
}
