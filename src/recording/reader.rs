//! Reading a recording, chunk by chunk, as hostile input: every length is
//! bounded, every reference checked against what was defined before it, and
//! reading stops at the first chunk that is cut off or damaged, keeping
//! everything before it. A chunk's records are decoded in full before any
//! of its samples are handed on, so a bad chunk contributes nothing.

use super::codec::Decoder;
use super::writer::{DEFLATE, STORED};
use super::*;
use crate::aggregate::{
    FrameId, FrameInfo, FrameTable, NodeId, ProcessSummary, StackTree, ThreadInfo, ROOT,
};
use crate::sampling::EndReason;
use flate2::read::DeflateDecoder;
use std::io::{self, Read};

/// What the file has defined so far, as the profile's own tables.
#[derive(Debug, Default)]
pub struct Tables {
    pub frames: FrameTable,
    /// Recording frame number → frame id in `frames` (a damaged file may
    /// define a frame twice).
    frame_ids: Vec<FrameId>,
    pub tree: StackTree,
    /// Recording stack number → node of `tree`; 0 is the empty stack.
    node_ids: Vec<NodeId>,
    /// Threads in the order the recording defines them.
    pub threads: Vec<ThreadInfo>,
}

/// One thread of a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickThread {
    /// Index into `Tables::threads`.
    pub thread: u32,
    pub flags: u8,
    /// Node of `Tables::tree`.
    pub node: NodeId,
}

impl TickThread {
    pub fn active(&self) -> bool {
        self.flags & THREAD_ACTIVE != 0
    }
    pub fn owns_gil(&self) -> bool {
        self.flags & THREAD_GIL != 0
    }
}

/// What happened, in recording order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// A process is sampled from now on.
    Process(ProcessSummary),
    /// A thread's name changed (already applied to `Tables::threads`).
    Renamed(u32),
    Tick {
        pid: i32,
        at: Duration,
        late: bool,
        threads: &'a [TickThread],
    },
    Error {
        pid: i32,
        message: String,
    },
    Ended {
        pid: i32,
        reason: EndReason,
    },
    /// The recording ended cleanly after this long.
    End(Duration),
}

/// Where and why reading stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// Chunks read whole before it.
    pub chunks: u64,
    /// Byte offset of the chunk that could not be read.
    pub offset: u64,
    /// What is wrong with it.
    pub why: String,
}

/// A staged item, before its chunk is known to be whole.
enum Staged {
    Process(ProcessSummary),
    Renamed(u32, String),
    Tick {
        pid: i32,
        at: Duration,
        late: bool,
        threads: std::ops::Range<usize>,
    },
    Error(i32, String),
    Ended(i32, EndReason),
    End(Duration),
}

pub struct Reader<R: Read> {
    input: R,
    pub header: Header,
    /// The pysampler version that wrote the file.
    pub writer: String,
    pub minor: u16,
    pub tables: Tables,
    offset: u64,
    chunks: u64,
    /// Time of the last tick decoded (ns since the recording began).
    at: i64,
    /// The last tick of a whole chunk.
    pub last_tick: Option<Duration>,
    /// The END record's duration: the recording is complete.
    pub end: Option<Duration>,
}

/// Fills `buf` as far as the input allows; the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<R: Read> Reader<R> {
    /// Reads the preamble and the header.
    pub fn open(mut input: R) -> Result<Reader<R>, OpenError> {
        let io = |e: io::Error| OpenError::BadHeader(e.to_string());
        let mut pre = [0u8; 13];
        let got = read_full(&mut input, &mut pre).map_err(io)?;
        if got == 0 {
            return Err(OpenError::Empty);
        }
        let magic_seen = got.min(MAGIC.len());
        if pre[..magic_seen] != MAGIC[..magic_seen] {
            return Err(OpenError::NotARecording);
        }
        if got < pre.len() {
            return Err(OpenError::Truncated);
        }
        let (major, minor) = (u16_at(&pre, 8), u16_at(&pre, 10));
        let mut version = vec![0u8; usize::from(pre[12])];
        if read_full(&mut input, &mut version).map_err(io)? < version.len() {
            return Err(OpenError::Truncated);
        }
        let writer = String::from_utf8_lossy(&version).into_owned();
        if major != MAJOR {
            // Format 1 is the first: any other major is a later one.
            return Err(OpenError::Newer {
                writer,
                major,
                minor,
            });
        }
        let mut lens = [0u8; 8];
        if read_full(&mut input, &mut lens).map_err(io)? < lens.len() {
            return Err(OpenError::Truncated);
        }
        let (len, crc) = (u32_at(&lens, 0), u32_at(&lens, 4));
        if len > MAX_HEADER_BYTES {
            return Err(OpenError::BadHeader(format!(
                "it claims {len} bytes, over the limit of {MAX_HEADER_BYTES}"
            )));
        }
        let mut json = vec![0u8; len as usize];
        if read_full(&mut input, &mut json).map_err(io)? < json.len() {
            return Err(OpenError::Truncated);
        }
        if crc32fast::hash(&json) != crc {
            return Err(OpenError::BadHeader("checksum mismatch".into()));
        }
        let header: Header =
            serde_json::from_slice(&json).map_err(|e| OpenError::BadHeader(e.to_string()))?;
        let offset = (pre.len() + version.len() + lens.len() + json.len()) as u64;
        let mut tables = Tables::default();
        tables.node_ids.push(ROOT);
        Ok(Reader {
            input,
            header,
            writer,
            minor,
            tables,
            offset,
            chunks: 0,
            at: 0,
            last_tick: None,
            end: None,
        })
    }

    /// Reads every whole chunk, handing each item to `sink` in order.
    /// Returns where reading was cut short, if it was.
    pub fn read_all(&mut self, mut sink: impl FnMut(&Tables, Item)) -> Option<Cut> {
        let mut staged = Vec::new();
        let mut threads = Vec::new();
        while self.end.is_none() {
            let (raw, stored) = match self.next_chunk() {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return None,
                Err(why) => return Some(self.cut(why)),
            };
            staged.clear();
            threads.clear();
            let at_before = self.at;
            if let Err(why) = self.decode(&raw, &mut staged, &mut threads) {
                self.at = at_before;
                return Some(self.cut(why));
            }
            self.offset += CHUNK_HEAD + stored;
            self.chunks += 1;
            for item in staged.drain(..) {
                let item = match item {
                    Staged::Process(p) => Item::Process(p),
                    Staged::Renamed(index, name) => {
                        if let Some(t) = self.tables.threads.get_mut(index as usize) {
                            t.name = Some(name);
                        }
                        Item::Renamed(index)
                    }
                    Staged::Tick {
                        pid,
                        at,
                        late,
                        threads: range,
                    } => {
                        self.last_tick = Some(at);
                        Item::Tick {
                            pid,
                            at,
                            late,
                            threads: &threads[range],
                        }
                    }
                    Staged::Error(pid, message) => Item::Error { pid, message },
                    Staged::Ended(pid, reason) => Item::Ended { pid, reason },
                    Staged::End(d) => {
                        self.end = Some(d);
                        Item::End(d)
                    }
                };
                sink(&self.tables, item);
            }
        }
        None
    }

    fn cut(&self, why: String) -> Cut {
        Cut {
            chunks: self.chunks,
            offset: self.offset,
            why,
        }
    }

    /// The next chunk's raw bytes and its stored length; `None` at the end
    /// of the file, an error for a chunk cut off or damaged.
    fn next_chunk(&mut self) -> Result<Option<(Vec<u8>, u64)>, String> {
        let mut head = [0u8; CHUNK_HEAD as usize];
        let got = read_full(&mut self.input, &mut head).map_err(|e| e.to_string())?;
        if got == 0 {
            return Ok(None);
        }
        if got < head.len() {
            return Err(format!("the file ends {got} bytes into a chunk header"));
        }
        let (stored_len, raw_len, encoding) = (u32_at(&head, 0), u32_at(&head, 4), head[8]);
        for (what, len) in [("stored", stored_len), ("raw", raw_len)] {
            if len > MAX_CHUNK_BYTES {
                return Err(format!(
                    "a chunk claims {len} {what} bytes, over the limit of {MAX_CHUNK_BYTES}"
                ));
            }
        }
        // Read as the bytes arrive: a damaged length must not reserve
        // memory the file does not have.
        let mut stored = Vec::new();
        (&mut self.input)
            .take(u64::from(stored_len))
            .read_to_end(&mut stored)
            .map_err(|e| e.to_string())?;
        if stored.len() < stored_len as usize {
            return Err(format!(
                "the file ends {} bytes into a chunk of {stored_len}",
                stored.len()
            ));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head[..9]);
        crc.update(&stored);
        if crc.finalize() != u32_at(&head, 9) {
            return Err("a chunk's checksum does not match its bytes".into());
        }
        let raw = match encoding {
            STORED if raw_len == stored_len => stored,
            STORED => return Err("a stored chunk's two lengths differ".into()),
            DEFLATE => {
                let mut raw = Vec::new();
                DeflateDecoder::new(stored.as_slice())
                    .take(u64::from(raw_len) + 1)
                    .read_to_end(&mut raw)
                    .map_err(|e| format!("a chunk does not inflate: {e}"))?;
                if raw.len() != raw_len as usize {
                    return Err(format!(
                        "a chunk inflates to {} bytes, not the {raw_len} it claims",
                        raw.len()
                    ));
                }
                raw
            }
            other => return Err(format!("a chunk has unknown encoding {other}")),
        };
        Ok(Some((raw, u64::from(stored_len))))
    }

    /// Decodes a chunk's records: definitions go into the tables, the rest
    /// is staged.
    fn decode(
        &mut self,
        raw: &[u8],
        staged: &mut Vec<Staged>,
        tick_threads: &mut Vec<TickThread>,
    ) -> Result<(), String> {
        let mut records = Decoder::new(raw);
        while !records.is_empty() {
            let at = records.position();
            let (tag, body) = records.record()?;
            let mut d = Decoder::new(body);
            self.record(tag, &mut d, staged, tick_threads)
                .map_err(|e| format!("record at byte {at} of chunk {}: {e}", self.chunks + 1))?;
        }
        Ok(())
    }

    fn record(
        &mut self,
        tag: u64,
        d: &mut Decoder,
        staged: &mut Vec<Staged>,
        tick_threads: &mut Vec<TickThread>,
    ) -> Result<(), String> {
        let t = &mut self.tables;
        match tag {
            TAG_FRAME => {
                let frame = FrameInfo {
                    name: d.str("frame name")?.into(),
                    filename: d.str("frame file")?.into(),
                    line: d.u32("frame line")?,
                    first_line: d.u32("frame first line")?,
                    // Format 1.1 adds the column; 1.0 files have none.
                    column: match d.is_empty() {
                        true => 0,
                        false => d.u32("frame column")?,
                    },
                };
                let id = t.frames.intern(frame);
                t.frame_ids.push(id);
            }
            TAG_PROCESS => staged.push(Staged::Process(ProcessSummary {
                pid: d.i32("pid")?,
                command_line: d.str("command line")?.to_string(),
                cwd: d.opt_str("working directory")?.map(str::to_string),
                python_version: d.str("Python version")?.to_string(),
            })),
            TAG_THREAD => t.threads.push(ThreadInfo {
                pid: d.i32("pid")?,
                tid: d.opt_i32("thread id")?,
                ident: d.u64("thread ident")?,
                name: d.opt_str("thread name")?.map(str::to_string),
            }),
            TAG_THREAD_NAME => {
                let index = d.index("thread", t.threads.len())?;
                staged.push(Staged::Renamed(index, d.str("thread name")?.to_string()));
            }
            TAG_STACK => {
                let parent = t.node_ids[d.index("parent stack", t.node_ids.len())? as usize];
                let frame = t.frame_ids[d.index("frame", t.frame_ids.len())? as usize];
                if t.tree.depth(parent) >= MAX_STACK_DEPTH {
                    return Err(format!("a stack deeper than {MAX_STACK_DEPTH} frames"));
                }
                let node = t.tree.child(parent, frame);
                t.node_ids.push(node);
            }
            TAG_TICK => {
                let pid = d.i32("pid")?;
                let delta = d.i64("tick time")?;
                self.at = self
                    .at
                    .checked_add(delta)
                    .filter(|at| *at >= 0)
                    .ok_or_else(|| format!("tick time {} + {delta} ns is out of range", self.at))?;
                let late = d.u8("tick flags")? & TICK_LATE != 0;
                let count = d.u64("thread count")?;
                if count > MAX_TICK_THREADS {
                    return Err(format!(
                        "{count} threads in one tick, over the limit of {MAX_TICK_THREADS}"
                    ));
                }
                let start = tick_threads.len();
                for _ in 0..count {
                    let thread = d.index("thread", t.threads.len())?;
                    let flags = d.u8("thread flags")?;
                    let node = t.node_ids[d.index("stack", t.node_ids.len())? as usize];
                    tick_threads.push(TickThread {
                        thread,
                        flags,
                        node,
                    });
                }
                staged.push(Staged::Tick {
                    pid,
                    at: Duration::from_nanos(self.at as u64),
                    late,
                    threads: start..tick_threads.len(),
                });
            }
            TAG_ERROR => {
                let pid = d.i32("pid")?;
                staged.push(Staged::Error(pid, d.str("error message")?.to_string()));
            }
            TAG_ENDED => {
                let pid = d.i32("pid")?;
                staged.push(Staged::Ended(pid, decode_reason(d)?));
            }
            TAG_END => staged.push(Staged::End(Duration::from_nanos(d.u64("duration")?))),
            // A later minor version's record: skipped.
            _ => {}
        }
        Ok(())
    }
}

/// Bytes of a chunk header: stored length, raw length, encoding, checksum.
pub const CHUNK_HEAD: u64 = 13;

fn decode_reason(d: &mut Decoder) -> Result<EndReason, String> {
    Ok(match d.u8("end reason")? {
        0 => EndReason::Stopped,
        1 => EndReason::AggregatorGone,
        2 => EndReason::Exited,
        3 => EndReason::Replaced {
            exe: d.str("executable")?.to_string(),
        },
        4 => EndReason::GaveUp {
            failures: d.u32("failures")?,
            last: d.str("last error")?.to_string(),
        },
        5 => EndReason::PermissionDenied(d.str("message")?.to_string()),
        other => return Err(format!("unknown end reason {other}")),
    })
}
