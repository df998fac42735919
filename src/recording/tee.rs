//! `record`'s outputs: the rendered file, written once at the end, and the
//! recordings, written as the events come — the output itself when its
//! format is a recording, and `--recording FILE` beside any output. The
//! aggregator hands every event to `Outputs::event` before aggregating it.

use super::writer::Writer;
use super::Header;
use crate::aggregate::FrameTable;
use crate::error::{Error, Result};
use crate::output::outfile::OutputFile;
use crate::output::Format;
use crate::sampling::Event;
use parking_lot::Mutex;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A recording being written.
struct Recording {
    path: PathBuf,
    /// `None` before `start`, and after a write failed.
    writer: Option<Writer<BufWriter<File>>>,
    /// Its place until `start`.
    prepared: Option<OutputFile>,
    failed: Option<io::Error>,
}

impl Recording {
    fn prepared(file: OutputFile) -> Recording {
        Recording {
            path: file.path().to_path_buf(),
            writer: None,
            prepared: Some(file),
            failed: None,
        }
    }

    fn start(&mut self, header: &Header) -> Result<()> {
        let Some(file) = self.prepared.take() else {
            return Ok(());
        };
        let (path, file) = file.into_growing()?;
        let writer =
            Writer::new(BufWriter::with_capacity(1 << 16, file), header).map_err(|source| {
                Error::CannotWrite {
                    path: path.clone(),
                    source,
                }
            })?;
        self.writer = Some(writer);
        Ok(())
    }

    fn event(&mut self, event: &Event, frames: &Mutex<FrameTable>) {
        let Some(writer) = &mut self.writer else {
            return;
        };
        writer.event(event);
        if writer.due() {
            writer.add_frames(&frames.lock());
            // Once a second: what a power cut may lose.
            let written = writer
                .chunk()
                .and_then(|()| writer.get_ref().get_ref().sync_data());
            if let Err(e) = written {
                self.failed = Some(e);
                self.writer = None;
            }
        }
    }

    fn finish(&mut self, duration: Duration, frames: &Mutex<FrameTable>) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let Some(mut writer) = self.writer.take() else {
            return Ok(());
        };
        writer.add_frames(&frames.lock());
        let out = writer.finish(duration)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_data()
    }
}

/// Everything `record` writes.
pub struct Outputs {
    format: Format,
    /// The output, when it is rendered at the end.
    rendered: Option<OutputFile>,
    recordings: Vec<Recording>,
}

impl Outputs {
    /// Takes the checked output and, with `--recording FILE`, checks that
    /// path too; nothing is written yet.
    pub fn prepare(format: Format, output: OutputFile, also: Option<&Path>) -> Result<Outputs> {
        let mut outputs = Outputs {
            format,
            rendered: None,
            recordings: Vec::new(),
        };
        if format == Format::Recording {
            outputs.recordings.push(Recording::prepared(output));
        } else {
            outputs.rendered = Some(output);
        }
        if let Some(path) = also {
            if path == outputs.main_path() {
                return Err(Error::BadOptions(format!(
                    "--recording {} is the output file too: give another name",
                    path.display()
                )));
            }
            outputs
                .recordings
                .push(Recording::prepared(OutputFile::prepare(path)?));
        }
        Ok(outputs)
    }

    fn main_path(&self) -> &Path {
        match &self.rendered {
            Some(file) => file.path(),
            None => &self.recordings[0].path,
        }
    }

    /// Puts the recordings in place and writes their headers: call it once
    /// sampling has started.
    pub fn start(&mut self, header: &Header) -> Result<()> {
        for r in &mut self.recordings {
            r.start(header)?;
        }
        Ok(())
    }

    /// Encodes the event into each recording, writing a chunk when one is due.
    pub fn event(&mut self, event: &Event, frames: &Mutex<FrameTable>) {
        for r in &mut self.recordings {
            r.event(event, frames);
        }
    }

    /// Ends the recordings (the duration marks them complete) and renders the
    /// output; returns the output's path. A recording beside the output that
    /// failed is reported here; the output's own failure is the error.
    pub fn finish(
        mut self,
        duration: Duration,
        frames: &Mutex<FrameTable>,
        render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<PathBuf> {
        let main_is_recording = self.format == Format::Recording;
        let mut main_error = None;
        for (i, r) in self.recordings.iter_mut().enumerate() {
            if let Err(source) = r.finish(duration, frames) {
                if main_is_recording && i == 0 {
                    // What was written before the failure stays readable.
                    main_error = Some(Error::CannotWrite {
                        path: r.path.clone(),
                        source,
                    });
                } else {
                    eprintln!(
                        "pysampler: could not write the recording {}: {source}; it holds the samples up to then",
                        r.path.display()
                    );
                }
            }
        }
        match (self.rendered.take(), main_error) {
            (_, Some(e)) => Err(e),
            (Some(file), None) => file.write(render),
            (None, None) => Ok(self.recordings[0].path.clone()),
        }
    }
}
