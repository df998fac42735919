//! The interactive SVG flame graph, drawn by inferno from the collapsed
//! stacks (with inferno's script: search, zoom).
//!
//! Colours follow inferno's Python palette, decided from the full path
//! (labels show shortened ones): the program's own code red, the standard
//! library yellow, installed packages aqua, thread and process frames grey;
//! the shade comes from a hash of the label, so output is deterministic.

use crate::aggregate::Profile;
use crate::output::collapsed::{self, escape_label};
use crate::output::render::{file_names, human_duration, process_label, RenderOptions, ShownFrame};
use inferno::flamegraph::color::{Color, MultiPalette, Palette, PaletteMap};
use inferno::flamegraph::{from_lines, Options};
use std::io;

pub fn write(profile: &Profile, opts: &RenderOptions, out: &mut dyn io::Write) -> io::Result<()> {
    let lines = collapsed::lines(profile, opts);
    if lines.is_empty() {
        // inferno refuses empty input (and writes an error picture).
        return write_empty(profile, out);
    }
    let mut options = Options::default();
    options.title = title(profile);
    options.subtitle = Some(subtitle(profile));
    options.count_name = "samples".to_string();
    options.colors = Palette::Multi(MultiPalette::Python);
    // Colours from the name's hash: the same function keeps its colour, and
    // the output is deterministic.
    options.hash = true;
    let mut colors = palette(profile, opts);
    options.palette_map = Some(&mut colors);
    from_lines(&mut options, lines.iter().map(String::as_str), out)
}

/// The colour of every label in the graph (see the module docs).
fn palette(profile: &Profile, opts: &RenderOptions) -> PaletteMap {
    let mut map = PaletteMap::default();
    for (thread, node, _) in profile.stacks() {
        let names = file_names(profile, profile.threads[thread as usize].pid, opts);
        for id in profile.tree.path(node) {
            let frame = profile.frames.get(id);
            let label = escape_label(&ShownFrame::new(frame, &names, opts).label());
            let shade = shade(&label);
            let color = match code_kind(&frame.filename) {
                CodeKind::Own => rgb(
                    200.0 + 55.0 * shade,
                    50.0 + 80.0 * shade,
                    50.0 + 80.0 * shade,
                ),
                CodeKind::Stdlib => rgb(
                    175.0 + 55.0 * shade,
                    175.0 + 55.0 * shade,
                    50.0 + 20.0 * shade,
                ),
                CodeKind::Package => rgb(
                    50.0 + 60.0 * shade,
                    165.0 + 55.0 * shade,
                    165.0 + 55.0 * shade,
                ),
            };
            map.insert(label, color);
        }
        let info = &profile.threads[thread as usize];
        for label in [info.label(), process_label(profile, info.pid)] {
            let grey = 170.0 + 50.0 * shade(&escape_label(&label));
            map.insert(escape_label(&label), rgb(grey, grey, grey));
        }
    }
    map
}

enum CodeKind {
    Own,
    Stdlib,
    Package,
}

fn code_kind(path: &str) -> CodeKind {
    let parts: Vec<&str> = path.split('/').collect();
    let is_version = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.');
    if parts
        .iter()
        .any(|p| *p == "site-packages" || *p == "dist-packages")
    {
        CodeKind::Package
    } else if parts
        .iter()
        .any(|p| p.strip_prefix("python").is_some_and(is_version))
        || path.starts_with("<frozen")
        || path.starts_with("<built-in")
    {
        CodeKind::Stdlib
    } else {
        CodeKind::Own
    }
}

/// A number in [0, 1) from the label (FNV-1a).
fn shade(label: &str) -> f64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in label.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

fn rgb(r: f64, g: f64, b: f64) -> Color {
    Color {
        r: r as u8,
        g: g as u8,
        b: b as u8,
    }
}

fn title(profile: &Profile) -> String {
    format!("pysampler: {}", profile.info.command)
}

/// "1,234 samples at 100 Hz over 12.35 s" (and late samples and errors, if any).
pub fn subtitle(profile: &Profile) -> String {
    let info = &profile.info;
    let mut text = format!(
        "{} samples at {} Hz over {}",
        profile.total_samples(),
        info.rate_hz,
        human_duration(info.duration.as_secs_f64())
    );
    if info.late_samples > 0 {
        text += &format!(", {} late", info.late_samples);
    }
    if info.errors > 0 {
        text += &format!(", {} errors", info.errors);
    }
    text
}

/// A small valid SVG saying that nothing was sampled.
fn write_empty(profile: &Profile, out: &mut dyn io::Write) -> io::Result<()> {
    write!(
        out,
        concat!(
            "<?xml version=\"1.0\" standalone=\"no\"?>\n",
            "<svg version=\"1.1\" width=\"1200\" height=\"110\" viewBox=\"0 0 1200 110\" ",
            "xmlns=\"http://www.w3.org/2000/svg\">\n",
            "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#eeeeee\"/>\n",
            "<text x=\"50%\" y=\"28\" text-anchor=\"middle\" font-family=\"Verdana\" font-size=\"17\">{}</text>\n",
            "<text x=\"50%\" y=\"60\" text-anchor=\"middle\" font-family=\"Verdana\" font-size=\"14\">",
            "No samples: no Python stack was seen while recording.</text>\n",
            "<text x=\"50%\" y=\"85\" text-anchor=\"middle\" font-family=\"Verdana\" font-size=\"12\">{}</text>\n",
            "</svg>\n"
        ),
        xml_escape(&title(profile)),
        xml_escape(&subtitle(profile))
    )
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::render::fixture;

    fn render(profile: &Profile) -> String {
        let mut out = Vec::new();
        write(profile, &RenderOptions::default(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn draws_frames_with_title_and_script() {
        let svg = render(&fixture::profile());
        assert!(svg.contains("pysampler: python3 busy.py"));
        assert!(svg.contains("6 samples at 100 Hz over 60 ms"));
        assert!(svg.contains("<title>spin (busy.py:6) (3 samples, 50.00%)</title>"));
        assert!(svg.contains("<script"));
        assert_eq!(svg, render(&fixture::profile()), "deterministic");
    }

    #[test]
    fn colours_by_where_code_lives() {
        assert!(matches!(
            code_kind("/usr/lib/python3.12/threading.py"),
            CodeKind::Stdlib
        ));
        assert!(matches!(
            code_kind("<frozen importlib._bootstrap>"),
            CodeKind::Stdlib
        ));
        assert!(matches!(
            code_kind("/usr/lib/python3/dist-packages/yaml/a.py"),
            CodeKind::Package
        ));
        assert!(matches!(code_kind("/srv/app/python3.py"), CodeKind::Own));
        let map = palette(&fixture::profile(), &RenderOptions::default());
        let wait = map.get("wait (threading.py:320)").unwrap();
        assert!(
            wait.r > 170 && wait.g > 170 && wait.b < 80,
            "yellow: {wait:?}"
        );
        assert!(map.get("spin (busy.py:6)").unwrap().r >= 200);
    }

    #[test]
    fn empty_profile_says_so() {
        let mut p = Profile::new(false);
        p.info.command = "a<b & c".into();
        let svg = render(&p);
        assert!(svg.contains("No samples"));
        assert!(svg.contains("pysampler: a&lt;b &amp; c"));
    }
}
