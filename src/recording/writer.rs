//! Writing a recording as the events come: each event becomes records in a
//! buffer, and the buffer becomes a checksummed (deflated) chunk about once
//! a second. Threads, stacks and frames are numbered exactly as the
//! recorder's `Profile` numbers them (same tables, same order of first
//! sight), so a replay rebuilds the same profile.

use super::codec::{put_i64, put_opt_i32, put_opt_str, put_record, put_str, put_u64};
use super::*;
use crate::aggregate::{FrameId, FrameTable, NodeId, StackTree, ThreadTable, ROOT};
use crate::sampling::{EndReason, Event, ThreadSample};
use flate2::write::DeflateEncoder;
use flate2::Compression;
use std::io::{self, Write};
use std::time::Instant;

/// A thread's last stack, root first, and the node of each of its prefixes.
#[derive(Default)]
struct LastStack {
    root_first: Vec<FrameId>,
    nodes: Vec<NodeId>,
}

/// Encodings of a chunk's stored bytes.
pub const STORED: u8 = 0;
pub const DEFLATE: u8 = 1;

pub struct Writer<W: Write> {
    out: W,
    /// Records waiting for the next chunk (frames are added at the chunk).
    records: Vec<u8>,
    /// One record's body, reused.
    body: Vec<u8>,
    tree: StackTree,
    /// Nodes of `tree` already defined in the file (the root is implicit).
    nodes_written: usize,
    /// Per thread index: its last stack.
    last_stacks: Vec<LastStack>,
    threads: ThreadTable,
    /// Per thread index: the name the file gives it.
    names_written: Vec<Option<String>>,
    frames_written: usize,
    /// Frame records waiting for the next chunk (they go first in it).
    frame_records: Vec<u8>,
    /// Time of the last tick written, in ns since the recording began.
    last_at: i64,
    last_chunk: Instant,
    chunks: u64,
}

impl<W: Write> Writer<W> {
    /// Writes the preamble and the header.
    pub fn new(mut out: W, header: &Header) -> io::Result<Writer<W>> {
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&MAJOR.to_le_bytes());
        head.extend_from_slice(&MINOR.to_le_bytes());
        let version = env!("CARGO_PKG_VERSION").as_bytes();
        head.push(version.len().min(255) as u8);
        head.extend_from_slice(&version[..version.len().min(255)]);
        let json = serde_json::to_vec(header).map_err(io::Error::from)?;
        head.extend_from_slice(&(json.len() as u32).to_le_bytes());
        head.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        head.extend_from_slice(&json);
        out.write_all(&head)?;
        out.flush()?;
        Ok(Writer {
            out,
            records: Vec::with_capacity(64 * 1024),
            body: Vec::with_capacity(256),
            tree: StackTree::default(),
            nodes_written: 0,
            last_stacks: Vec::new(),
            threads: ThreadTable::default(),
            names_written: Vec::new(),
            frames_written: 0,
            frame_records: Vec::new(),
            last_at: 0,
            last_chunk: Instant::now(),
            chunks: 0,
        })
    }

    /// Encodes one event (nothing is written until the next chunk).
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::Started(p) => {
                self.body.clear();
                put_i64(&mut self.body, i64::from(p.pid));
                put_str(&mut self.body, &p.command_line);
                put_opt_str(&mut self.body, p.cwd.as_deref());
                put_str(&mut self.body, &p.python_version);
                put_record(&mut self.records, TAG_PROCESS, &self.body);
            }
            Event::Sample {
                pid,
                at,
                late,
                threads,
            } => self.tick(*pid, *at, *late, threads),
            Event::Error { pid, message } => {
                self.body.clear();
                put_i64(&mut self.body, i64::from(*pid));
                put_str(&mut self.body, message);
                put_record(&mut self.records, TAG_ERROR, &self.body);
            }
            // Said at the end of `record`, not part of the samples.
            Event::Notice { .. } => {}
            Event::Ended { pid, reason } => {
                self.body.clear();
                put_i64(&mut self.body, i64::from(*pid));
                encode_reason(&mut self.body, reason);
                put_record(&mut self.records, TAG_ENDED, &self.body);
            }
        }
    }

    fn tick(&mut self, pid: i32, at: std::time::Duration, late: bool, threads: &[ThreadSample]) {
        // Threads and stacks first: the tick refers to them.
        let mut samples: Vec<(u32, u8, NodeId)> = Vec::with_capacity(threads.len());
        for t in threads {
            let index = self.thread(pid, t);
            let node = self.stack(index, &t.frames);
            let mut flags = 0;
            for (set, flag) in [
                (t.active, THREAD_ACTIVE),
                (t.owns_gil, THREAD_GIL),
                (t.truncated, THREAD_TRUNCATED),
            ] {
                if set {
                    flags |= flag;
                }
            }
            samples.push((index, flags, node));
        }
        let at = i64::try_from(at.as_nanos()).unwrap_or(i64::MAX);
        self.body.clear();
        put_i64(&mut self.body, i64::from(pid));
        put_i64(&mut self.body, at.saturating_sub(self.last_at));
        self.last_at = at;
        self.body.push(if late { TICK_LATE } else { 0 });
        put_u64(&mut self.body, samples.len() as u64);
        for (index, flags, node) in samples {
            put_u64(&mut self.body, u64::from(index));
            self.body.push(flags);
            put_u64(&mut self.body, u64::from(node));
        }
        put_record(&mut self.records, TAG_TICK, &self.body);
    }

    /// The thread's index, defining it (or its new name) when needed.
    fn thread(&mut self, pid: i32, t: &ThreadSample) -> u32 {
        let index = self.threads.index(pid, t.tid, t.ident, t.name.as_deref());
        let known = &self.threads[index as usize];
        let mut body = Vec::new();
        if index as usize == self.names_written.len() {
            put_i64(&mut body, i64::from(pid));
            put_opt_i32(&mut body, known.tid);
            put_u64(&mut body, known.ident);
            put_opt_str(&mut body, known.name.as_deref());
            put_record(&mut self.records, TAG_THREAD, &body);
            self.names_written.push(known.name.clone());
        } else if self.names_written[index as usize] != known.name {
            if let Some(name) = &known.name {
                put_u64(&mut body, u64::from(index));
                put_str(&mut body, name);
                put_record(&mut self.records, TAG_THREAD_NAME, &body);
            }
            self.names_written[index as usize] = known.name.clone();
        }
        index
    }

    /// The node of the stack (innermost frame first), defining new nodes.
    /// Consecutive stacks of a thread mostly share a long prefix from the
    /// root: only the frames past the shared part are looked up in the tree
    /// (the same nodes `StackTree::insert` gives, for less hashing).
    fn stack(&mut self, thread: u32, innermost_first: &[FrameId]) -> NodeId {
        let t = thread as usize;
        if self.last_stacks.len() <= t {
            self.last_stacks.resize_with(t + 1, LastStack::default);
        }
        let last = &mut self.last_stacks[t];
        let common = last
            .root_first
            .iter()
            .zip(innermost_first.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        last.root_first.truncate(common);
        last.nodes.truncate(common);
        let mut node = last.nodes.last().copied().unwrap_or(ROOT);
        for &frame in innermost_first[..innermost_first.len() - common]
            .iter()
            .rev()
        {
            node = self.tree.child(node, frame);
            last.root_first.push(frame);
            last.nodes.push(node);
        }
        while self.nodes_written < self.tree.len() {
            self.nodes_written += 1;
            let id = self.nodes_written as NodeId;
            let mut body = Vec::with_capacity(8);
            put_u64(&mut body, u64::from(self.tree.parent(id)));
            put_u64(&mut body, u64::from(self.tree.frame(id)));
            put_record(&mut self.records, TAG_STACK, &body);
        }
        node
    }

    /// Whether a chunk is due: a second since the last, or a full buffer.
    pub fn due(&self) -> bool {
        !self.records.is_empty()
            && (self.records.len() >= CHUNK_BYTES || self.last_chunk.elapsed() >= CHUNK_EVERY)
    }

    /// Whether nothing is waiting for a chunk.
    pub fn is_idle(&self) -> bool {
        self.records.is_empty() && self.frame_records.is_empty()
    }

    /// Encodes the frames of `frames` not written yet. Every frame an event
    /// refers to is in the table before the event is sent, so frames taken
    /// after the events are all the chunk needs. Cheap: the caller may hold
    /// the samplers' lock on the table for it, but not for `chunk`.
    pub fn add_frames(&mut self, frames: &FrameTable) {
        let mut body = Vec::new();
        for id in self.frames_written..frames.len() {
            let f = frames.get(id as FrameId);
            body.clear();
            put_str(&mut body, &f.name);
            put_str(&mut body, &f.filename);
            put_u64(&mut body, u64::from(f.line));
            put_u64(&mut body, u64::from(f.first_line));
            put_u64(&mut body, u64::from(f.column));
            put_record(&mut self.frame_records, TAG_FRAME, &body);
        }
        self.frames_written = self.frames_written.max(frames.len());
    }

    /// Writes what is waiting as one chunk: the new frames, then the rest.
    pub fn chunk(&mut self) -> io::Result<()> {
        self.last_chunk = Instant::now();
        if self.records.is_empty() && self.frame_records.is_empty() {
            return Ok(());
        }
        let mut raw = std::mem::take(&mut self.frame_records);
        raw.extend_from_slice(&self.records);
        self.records.clear();
        let mut deflated =
            DeflateEncoder::new(Vec::with_capacity(raw.len() / 4), Compression::new(6));
        deflated.write_all(&raw)?;
        let deflated = deflated.finish()?;
        let (encoding, stored) = if deflated.len() < raw.len() {
            (DEFLATE, deflated.as_slice())
        } else {
            (STORED, raw.as_slice())
        };
        let mut head = [0u8; 9];
        head[..4].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&(raw.len() as u32).to_le_bytes());
        head[8] = encoding;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(stored);
        self.out.write_all(&head)?;
        self.out.write_all(&crc.finalize().to_le_bytes())?;
        self.out.write_all(stored)?;
        // Into the OS now: a SIGKILL after this loses nothing written.
        self.out.flush()?;
        self.chunks += 1;
        Ok(())
    }

    /// Marks the recording complete (its duration) and writes the last
    /// chunk (after `add_frames`).
    pub fn finish(mut self, duration: std::time::Duration) -> io::Result<W> {
        self.body.clear();
        put_u64(
            &mut self.body,
            u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
        );
        put_record(&mut self.records, TAG_END, &self.body);
        self.chunk()?;
        Ok(self.out)
    }

    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

/// Why a sampler stopped: a kind byte and its detail.
fn encode_reason(out: &mut Vec<u8>, reason: &EndReason) {
    match reason {
        EndReason::Stopped => out.push(0),
        EndReason::AggregatorGone => out.push(1),
        EndReason::Exited => out.push(2),
        EndReason::Replaced { exe } => {
            out.push(3);
            put_str(out, exe);
        }
        EndReason::GaveUp { failures, last } => {
            out.push(4);
            put_u64(out, u64::from(*failures));
            put_str(out, last);
        }
        EndReason::PermissionDenied(message) => {
            out.push(5);
            put_str(out, message);
        }
    }
}
