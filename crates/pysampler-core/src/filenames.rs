//! Shortening source paths the way people read them: the part after
//! site-packages, after the standard library folder, or after the program's
//! working directory. Used by `dump` and by every format that shows frames.

/// How file names are shown.
#[derive(Debug, Clone)]
pub struct FileNames {
    cwd: Option<String>,
    full: bool,
}

impl FileNames {
    pub fn new(cwd: Option<String>, full: bool) -> FileNames {
        FileNames { cwd, full }
    }

    pub fn show<'a>(&self, path: &'a str) -> &'a str {
        if self.full {
            return path;
        }
        for marker in ["/site-packages/", "/dist-packages/"] {
            if let Some(i) = path.rfind(marker) {
                return &path[i + marker.len()..];
            }
        }
        if let Some(rest) = after_stdlib_dir(path) {
            return rest;
        }
        if let Some(cwd) = &self.cwd {
            if let Some(rest) = path
                .strip_prefix(cwd.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                return rest;
            }
        }
        path
    }
}

/// The part after ".../lib/pythonX.Y/" (the standard library).
fn after_stdlib_dir(path: &str) -> Option<&str> {
    let start = path.rfind("/lib/python")?;
    let rest = &path[start + "/lib/python".len()..];
    let slash = rest.find('/')?;
    let version = &rest[..slash];
    let looks_like_version = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == 'm' || c == 't');
    looks_like_version.then(|| &rest[slash + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_known_prefixes() {
        let n = FileNames::new(Some("/srv/app".into()), false);
        assert_eq!(
            n.show("/usr/lib/python3/dist-packages/uvicorn/main.py"),
            "uvicorn/main.py"
        );
        assert_eq!(
            n.show("/venv/lib/python3.12/site-packages/fastapi/routing.py"),
            "fastapi/routing.py"
        );
        assert_eq!(
            n.show("/root/.pyenv/versions/3.12.1/lib/python3.12/threading.py"),
            "threading.py"
        );
        assert_eq!(n.show("/usr/lib/python2.7/threading.py"), "threading.py");
        assert_eq!(n.show("/srv/app/main.py"), "main.py");
        assert_eq!(n.show("/srv/application.py"), "/srv/application.py");
        assert_eq!(n.show("<string>"), "<string>");
        let full = FileNames::new(None, true);
        assert_eq!(
            full.show("/usr/lib/python3.12/threading.py"),
            "/usr/lib/python3.12/threading.py"
        );
    }
}
