use super::*;
use crate::output::render::fixture;
use flate2::read::GzDecoder;
use std::io::Read;

fn decode(profile: &Profile, opts: &RenderOptions) -> proto::Profile {
    let mut out = Vec::new();
    write(profile, opts, &mut out).unwrap();
    let mut raw = Vec::new();
    GzDecoder::new(&out[..]).read_to_end(&mut raw).unwrap();
    proto::Profile::decode(&raw[..]).unwrap()
}

fn s(p: &proto::Profile, i: i64) -> &str {
    &p.string_table[i as usize]
}

type Frames = Vec<(String, i64)>;

/// (function, line) of each frame of a sample, innermost first.
fn frames(p: &proto::Profile, sample: &proto::Sample) -> Frames {
    sample
        .location_id
        .iter()
        .map(|id| {
            let loc = &p.location[*id as usize - 1];
            assert_eq!(loc.id, *id);
            let line = &loc.line[0];
            let f = &p.function[line.function_id as usize - 1];
            (s(p, f.name).to_string(), line.line)
        })
        .collect()
}

#[test]
fn types_period_and_stacks() {
    let p = decode(&fixture::profile(), &RenderOptions::default());
    assert_eq!(p.string_table[0], "");
    let types: Vec<_> = p
        .sample_type
        .iter()
        .map(|t| (s(&p, t.r#type), s(&p, t.unit)))
        .collect();
    assert_eq!(types, [("samples", "count"), ("cpu", "nanoseconds")]);
    assert_eq!(p.period, 10_000_000);
    assert_eq!(s(&p, p.period_type.as_ref().unwrap().r#type), "cpu");
    assert_eq!(p.duration_nanos, 60_000_000);
    let mut seen: Vec<(Frames, Vec<i64>)> = p
        .sample
        .iter()
        .map(|x| (frames(&p, x), x.value.clone()))
        .collect();
    seen.sort();
    let f = |n: &str, l| (n.to_string(), l);
    assert_eq!(
        seen,
        vec![
            (vec![f("spin", 5), f("<module>", 10)], vec![1, 10_000_000]),
            (vec![f("spin", 6), f("<module>", 10)], vec![3, 30_000_000]),
            (vec![f("wait", 320), f("<module>", 10)], vec![2, 20_000_000]),
        ]
    );
    // spin:5 and spin:6 are one function, two locations.
    assert_eq!(p.function.len(), 3);
    assert_eq!(p.location.len(), 4);
    let spin = p.function.iter().find(|f| s(&p, f.name) == "spin").unwrap();
    assert_eq!(s(&p, spin.filename), "busy.py");
    assert_eq!(spin.start_line, 4);
    // Strings are stored once.
    let mut table = p.string_table.clone();
    table.sort();
    table.dedup();
    assert_eq!(table.len(), p.string_table.len());
}

#[test]
fn labels_per_sample() {
    let p = decode(&fixture::profile(), &RenderOptions::default());
    for sample in &p.sample {
        let labels: Vec<(&str, String)> = sample
            .label
            .iter()
            .map(|l| {
                let v = if l.str != 0 {
                    s(&p, l.str).to_string()
                } else {
                    l.num.to_string()
                };
                (s(&p, l.key), v)
            })
            .collect();
        assert_eq!(
            labels,
            [
                ("pid", "7".to_string()),
                ("thread_id", "7".to_string()),
                ("thread_name", "MainThread".to_string())
            ]
        );
    }
}

#[test]
fn idle_is_wall_time_and_function_merges_lines() {
    let opts = RenderOptions {
        idle: true,
        function: true,
        ..Default::default()
    };
    let p = decode(&fixture::profile(), &opts);
    assert_eq!(s(&p, p.sample_type[1].r#type), "wall");
    assert_eq!(s(&p, p.default_sample_type), "wall");
    // spin at its first line: one location for both lines.
    assert_eq!(p.location.len(), 3);
    let total: i64 = p.sample.iter().map(|x| x.value[0]).sum();
    assert_eq!(total, 6);
}

#[test]
fn empty_profile_is_valid() {
    let p = decode(&Profile::new(false), &RenderOptions::default());
    assert!(p.sample.is_empty());
    assert_eq!(p.sample_type.len(), 2);
}
