//! The four line-table decoders on arbitrary tables.
//! Input: `[format] [first line: u32 LE] [byte offset: u32 LE] [table…]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pysampler_core::walk::linetable::{line_for_offset, LineTableFormat};

const FORMATS: [LineTableFormat; 4] = [
    LineTableFormat::Lnotab27,
    LineTableFormat::Lnotab36,
    LineTableFormat::Linetable310,
    LineTableFormat::Locations311,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let format = FORMATS[data[0] as usize % FORMATS.len()];
    let first_line = u32::from_le_bytes(data[1..5].try_into().unwrap());
    let offset = u32::from_le_bytes(data[5..9].try_into().unwrap());
    let table = &data[9..];
    for off in [offset, 0, offset.wrapping_add(2), u32::MAX] {
        if let Some(line) = line_for_offset(format, table, first_line, off) {
            assert!(line <= i32::MAX as u32, "line {line}");
        }
    }
});
