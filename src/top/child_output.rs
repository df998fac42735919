//! With the full-screen view, a launched program's output would be drawn
//! over the table and it would read the keys meant for the view. So it is
//! launched with stdin from /dev/null and stdout and stderr into a log file
//! (`ChildStreams::Log`, set on the session's launch configuration), whose
//! path is printed at the end when the program wrote anything. pysampler's
//! own descriptors are never touched: its errors reach the terminal as usual.

use crate::error::{Error, Result};
use crate::process::launch::ChildStreams;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// The file a launched program writes to.
pub struct ChildLog {
    path: PathBuf,
    file: Arc<File>,
}

impl ChildLog {
    pub fn create() -> Result<ChildLog> {
        let (file, path) = tempfile::Builder::new()
            .prefix("pysampler-top-")
            .suffix(".log")
            .tempfile()
            .and_then(|f| f.keep().map_err(|e| e.error))
            .map_err(|source| Error::File {
                path: std::env::temp_dir(),
                source,
            })?;
        Ok(ChildLog {
            path,
            file: Arc::new(file),
        })
    }

    /// The streams to launch the program with: into this log.
    pub fn streams(&self) -> ChildStreams {
        ChildStreams::Log {
            file: self.file.clone(),
            path: self.path.clone(),
        }
    }

    /// The log's path if the program wrote to it; an empty log is removed.
    pub fn finish(self) -> Option<PathBuf> {
        let written = self.file.metadata().map(|m| m.len() > 0).unwrap_or(false);
        if !written {
            let _ = std::fs::remove_file(&self.path);
            return None;
        }
        Some(self.path)
    }
}
