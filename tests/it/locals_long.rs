//! `dump -ll`: longer values (strings and bytes up to 1,000 characters, the
//! first 10 elements of lists, tuples, dicts, sets and frozensets, 3 levels
//! deep, cycles, subclasses, the 4,000-character cap), compared exactly with
//! what fixtures/locals_long.py computes from its own objects; and `-l`
//! unchanged beside it.

use crate::pythons;
use crate::target::{dump_when, Target};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const SCRIPT: &str = "locals_long.py";

/// The locals of the fixture's `hold` frame, by name.
fn hold_locals(dump: &Value) -> Option<BTreeMap<String, String>> {
    let frames = dump["threads"].as_array()?.iter().flat_map(|t| {
        t["frames"]
            .as_array()
            .map(|f| f.as_slice())
            .unwrap_or_default()
    });
    let hold = frames.into_iter().find(|f| f["function"] == "hold")?;
    hold["locals"]
        .as_array()?
        .iter()
        .map(|l| Some((l["name"].as_str()?.into(), l["value"].as_str()?.into())))
        .collect()
}

pub fn check(label: &str) {
    let py = pythons::find(label);
    let target = Target::spawn(&py, SCRIPT, &[]).unwrap_or_else(|e| panic!("{e}"));
    let line = target
        .wait_for_line("READY ", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{label}: {SCRIPT} {e}"));
    let expected: BTreeMap<String, String> =
        serde_json::from_str(&line["READY ".len()..]).expect("the fixture prints JSON");
    assert!(expected.len() >= 25, "{label}: {expected:?}");
    let bound =
        |d: &Value| hold_locals(d).is_some_and(|l| expected.keys().all(|k| l.contains_key(k)));

    let dump = dump_when(target.pid(), &["-ll"], bound);
    let got = hold_locals(&dump).unwrap();
    for (name, want) in &expected {
        assert_eq!(&got[name], want, "{label}: -ll value of {name}");
    }

    // -l is as before: containers by type and address, strings cut at 64.
    let dump = dump_when(target.pid(), &["-l"], bound);
    let short = hold_locals(&dump).unwrap();
    for name in ["short_list", "small_set", "sub_list", "pair", "small_dict"] {
        assert!(
            short[name].starts_with('<') && short[name].contains(" at 0x"),
            "{label}: -l {name} = {}",
            short[name]
        );
    }
    let text_prefix = if py.major == 2 { "u'" } else { "'" };
    assert_eq!(
        short["long_text"],
        format!("{text_prefix}{}'...", &"abcdefghij".repeat(7)[..64]),
        "{label}: -l long_text"
    );
}
