//! Decoders for CPython's bytecode-offset → source-line tables.
//!
//! Four generations exist:
//!
//! * 2.7 `co_lnotab`: `(addr incr, line incr)` byte pairs, both unsigned.
//! * 3.6–3.9 `co_lnotab`: the same, but the line increment is a signed byte.
//!   Semantics of `PyCode_Addr2Line` (Objects/codeobject.c): walk the pairs,
//!   adding the address increment first; stop once the address passes the
//!   query; otherwise add the line increment. A table that runs out simply
//!   leaves the last line in force (an empty table means `co_firstlineno`).
//! * 3.10 `co_linetable`: `(addr delta, line delta)` pairs, where the address
//!   delta is an *unsigned* byte and the line delta a signed byte; a line delta
//!   of -128 marks a range without a line (and does not move the running line).
//!   Each pair describes the half-open range `[end_prev, end_prev + delta)`;
//!   offsets past the last range have no line.
//! * 3.11+ `co_linetable` location table (PEP 657, Objects/locations.md /
//!   InternalDocs/code_objects.md). Each entry starts with a byte with bit 7
//!   set: `code = (b >> 3) & 15`, `length = (b & 7) + 1` code units (2 bytes
//!   each). Line deltas: code 15 → no location (running line unchanged),
//!   14 (long form) and 13 (no columns) → signed varint that follows, 10–12 →
//!   `code - 10`, 0–9 → 0. The next entry starts at the next byte with bit 7
//!   set (this is how CPython itself steps, whatever the entry's own payload).
//!
//! All decoders treat the table as hostile input: they never index out of
//! bounds, every loop iteration consumes at least one input byte, arithmetic is
//! done in `i64`/`u64` (which cannot overflow for any slice that fits in
//! memory) and results outside `0..=i32::MAX` are reported as `None`.
//! Nothing allocates.

pub use crate::interpreter::families::LineTableFormat;

/// Where an instruction is in its source: the line and, where the table
/// records one (3.11+), the column, 1-based (`co_positions()`'s start column
/// + 1), 0 when unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

/// Source line of the instruction at `byte_offset` (a byte offset into the bytecode; callers convert
/// 3.10's f_lasti and 3.11+'s instruction pointer into bytes). None when the table says the
/// instruction has no line, or the table is malformed/ends first.
///
/// For the lnotab formats (2.7–3.9) a table that "ends first" is normal: CPython
/// keeps the last line in force, so those return the accumulated line (the first
/// line for an empty table), exactly like `PyCode_Addr2Line`.
#[inline]
pub fn line_for_offset(
    format: LineTableFormat,
    table: &[u8],
    first_line: u32,
    byte_offset: u32,
) -> Option<u32> {
    location_for_offset(format, table, first_line, byte_offset).map(|l| l.line)
}

/// As `line_for_offset`, with the column where the table has one (3.11+).
/// The column is read from the one entry that covers the offset, after the
/// walk that finds its line: it costs nothing per entry walked.
#[inline]
pub fn location_for_offset(
    format: LineTableFormat,
    table: &[u8],
    first_line: u32,
    byte_offset: u32,
) -> Option<Location> {
    let first = i64::from(first_line);
    let offset = u64::from(byte_offset);
    let (line, column) = match format {
        LineTableFormat::Lnotab27 => (lnotab(table, first, offset, false), 0),
        LineTableFormat::Lnotab36 => (lnotab(table, first, offset, true), 0),
        LineTableFormat::Linetable310 => (linetable310(table, first, offset)?, 0),
        LineTableFormat::Locations311 => locations311(table, first, offset)?,
    };
    Some(Location {
        line: checked_line(line)?,
        column,
    })
}

/// CPython computes lines in a C `int`; anything negative or beyond that is nonsense.
#[inline]
fn checked_line(line: i64) -> Option<u32> {
    if (0..=i64::from(i32::MAX)).contains(&line) {
        Some(line as u32)
    } else {
        None
    }
}

/// 2.7 / 3.6–3.9 `PyCode_Addr2Line`.
#[inline]
fn lnotab(table: &[u8], first: i64, offset: u64, signed: bool) -> i64 {
    let mut line = first;
    let mut addr: u64 = 0;
    // An odd trailing byte is ignored (CPython uses size / 2 pairs).
    for pair in table.chunks_exact(2) {
        addr += u64::from(pair[0]);
        if addr > offset {
            break;
        }
        line += if signed {
            i64::from(pair[1] as i8)
        } else {
            i64::from(pair[1])
        };
    }
    line
}

/// 3.10 `_PyCode_CheckLineNumber` over the `co_linetable` pairs, starting from a
/// fresh `PyCodeAddressRange` (ar_start = -1, ar_end = 0). Returns `None` for a
/// no-line range or an offset past the table; `Some(line)` otherwise.
#[inline]
fn linetable310(table: &[u8], first: i64, offset: u64) -> Option<i64> {
    let mut computed = first;
    let mut end: u64 = 0;
    // A dangling odd byte is not a pair: treated as the end of the table.
    for pair in table.chunks_exact(2) {
        end += u64::from(pair[0]);
        let ldelta = pair[1] as i8;
        let ar_line = if ldelta == -128 {
            None
        } else {
            computed += i64::from(ldelta);
            Some(computed)
        };
        // Zero-width ranges (end unchanged) can never satisfy this, so they are
        // skipped exactly like CPython's `while (ar_start == ar_end) advance()`.
        if end > offset {
            return ar_line;
        }
    }
    None
}

/// Unsigned varint at `pos`: 6-bit chunks, least significant first, bit 6 =
/// "more follows". Like CPython's `scan_varint`, bit 7 of the chunks is ignored.
/// `None` if the table ends inside it or it is longer than a 32-bit value can hold.
#[inline]
fn read_varint(table: &[u8], pos: usize) -> Option<u32> {
    varint_at(table, pos).map(|(v, _)| v)
}

/// The varint at `pos` and the position after it.
#[inline]
fn varint_at(table: &[u8], mut pos: usize) -> Option<(u32, usize)> {
    let mut read = *table.get(pos)?;
    let mut val = u32::from(read & 63);
    let mut shift = 0u32;
    while read & 64 != 0 {
        pos += 1;
        read = *table.get(pos)?;
        shift += 6;
        if shift >= 32 {
            return None;
        }
        // Bits shifted past 31 are dropped, as with CPython's `unsigned int`.
        val |= u32::from(read & 63) << shift;
    }
    Some((val, pos + 1))
}

/// Signed varint: magnitude in bits 1.., sign in bit 0.
#[inline]
fn read_svarint(table: &[u8], pos: usize) -> Option<i64> {
    let u = read_varint(table, pos)?;
    let mag = i64::from(u >> 1);
    Some(if u & 1 != 0 { -mag } else { mag })
}

/// 3.11+ `_PyCode_CheckLineNumber` / `PyCode_Addr2Line` over the location
/// table: the line, and the 1-based start column of the entry found.
#[inline]
fn locations311(table: &[u8], first: i64, offset: u64) -> Option<(i64, u32)> {
    let mut computed = first;
    let mut end: u64 = 0;
    let mut pos = 0usize;
    while let Some(&head) = table.get(pos) {
        if head & 0x80 == 0 {
            // Only possible for the very first byte of a malformed table:
            // afterwards `pos` always lands on a byte with bit 7 set.
            return None;
        }
        let code = (head >> 3) & 15;
        let delta = match code {
            13 | 14 => read_svarint(table, pos + 1)?,
            10..=12 => i64::from(code - 10),
            _ => 0,
        };
        computed += delta;
        end += (u64::from(head & 7) + 1) * 2;
        if end > offset {
            return if code == 15 {
                None
            } else {
                Some((computed, column311(table, pos, code)))
            };
        }
        // Step to the next entry start: the next byte with bit 7 set.
        pos += 1;
        while let Some(&b) = table.get(pos) {
            if b & 0x80 != 0 {
                break;
            }
            pos += 1;
        }
    }
    None
}

/// The 1-based start column of the 3.11+ entry at `pos` with `code`, 0 when
/// it has none or its bytes are cut (InternalDocs/code_objects.md): short
/// forms 0–9 pack it with the code (`code * 8 + (b >> 4 & 7)`), one-line
/// forms 10–12 give it in a byte, the long form 14 as a varint already + 1
/// after the line and end-line deltas, 13 has none.
#[inline]
fn column311(table: &[u8], pos: usize, code: u8) -> u32 {
    let byte = |at: usize| table.get(at).copied().filter(|b| b & 0x80 == 0);
    let zero_based = match code {
        0..=9 => byte(pos + 1).map(|b| u32::from(code) * 8 + u32::from((b >> 4) & 7)),
        10..=12 => byte(pos + 1).map(u32::from),
        14 => {
            let long = || {
                let (_, at) = varint_at(table, pos + 1)?;
                let (_, at) = varint_at(table, at)?;
                let (column, _) = varint_at(table, at)?;
                column.checked_sub(1)
            };
            long()
        }
        _ => None,
    };
    zero_based.map_or(0, |c| c.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn format_from_name(name: &str) -> LineTableFormat {
        match name {
            "Lnotab27" => LineTableFormat::Lnotab27,
            "Lnotab36" => LineTableFormat::Lnotab36,
            "Linetable310" => LineTableFormat::Linetable310,
            "Locations311" => LineTableFormat::Locations311,
            other => panic!("unknown format {other}"),
        }
    }

    fn unhex(s: &str) -> Vec<u8> {
        assert!(s.len() % 2 == 0, "odd hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Checks every (code object, offset) pair of one version's vectors and
    /// returns how many pairs were asserted.
    fn check_vectors(version: &str, expected_format: LineTableFormat, json: &str) -> usize {
        let doc: Value = serde_json::from_str(json).expect("vector JSON");
        assert_eq!(
            format_from_name(doc["format"].as_str().unwrap()),
            expected_format,
            "{version}: file format"
        );
        let objects = doc["code_objects"].as_array().expect("code_objects");
        assert!(objects.len() > 20, "{version}: too few code objects");
        let mut pairs = 0usize;
        let mut columns = 0usize;
        let mut failures = Vec::new();
        for obj in objects {
            let name = obj["name"].as_str().unwrap();
            let format = format_from_name(obj["format"].as_str().unwrap());
            assert_eq!(format, expected_format);
            let first_line = u32::try_from(obj["first_line"].as_u64().unwrap()).unwrap();
            let table = unhex(obj["table"].as_str().unwrap());
            for pair in obj["expected"].as_array().unwrap() {
                let pair = pair.as_array().unwrap();
                let offset = u32::try_from(pair[0].as_u64().unwrap()).unwrap();
                let want = pair[1].as_u64().map(|l| u32::try_from(l).unwrap());
                let got = line_for_offset(format, &table, first_line, offset);
                if got != want {
                    failures.push(format!(
                        "{version} {name} (first_line {first_line}) @{offset}: got {got:?}, want {want:?}"
                    ));
                }
                // 3.11+: the column co_positions() gives (+ 1, 0 for none).
                if let Some(column) = pair.get(2).and_then(Value::as_u64) {
                    let got = location_for_offset(format, &table, first_line, offset);
                    let want = want.map(|line| Location {
                        line,
                        column: u32::try_from(column).unwrap(),
                    });
                    if got != want {
                        failures.push(format!(
                            "{version} {name} @{offset}: got {got:?}, want {want:?} (co_positions)"
                        ));
                    }
                    columns += 1;
                }
                pairs += 1;
            }
        }
        assert!(
            failures.is_empty(),
            "{} mismatches, first ones:\n{}",
            failures.len(),
            failures[..failures.len().min(20)].join("\n")
        );
        assert!(pairs > 1000, "{version}: only {pairs} pairs");
        if expected_format == LineTableFormat::Locations311 {
            assert!(columns > 1000, "{version}: only {columns} columns");
        }
        pairs
    }

    macro_rules! version_test {
        ($name:ident, $ver:literal, $fmt:ident) => {
            #[test]
            fn $name() {
                let n = check_vectors(
                    $ver,
                    LineTableFormat::$fmt,
                    include_str!(concat!("../../testdata/linetables/", $ver, ".json")),
                );
                eprintln!("{}: {} pairs", $ver, n);
            }
        };
    }

    version_test!(vectors_2_7, "2.7", Lnotab27);
    version_test!(vectors_3_6, "3.6", Lnotab36);
    version_test!(vectors_3_7, "3.7", Lnotab36);
    version_test!(vectors_3_8, "3.8", Lnotab36);
    version_test!(vectors_3_9, "3.9", Lnotab36);
    version_test!(vectors_3_10, "3.10", Linetable310);
    version_test!(vectors_3_11, "3.11", Locations311);
    version_test!(vectors_3_12, "3.12", Locations311);
    version_test!(vectors_3_13, "3.13", Locations311);
    version_test!(vectors_3_14, "3.14", Locations311);
    version_test!(vectors_3_15, "3.15", Locations311);

    const ALL: [LineTableFormat; 4] = [
        LineTableFormat::Lnotab27,
        LineTableFormat::Lnotab36,
        LineTableFormat::Linetable310,
        LineTableFormat::Locations311,
    ];

    const PROBE_OFFSETS: [u32; 8] = [0, 1, 2, 7, 100, 65_534, 1 << 20, u32::MAX];

    #[test]
    fn empty_table() {
        for off in PROBE_OFFSETS {
            // lnotab: no pairs means the first line stays in force (PyCode_Addr2Line).
            assert_eq!(
                line_for_offset(LineTableFormat::Lnotab27, &[], 7, off),
                Some(7)
            );
            assert_eq!(
                line_for_offset(LineTableFormat::Lnotab36, &[], 7, off),
                Some(7)
            );
            // 3.10+: no range covers the offset.
            assert_eq!(
                line_for_offset(LineTableFormat::Linetable310, &[], 7, off),
                None
            );
            assert_eq!(
                line_for_offset(LineTableFormat::Locations311, &[], 7, off),
                None
            );
        }
    }

    #[test]
    fn lnotab_semantics() {
        // 3.6: (6, +1), (44, +5), (255, 0), (45, 127), (0, 73), (11, -3)
        let t = [6u8, 1, 44, 5, 255, 0, 45, 127, 0, 73, 11, (-3i8) as u8];
        let f = LineTableFormat::Lnotab36;
        assert_eq!(line_for_offset(f, &t, 1, 0), Some(1));
        assert_eq!(line_for_offset(f, &t, 1, 5), Some(1));
        assert_eq!(line_for_offset(f, &t, 1, 6), Some(2));
        assert_eq!(line_for_offset(f, &t, 1, 50), Some(7));
        assert_eq!(line_for_offset(f, &t, 1, 349), Some(7));
        assert_eq!(line_for_offset(f, &t, 1, 350), Some(207));
        assert_eq!(line_for_offset(f, &t, 1, 361), Some(204));
        assert_eq!(line_for_offset(f, &t, 1, u32::MAX), Some(204));
        // 2.7 reads the same 0xfd as +253.
        assert_eq!(
            line_for_offset(LineTableFormat::Lnotab27, &t, 1, 361),
            Some(460)
        );
        // Odd trailing byte ignored.
        assert_eq!(line_for_offset(f, &[2, 1, 9], 1, 100), Some(2));
        // Going below zero is nonsense.
        assert_eq!(line_for_offset(f, &[0, 0x80], 1, 0), None);
    }

    #[test]
    fn linetable310_semantics() {
        let f = LineTableFormat::Linetable310;
        // [0,4) line 3; zero-width +5; [4,8) no line; [8,10) line 3+5-1=7
        let t = [4u8, 2, 0, 5, 4, 0x80, 2, 0xff];
        assert_eq!(line_for_offset(f, &t, 1, 0), Some(3));
        assert_eq!(line_for_offset(f, &t, 1, 3), Some(3));
        assert_eq!(line_for_offset(f, &t, 1, 4), None);
        assert_eq!(line_for_offset(f, &t, 1, 8), Some(7));
        assert_eq!(line_for_offset(f, &t, 1, 10), None);
        // The byte delta is unsigned: 200 covers [0,200).
        assert_eq!(line_for_offset(f, &[200, 0], 5, 199), Some(5));
        // Dangling byte is not a pair.
        assert_eq!(line_for_offset(f, &[2, 0, 9], 5, 2), None);
    }

    #[test]
    fn locations311_semantics() {
        let f = LineTableFormat::Locations311;
        // short form (code 0, 1 unit) + col byte; one-line form code 11 (+1, 2 units);
        // no-location (code 15, 1 unit); no-columns code 13 with svarint -1 (=3);
        // long form code 14, svarint +300 (= 600 = 0x58 0x09 -> 24|64, 9), end/cols.
        #[rustfmt::skip]
        let t = [
            0x80, 0x05,                       // [0,2) first line
            0x80 | (11 << 3) | 1, 0x01, 0x02, // [2,6) +1
            0x80 | (15 << 3),                 // [6,8) no location
            0x80 | (13 << 3), 0x03,           // [8,10) -1
            0x80 | (14 << 3) | 7, 0x40 | 24, 9, 0, 1, 1, // [10,26) +300
        ];
        assert_eq!(line_for_offset(f, &t, 10, 0), Some(10));
        assert_eq!(line_for_offset(f, &t, 10, 1), Some(10));
        assert_eq!(line_for_offset(f, &t, 10, 2), Some(11));
        assert_eq!(line_for_offset(f, &t, 10, 5), Some(11));
        assert_eq!(line_for_offset(f, &t, 10, 6), None);
        assert_eq!(line_for_offset(f, &t, 10, 8), Some(10));
        assert_eq!(line_for_offset(f, &t, 10, 10), Some(310));
        assert_eq!(line_for_offset(f, &t, 10, 25), Some(310));
        assert_eq!(line_for_offset(f, &t, 10, 26), None);
        // Line 0 is a real answer (3.11+ module RESUME).
        assert_eq!(line_for_offset(f, &[0x80 | (13 << 3), 0x03], 1, 0), Some(0));
    }

    #[test]
    fn hostile_tables() {
        let f = LineTableFormat::Locations311;
        // First byte without bit 7.
        assert_eq!(line_for_offset(f, &[0x05, 0x80, 0x00], 1, 0), None);
        // Truncated varints (no-columns / long form).
        assert_eq!(line_for_offset(f, &[0x80 | (13 << 3)], 1, 0), None);
        assert_eq!(
            line_for_offset(f, &[0x80 | (14 << 3), 0x40, 0x40], 1, 0),
            None
        );
        // Over-long varint (continuation forever) is rejected, not looped on.
        let mut long = vec![0x7fu8; 10_001];
        long[0] = 0x80 | (13 << 3);
        assert_eq!(line_for_offset(f, &long, 1, 0), None);
        // A varint that runs into the next entry's head byte: CPython reads it
        // (bit 7 ignored) and still steps entries by bit 7. 0x82 as a chunk = 2.
        let t = [0x80 | (13 << 3), 0x40, 0x82, 0x00];
        // value = 0 | (2 << 6) = 128 -> +64
        assert_eq!(line_for_offset(f, &t, 1, 0), Some(65));
        assert_eq!(line_for_offset(f, &t, 1, 2), Some(65));
        // Huge negative delta -> None, huge positive beyond i32 -> None.
        let neg = [0x80 | (13 << 3), 0x40 | 0x3f, 0x7f, 0x7f, 0x7f, 0x7f, 0x03];
        assert_eq!(line_for_offset(f, &neg, 1, 0), None);
        let pos = [0x80 | (13 << 3), 0x40 | 0x3e, 0x7f, 0x7f, 0x7f, 0x7f, 0x03];
        assert_eq!(line_for_offset(f, &pos, u32::MAX, 0), None);
        assert_eq!(line_for_offset(f, &pos, 1, 0), None); // 1 + (2^31 - 1) > i32::MAX
                                                          // Absurd first line.
        assert_eq!(line_for_offset(f, &[0x80, 0x00], u32::MAX, 0), None);
        assert_eq!(
            line_for_offset(LineTableFormat::Lnotab27, &[], u32::MAX, 0),
            None
        );

        // All-0xff tables of every format.
        let ff = vec![0xffu8; 4096];
        for fmt in ALL {
            for off in PROBE_OFFSETS {
                let _ = line_for_offset(fmt, &ff, 1, off);
            }
        }
        // 0xff in 3.11+ is "no location, 8 units" repeated.
        assert_eq!(line_for_offset(f, &ff, 1, 100), None);
        assert_eq!(line_for_offset(f, &ff, 1, 4096 * 16), None);
        // 2.7: 255 addr / +255 line per pair.
        assert_eq!(
            line_for_offset(LineTableFormat::Lnotab27, &ff, 1, 300),
            Some(256)
        );
        // 3.6: 255 addr / -1 line per pair: line goes negative -> None.
        assert_eq!(
            line_for_offset(LineTableFormat::Lnotab36, &ff, 1, 600),
            None
        );
        // 3.10: -1 line per 255-byte range.
        assert_eq!(
            line_for_offset(LineTableFormat::Linetable310, &ff, 10, 0),
            Some(9)
        );
        assert_eq!(
            line_for_offset(LineTableFormat::Linetable310, &ff, 10, 255),
            Some(8)
        );

        // Huge lnotab growth stays finite and reports None past i32::MAX.
        let big = [0u8, 0x7f].repeat(20_000_000);
        assert_eq!(line_for_offset(LineTableFormat::Lnotab36, &big, 1, 0), None);
        assert_eq!(
            line_for_offset(LineTableFormat::Lnotab36, &big[..40], 1, 0),
            Some(1 + 20 * 127)
        );
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
    }

    #[test]
    fn fuzz_random_bytes_never_panic() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let mut buf = [0u8; 512];
        let mut some = 0usize;
        for round in 0..20_000 {
            let len = (rng.next() % 512) as usize;
            let bias = round % 4;
            for b in buf[..len].iter_mut() {
                let r = rng.next();
                *b = match bias {
                    // Mostly entry heads / continuation chunks, to reach deep into tables.
                    0 => (r as u8) | 0x80,
                    1 => (r as u8) & 0x7f,
                    2 if r % 3 == 0 => {
                        0x80 | (((r >> 8) as u8 % 2 + 13) << 3) | (r >> 16) as u8 & 7
                    }
                    _ => r as u8,
                };
            }
            let table = &buf[..len];
            let first = match rng.next() % 4 {
                0 => 0,
                1 => 1,
                2 => u32::MAX,
                _ => rng.next() as u32 % 100_000,
            };
            for fmt in ALL {
                for _ in 0..4 {
                    let off = match rng.next() % 3 {
                        0 => rng.next() as u32,
                        _ => (rng.next() % 4096) as u32,
                    };
                    if let Some(line) = line_for_offset(fmt, table, first, off) {
                        assert!(line <= i32::MAX as u32);
                        some += 1;
                    }
                }
            }
        }
        assert!(some > 0);
    }
}
