//! speedscope's file format (https://www.speedscope.app/file-format-schema.json):
//! one "sampled" profile per thread, frames shared.
//!
//! With a timeline, a thread's samples are in time order: each run of
//! identical samples (after label merging) is one sample whose weight is the
//! run's length in seconds (samples / rate). Idle gaps between runs are not
//! shown (a sampled profile has no timestamps). Without a timeline, each
//! distinct stack is one sample weighted by its total count, in stack order.
//! Weights are in seconds; only a rate of 0 (never recorded) falls back to
//! unit "none" with weights in samples. The thread and process options add
//! nothing here: every thread is its own profile, named as py-spy names them
//! (scripts that read py-spy's files match these names): `Thread 4242
//! "MainThread"`, or `Process 4240 Thread 4242 "MainThread"` when more than
//! one process was recorded. The thread id is the OS's, in decimal; a thread
//! whose OS id is unknown shows Python's `threading.get_ident()` in hex
//! instead (`Thread 0x7f03…`, as `dump` does), and a nameless thread is just
//! `Thread 4301`.

use crate::aggregate::{NodeId, Profile, ThreadIndex};
use crate::output::render::{shown_stack, RenderOptions, ShownFrame};
use serde::Serialize;
use std::collections::HashMap;
use std::io;

const SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(rename = "$schema")]
    schema: &'static str,
    shared: Shared,
    profiles: Vec<SampledProfile>,
    name: String,
    active_profile_index: usize,
    exporter: String,
}

#[derive(Serialize)]
struct Shared {
    frames: Vec<Frame>,
}

#[derive(Serialize)]
struct Frame {
    name: String,
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    /// 1-based, where CPython records it (3.11+).
    #[serde(skip_serializing_if = "Option::is_none")]
    col: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SampledProfile {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    unit: &'static str,
    start_value: f64,
    end_value: f64,
    samples: Vec<Vec<usize>>,
    weights: Vec<f64>,
}

/// Frames interned by how they are shown.
#[derive(Default)]
struct Frames {
    list: Vec<Frame>,
    ids: HashMap<ShownFrame, usize>,
    /// Stacks already converted, by (pid, node): file names depend on the process.
    stacks: HashMap<(i32, NodeId), Vec<usize>>,
}

impl Frames {
    fn stack(
        &mut self,
        profile: &Profile,
        thread: ThreadIndex,
        node: NodeId,
        opts: &RenderOptions,
    ) -> Vec<usize> {
        let key = (profile.threads[thread as usize].pid, node);
        if let Some(stack) = self.stacks.get(&key) {
            return stack.clone();
        }
        let shown = shown_stack(profile, thread, node, opts);
        let stack: Vec<usize> = shown.into_iter().map(|f| self.intern(f)).collect();
        self.stacks.insert(key, stack.clone());
        stack
    }

    fn intern(&mut self, f: ShownFrame) -> usize {
        if let Some(id) = self.ids.get(&f) {
            return *id;
        }
        let id = self.list.len();
        self.list.push(Frame {
            name: f.name.clone(),
            file: f.file.clone(),
            line: f.line,
            col: f.column,
        });
        self.ids.insert(f, id);
        id
    }
}

/// (stack, samples) of one thread: runs in time order, or aggregate counts.
fn thread_samples(
    profile: &Profile,
    thread: ThreadIndex,
    opts: &RenderOptions,
    frames: &mut Frames,
) -> Vec<(Vec<usize>, u64)> {
    let mut samples: Vec<(Vec<usize>, u64)> = Vec::new();
    if profile.has_timeline() {
        for run in profile.runs(thread) {
            let stack = frames.stack(profile, thread, run.node, opts);
            match samples.last_mut() {
                Some((last, n)) if *last == stack => *n += u64::from(run.samples),
                _ => samples.push((stack, u64::from(run.samples))),
            }
        }
    } else {
        let mut merged: HashMap<Vec<usize>, u64> = HashMap::new();
        for (t, node, count) in profile.stacks() {
            if t == thread {
                *merged
                    .entry(frames.stack(profile, thread, node, opts))
                    .or_insert(0) += count;
            }
        }
        samples = merged.into_iter().collect();
        samples.sort_unstable();
    }
    samples
}

fn profile_name(profile: &Profile, thread: ThreadIndex) -> String {
    let info = &profile.threads[thread as usize];
    let several = profile.threads.iter().any(|t| t.pid != info.pid) || profile.processes.len() > 1;
    let id = info.name().id();
    let name = match &info.name {
        Some(name) => format!("Thread {id} \"{name}\""),
        None => format!("Thread {id}"),
    };
    if several {
        format!("Process {} {name}", info.pid)
    } else {
        name
    }
}

pub fn write(profile: &Profile, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
    let rate = profile.info.rate_hz;
    let (unit, per_sample) = if rate > 0.0 {
        ("seconds", 1.0 / rate)
    } else {
        ("none", 1.0)
    };
    let mut frames = Frames::default();
    let mut profiles = Vec::new();
    for thread in 0..profile.threads.len() as ThreadIndex {
        let samples = thread_samples(profile, thread, opts, &mut frames);
        if samples.is_empty() {
            continue;
        }
        let weights: Vec<f64> = samples
            .iter()
            .map(|(_, n)| *n as f64 * per_sample)
            .collect();
        profiles.push(SampledProfile {
            kind: "sampled",
            name: profile_name(profile, thread),
            unit,
            start_value: 0.0,
            end_value: weights.iter().sum(),
            samples: samples.into_iter().map(|(s, _)| s).collect(),
            weights,
        });
    }
    if profiles.is_empty() {
        // speedscope needs a profile to show; an empty one says "no samples".
        profiles.push(SampledProfile {
            kind: "sampled",
            name: "no samples".to_string(),
            unit,
            start_value: 0.0,
            end_value: 0.0,
            samples: Vec::new(),
            weights: Vec::new(),
        });
    }
    let file = File {
        schema: SCHEMA,
        shared: Shared {
            frames: frames.list,
        },
        profiles,
        name: profile.info.command.clone(),
        active_profile_index: 0,
        exporter: format!("pysampler {}", env!("CARGO_PKG_VERSION")),
    };
    serde_json::to_writer(&mut *out, &file).map_err(io::Error::from)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::render::fixture;
    use serde_json::{json, Value};

    fn render(profile: &Profile, opts: &RenderOptions) -> Value {
        let mut out = Vec::new();
        write(profile, opts, &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn timeline_runs_become_weighted_samples() {
        let v = render(&fixture::profile(), &RenderOptions::default());
        assert_eq!(v["$schema"], SCHEMA);
        assert_eq!(v["name"], "python3 busy.py");
        let frames = &v["shared"]["frames"];
        assert_eq!(
            frames[0],
            json!({"name": "<module>", "file": "busy.py", "line": 10})
        );
        let p = &v["profiles"][0];
        assert_eq!(p["name"], "Thread 7 \"MainThread\"");
        assert_eq!(p["unit"], "seconds");
        // spin:6 ×2, spin:5, spin:6, wait ×2
        assert_eq!(p["samples"], json!([[0, 1], [0, 2], [0, 1], [0, 3]]));
        assert_eq!(p["weights"], json!([0.02, 0.01, 0.01, 0.02]));
        assert!((p["endValue"].as_f64().unwrap() - 0.06).abs() < 1e-12);
    }

    #[test]
    fn function_option_merges_runs_and_no_timeline_uses_counts() {
        let opts = RenderOptions {
            function: true,
            ..Default::default()
        };
        let v = render(&fixture::profile(), &opts);
        assert_eq!(v["profiles"][0]["samples"], json!([[0, 1], [0, 2]]));
        assert_eq!(v["profiles"][0]["weights"], json!([0.04, 0.02]));

        let v = render(&fixture::build(false), &RenderOptions::default());
        assert_eq!(v["profiles"][0]["samples"].as_array().unwrap().len(), 3);
        let total: f64 = v["profiles"][0]["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_f64().unwrap())
            .sum();
        assert!((total - 0.06).abs() < 1e-12);
    }

    #[test]
    fn empty_profile_has_one_empty_profile() {
        let v = render(&Profile::new(true), &RenderOptions::default());
        assert_eq!(v["profiles"].as_array().unwrap().len(), 1);
        assert_eq!(v["profiles"][0]["samples"], json!([]));
    }
}
