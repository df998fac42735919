//! The primitive encodings of recording records: LEB128 varints (zigzag for
//! signed values), length-prefixed UTF-8 strings, optional values. Decoding
//! treats the bytes as hostile: every read is bounds-checked and returns an
//! error saying what was being read.

use super::MAX_STRING_BYTES;

pub fn put_u64(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub fn put_i64(out: &mut Vec<u8>, value: i64) {
    put_u64(out, ((value << 1) ^ (value >> 63)) as u64);
}

pub fn put_str(out: &mut Vec<u8>, text: &str) {
    // A longer string would be refused by the reader: cut it (at a
    // character boundary) rather than write a file nobody can read.
    let mut end = text.len().min(MAX_STRING_BYTES as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    put_u64(out, end as u64);
    out.extend_from_slice(&text.as_bytes()[..end]);
}

pub fn put_opt_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(t) => {
            out.push(1);
            put_str(out, t);
        }
        None => out.push(0),
    }
}

/// An optional thread id: 0 for none, else the zigzagged id plus one.
pub fn put_opt_i32(out: &mut Vec<u8>, value: Option<i32>) {
    match value {
        Some(v) => put_u64(out, ((i64::from(v) << 1) ^ (i64::from(v) >> 63)) as u64 + 1),
        None => out.push(0),
    }
}

/// Appends one record: tag, body length, body.
pub fn put_record(out: &mut Vec<u8>, tag: u64, body: &[u8]) {
    put_u64(out, tag);
    put_u64(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// A cursor over hostile bytes.
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

pub type DecodeResult<T> = Result<T, String>;

impl<'a> Decoder<'a> {
    pub fn new(data: &'a [u8]) -> Decoder<'a> {
        Decoder { data, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        let byte = *self
            .data
            .get(self.pos)
            .ok_or_else(|| format!("{what} runs past the end of its record"))?;
        self.pos += 1;
        Ok(byte)
    }

    pub fn u64(&mut self, what: &str) -> DecodeResult<u64> {
        let mut value: u64 = 0;
        // At most 10 bytes hold 64 bits; the tenth may only hold one bit.
        for shift in (0..70).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(format!("{what} is larger than 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("{what} is larger than 64 bits"))
    }

    /// A varint that must fit in `u32` and be below `limit`.
    pub fn index(&mut self, what: &str, limit: usize) -> DecodeResult<u32> {
        let value = self.u64(what)?;
        if value >= limit as u64 || value > u64::from(u32::MAX) {
            return Err(format!(
                "{what} {value} refers to nothing (only {limit} defined)"
            ));
        }
        Ok(value as u32)
    }

    pub fn u32(&mut self, what: &str) -> DecodeResult<u32> {
        let value = self.u64(what)?;
        u32::try_from(value).map_err(|_| format!("{what} {value} is out of range"))
    }

    pub fn i64(&mut self, what: &str) -> DecodeResult<i64> {
        let raw = self.u64(what)?;
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    pub fn i32(&mut self, what: &str) -> DecodeResult<i32> {
        let value = self.i64(what)?;
        i32::try_from(value).map_err(|_| format!("{what} {value} is out of range"))
    }

    pub fn opt_i32(&mut self, what: &str) -> DecodeResult<Option<i32>> {
        let raw = self.u64(what)?;
        if raw == 0 {
            return Ok(None);
        }
        let raw = raw - 1;
        let value = (raw >> 1) as i64 ^ -((raw & 1) as i64);
        i32::try_from(value)
            .map(Some)
            .map_err(|_| format!("{what} {value} is out of range"))
    }

    pub fn bytes(&mut self, len: u64, what: &str) -> DecodeResult<&'a [u8]> {
        let left = (self.data.len() - self.pos) as u64;
        if len > left {
            return Err(format!(
                "{what} is {len} bytes long but only {left} bytes follow"
            ));
        }
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.data[start..self.pos])
    }

    pub fn str(&mut self, what: &str) -> DecodeResult<&'a str> {
        let len = self.u64(what)?;
        if len > MAX_STRING_BYTES {
            return Err(format!(
                "{what} is {len} bytes long, over the limit of {MAX_STRING_BYTES}"
            ));
        }
        let bytes = self.bytes(len, what)?;
        std::str::from_utf8(bytes).map_err(|_| format!("{what} is not valid UTF-8"))
    }

    pub fn opt_str(&mut self, what: &str) -> DecodeResult<Option<&'a str>> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => self.str(what).map(Some),
            other => Err(format!("{what} has presence byte {other} (0 or 1)")),
        }
    }

    /// The next record: its tag and its body.
    pub fn record(&mut self) -> DecodeResult<(u64, &'a [u8])> {
        let tag = self.u64("record tag")?;
        let len = self.u64("record length")?;
        let body = self.bytes(len, "record")?;
        Ok((tag, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_and_overlong_ones_are_refused() {
        let mut out = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            put_u64(&mut out, v);
        }
        for v in [0i64, -1, 1, -300, i64::MIN, i64::MAX] {
            put_i64(&mut out, v);
        }
        for v in [None, Some(0), Some(-5), Some(i32::MAX), Some(i32::MIN)] {
            put_opt_i32(&mut out, v);
        }
        let mut d = Decoder::new(&out);
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(d.u64("v").unwrap(), v);
        }
        for v in [0i64, -1, 1, -300, i64::MIN, i64::MAX] {
            assert_eq!(d.i64("v").unwrap(), v);
        }
        for v in [None, Some(0), Some(-5), Some(i32::MAX), Some(i32::MIN)] {
            assert_eq!(d.opt_i32("v").unwrap(), v);
        }
        assert!(d.is_empty());
        assert!(Decoder::new(&[0xff; 11]).u64("v").is_err());
        assert!(
            Decoder::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .u64("v")
                .is_err()
        );
        assert!(Decoder::new(&[0x80]).u64("v").is_err());
    }

    #[test]
    fn strings_are_checked() {
        let mut out = Vec::new();
        put_str(&mut out, "spin");
        put_opt_str(&mut out, None);
        put_opt_str(&mut out, Some("名前"));
        let mut d = Decoder::new(&out);
        assert_eq!(d.str("s").unwrap(), "spin");
        assert_eq!(d.opt_str("s").unwrap(), None);
        assert_eq!(d.opt_str("s").unwrap(), Some("名前"));
        assert!(Decoder::new(&[2, 0xff, 0xfe]).str("s").is_err());
        assert!(Decoder::new(&[5, b'a']).str("s").is_err());
        assert!(Decoder::new(&[2]).opt_str("s").is_err());
        let err = Decoder::new(&[3]).index("thread", 3).unwrap_err();
        assert!(err.contains("refers to nothing"), "{err}");
    }
}
