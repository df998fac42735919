//! The snapshot file's bytes: parsing them as hostile input, and writing them.

use super::memory::{Image, Span};
use super::{
    Metadata, Snapshot, SnapshotMemory, FORMAT_VERSION, HEADER_BYTES, MAGIC, MAX_METADATA_BYTES,
    MAX_REGIONS, MAX_TOTAL_BYTES, REGION_HEADER_BYTES,
};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Parses the bytes of a snapshot file; the error says what is wrong.
pub(crate) fn parse(data: Vec<u8>) -> std::result::Result<Snapshot, String> {
    let mut cur = Cursor {
        data: &data,
        pos: 0,
    };
    let magic = cur.take(8, "magic")?;
    if magic != MAGIC {
        return Err("not a pysampler snapshot (wrong magic bytes)".into());
    }
    let version = cur.u32("format version")?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "snapshot format version {version}, but this pysampler reads version {FORMAT_VERSION}"
        ));
    }
    let flags = cur.u32("flags")?;
    if flags != 0 {
        return Err(format!("unknown flags 0x{flags:x}"));
    }
    let meta_len = cur.u64("metadata length")?;
    if meta_len > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata length {meta_len} is over the limit of {MAX_METADATA_BYTES}"
        ));
    }
    let meta_bytes = cur.take(meta_len, "metadata")?;
    let meta: Metadata =
        serde_json::from_slice(meta_bytes).map_err(|e| format!("bad metadata: {e}"))?;
    let count = cur.u64("region count")?;
    if count > MAX_REGIONS {
        return Err(format!("{count} regions, over the limit of {MAX_REGIONS}"));
    }
    // Each region needs a header; refuse counts the file cannot hold before
    // reserving room for them.
    if count > cur.remaining() as u64 / REGION_HEADER_BYTES {
        return Err(format!(
            "{count} regions announced but only {} bytes follow (truncated file?)",
            cur.remaining()
        ));
    }
    let mut spans: Vec<Span> = Vec::with_capacity(count as usize);
    let mut stored_total: u64 = 0;
    for n in 0..count {
        let start = cur.u64("region start")?;
        let len = cur.u64("region length")?;
        let stored = cur.u64("region stored length")?;
        if len == 0 {
            return Err(format!("region {n} at 0x{start:x} is empty"));
        }
        if stored != len && stored != 0 {
            return Err(format!(
                    "region {n} at 0x{start:x} is {len} bytes long but stores {stored} (must be {len} or 0)"
                ));
        }
        let end = start
            .checked_add(len)
            .ok_or_else(|| format!("region {n} at 0x{start:x} runs past the address space"))?;
        if let Some(prev) = spans.last() {
            if start < prev.end {
                return Err(format!(
                        "region {n} at 0x{start:x} overlaps or precedes the region before it (0x{:x}-0x{:x})",
                        prev.start, prev.end
                    ));
            }
        }
        stored_total = stored_total.saturating_add(stored);
        if stored_total > MAX_TOTAL_BYTES {
            return Err(format!(
                "regions add up to more than the limit of {MAX_TOTAL_BYTES} bytes"
            ));
        }
        let offset = cur.pos;
        cur.take(stored, "region bytes")?;
        let zero = stored == 0;
        spans.push(Span {
            start,
            end,
            offset: if zero { 0 } else { offset },
            zero,
        });
    }
    if cur.remaining() != 0 {
        return Err(format!(
            "{} unexpected bytes after the last region",
            cur.remaining()
        ));
    }
    let memory = SnapshotMemory::new(meta.pid, Arc::new(Image { spans, data }));
    Ok(Snapshot::from_parts(meta, memory))
}

pub(crate) fn invalid(path: &Path, detail: String) -> Error {
    Error::File {
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a valid pysampler snapshot: {detail}"),
        ),
    }
}

/// Bounds-checked reading of the file's bytes.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, len: u64, what: &str) -> std::result::Result<&'a [u8], String> {
        if len > self.remaining() as u64 {
            return Err(format!(
                "truncated file: {what} needs {len} bytes at offset {} but only {} remain",
                self.pos,
                self.remaining()
            ));
        }
        let bytes = &self.data[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(bytes)
    }

    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Writes the format described in the module documentation.
pub(crate) fn encode<'a, W: Write>(
    w: &mut W,
    meta: &Metadata,
    regions: impl ExactSizeIterator<Item = (u64, u64, Option<&'a [u8]>)>,
) -> std::io::Result<()> {
    let json = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    if json.len() as u64 > MAX_METADATA_BYTES {
        return Err(std::io::Error::other("metadata is over the size limit"));
    }
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&0u32.to_le_bytes());
    header[16..24].copy_from_slice(&(json.len() as u64).to_le_bytes());
    w.write_all(&header)?;
    w.write_all(&json)?;
    w.write_all(&(regions.len() as u64).to_le_bytes())?;
    for (start, len, bytes) in regions {
        w.write_all(&start.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        match bytes {
            Some(bytes) => {
                debug_assert_eq!(bytes.len() as u64, len);
                w.write_all(&len.to_le_bytes())?;
                w.write_all(bytes)?;
            }
            None => w.write_all(&0u64.to_le_bytes())?,
        }
    }
    Ok(())
}

pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::File {
            path: path.to_path_buf(),
            source,
        }
    })
}
