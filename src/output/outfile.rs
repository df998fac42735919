//! Writing an output file safely: checked before sampling starts, written to
//! a temporary file in the same folder and renamed into place at the end, so
//! a symlink planted at the path (e.g. in /tmp) is replaced, never followed,
//! and a half-written profile never appears under the final name.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct OutputFile {
    path: PathBuf,
    temp: tempfile::NamedTempFile,
}

impl OutputFile {
    /// Checks that `path` can be written, by creating the temporary file now.
    pub fn prepare(path: &Path) -> Result<OutputFile> {
        if path.is_dir() {
            return Err(Error::OutputIsDirectory {
                path: path.to_path_buf(),
            });
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::OutputFolderMissing {
                path: path.to_path_buf(),
                folder: dir.to_path_buf(),
            });
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .permissions(default_permissions())
            .tempfile_in(&dir)
            .map_err(|source| Error::CannotWrite {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            temp,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the content with `render`, then moves it into place. When the
    /// move fails, the written file is kept under its temporary name, which
    /// the error gives.
    pub fn write(
        mut self,
        render: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<PathBuf> {
        let target = self.path.clone();
        let failed = |source: std::io::Error| Error::CannotWrite {
            path: target.clone(),
            source,
        };
        {
            let mut out = std::io::BufWriter::new(self.temp.as_file_mut());
            render(&mut out).map_err(failed)?;
            out.flush().map_err(failed)?;
        }
        if let Some((uid, gid)) = crate::process::launch::sudo_user() {
            // Under sudo the file belongs to the user who asked for it.
            let _ = std::os::unix::fs::fchown(self.temp.as_file(), Some(uid), Some(gid));
        }
        let path = self.path.clone();
        match self.temp.persist(&path) {
            Ok(_) => Ok(path),
            Err(e) => match e.file.keep() {
                Ok((_, kept)) => Err(Error::OutputNotMoved {
                    path,
                    kept,
                    source: e.error,
                }),
                Err(_) => Err(Error::CannotWrite {
                    path,
                    source: e.error,
                }),
            },
        }
    }
}

impl OutputFile {
    /// For a file written as it goes (a recording): moved into place now,
    /// empty, and returned open, so that what is written is under its final
    /// name even if pysampler is killed. The same checks as `prepare` (a
    /// symlink at the path is replaced, not followed).
    pub fn into_growing(self) -> Result<(PathBuf, std::fs::File)> {
        if let Some((uid, gid)) = crate::process::launch::sudo_user() {
            let _ = std::os::unix::fs::fchown(self.temp.as_file(), Some(uid), Some(gid));
        }
        let path = self.path.clone();
        let file = self.temp.persist(&path).map_err(|e| Error::File {
            path: path.clone(),
            source: e.error,
        })?;
        Ok((path, file))
    }
}

/// rw for everyone, minus the umask: what a plain `open(O_CREAT, 0666)` gives.
fn default_permissions() -> std::fs::Permissions {
    use nix::sys::stat::{umask, Mode};
    use std::os::unix::fs::PermissionsExt;
    // umask can only be read by setting it: set and restore at once.
    let mask = umask(Mode::from_bits_truncate(0o022));
    umask(mask);
    std::fs::Permissions::from_mode(0o666 & !mask.bits())
}

/// "main-20261125T141503.svg": the program's name and the local time.
pub fn default_name(program: &str, extension: &str) -> PathBuf {
    // SAFETY: time(NULL) only returns the time; a zeroed tm is a valid
    // value of that plain C struct, which localtime_r fills from `now` (no
    // nix or std wrapper gives the local time zone's broken-down time).
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    PathBuf::from(format!(
        "{}-{:04}{:02}{:02}T{:02}{:02}{:02}.{}",
        program,
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        extension
    ))
}

/// A short name for a command line: the script for `python x.py`, else the program.
pub fn program_name(argv: &[String]) -> String {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let script = argv.iter().skip(1).find(|a| a.ends_with(".py"));
    let name = match script {
        Some(s) => base(s).trim_end_matches(".py").to_string(),
        None => argv
            .first()
            .map(|p| base(p))
            .unwrap_or_else(|| "python".into()),
    };
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "profile".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_names() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            program_name(&v(&["python", "/srv/app/main.py", "-x"])),
            "main"
        );
        assert_eq!(
            program_name(&v(&["/usr/bin/uvicorn", "app:app"])),
            "uvicorn"
        );
        assert_eq!(program_name(&[]), "python");
    }

    #[test]
    fn writes_atomically_and_replaces_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("out.svg");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let out = OutputFile::prepare(&link).unwrap();
        out.write(|w| w.write_all(b"profile")).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "profile");
        assert!(!std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn missing_folder_is_an_error() {
        let err = OutputFile::prepare(Path::new("/nonexistent/dir/out.svg"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
