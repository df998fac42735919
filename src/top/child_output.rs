//! With the full-screen view, a launched program's output would be drawn
//! over the table and it would read the keys meant for the view. So while it
//! is started (it inherits pysampler's stdin, stdout and stderr), those point
//! elsewhere: stdin to /dev/null, stdout and stderr to a log file, whose path
//! is printed at the end when the program wrote anything. (pysampler's own
//! descriptors are redirected for that while, as `Session::start` both
//! launches the program and waits for its interpreter; errors are returned
//! and printed after, and a panic hook puts the descriptors back first.)

use crate::error::{Error, Result};
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::{Mutex, Once};

/// The file a launched program writes to.
pub struct ChildLog {
    path: PathBuf,
    file: File,
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
        Ok(ChildLog { path, file })
    }

    /// Points stdin, stdout and stderr away until the guard is dropped.
    pub fn redirect(&self) -> Result<Redirect> {
        let null = File::open("/dev/null").map_err(|source| Error::File {
            path: "/dev/null".into(),
            source,
        })?;
        let mut guard = Redirect::new();
        let targets = [
            (libc::STDIN_FILENO, null.as_raw_fd()),
            (libc::STDOUT_FILENO, self.file.as_raw_fd()),
            (libc::STDERR_FILENO, self.file.as_raw_fd()),
        ];
        for (fd, to) in targets {
            guard.swap(fd, to).map_err(|source| Error::Terminal {
                what: "redirecting the program's output",
                source,
            })?;
        }
        Ok(guard)
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

/// Restores the redirected descriptors when dropped.
pub struct Redirect {
    _private: (),
}

/// Each redirected descriptor and a copy of what it was. Shared with the
/// panic hook, so that a panic while redirected (pysampler's own stderr goes
/// to the log then) is still printed where the user sees it.
static SAVED: Mutex<Vec<(RawFd, OwnedFd)>> = Mutex::new(Vec::new());
static PANIC_HOOK: Once = Once::new();

impl Redirect {
    fn new() -> Redirect {
        PANIC_HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        Redirect { _private: () }
    }

    fn swap(&mut self, fd: RawFd, to: RawFd) -> std::io::Result<()> {
        // The saved copy is close-on-exec, so the program does not inherit it.
        // SAFETY: `fd` is one of this process's standard descriptors, open
        // for its whole life; borrowing it for the call closes nothing.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let saved = borrowed.try_clone_to_owned()?;
        // SAFETY: dup2 onto a standard descriptor: it closes and replaces
        // `fd` atomically; no Rust object owns `fd` (std's handles to the
        // standard streams only write to the number).
        if unsafe { libc::dup2(to, fd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if let Ok(mut all) = SAVED.lock() {
            all.push((fd, saved));
        }
        Ok(())
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts every redirected descriptor back.
fn restore() {
    // try_lock: a panic while the lock is held must not deadlock the hook.
    if let Ok(mut all) = SAVED.try_lock() {
        for (fd, saved) in all.drain(..).rev() {
            // SAFETY: as in `swap`: puts the saved copy back on the
            // standard descriptor it was taken from.
            unsafe {
                libc::dup2(saved.as_raw_fd(), fd);
            }
        }
    }
}
