//! CPython versions and what they imply about the interpreter's structures.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    /// None when only "X.Y" could be found (a library name without a version string).
    pub patch: Option<u32>,
    /// Pre-release suffix such as "a1" or "rc2"; empty for a final release.
    pub release: String,
    /// A free-threaded build (`--disable-gil`, "3.13t"): its object header,
    /// and so every object field, is laid out differently.
    #[serde(default)]
    pub free_threaded: bool,
}

impl Version {
    pub fn new(major: u32, minor: u32, patch: Option<u32>) -> Version {
        Version {
            major,
            minor,
            patch,
            release: String::new(),
            free_threaded: false,
        }
    }

    /// Parses "3.12.1", "3.13.0rc2" or "3.9", and free-threaded builds
    /// written with a trailing "t" ("3.13t", "3.13.5t").
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let (text, free_threaded) = match text.strip_suffix('t') {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let mut parts = text.splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let (patch, release) = match parts.next() {
            None => (None, String::new()),
            Some(rest) => {
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                (Some(digits.parse().ok()?), rest[digits.len()..].to_string())
            }
        };
        Some(Version {
            major,
            minor,
            patch,
            release,
            free_threaded,
        })
    }

    /// Decodes PY_VERSION_HEX (as in `Py_Version` and `_Py_DebugOffsets.version`).
    pub fn from_hex(hex: u64) -> Version {
        let level = match (hex >> 4) & 0xf {
            0xa => "a",
            0xb => "b",
            0xc => "rc",
            _ => "",
        };
        let release = if level.is_empty() {
            String::new()
        } else {
            format!("{level}{}", hex & 0xf)
        };
        Version {
            major: ((hex >> 24) & 0xff) as u32,
            minor: ((hex >> 16) & 0xff) as u32,
            patch: Some(((hex >> 8) & 0xff) as u32),
            release,
            free_threaded: false,
        }
    }

    /// The name of the minor version's table: "3.12", or "3.13t" for a
    /// free-threaded build.
    pub fn minor_key(&self) -> String {
        format!("{}.{}{}", self.major, self.minor, self.build_suffix())
    }

    fn build_suffix(&self) -> &'static str {
        if self.free_threaded {
            "t"
        } else {
            ""
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{}{}", self.major, self.minor, p, self.release)?,
            None => write!(f, "{}.{}", self.major, self.minor)?,
        }
        f.write_str(self.build_suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interpreter::families::is_supported;

    #[test]
    fn parses_and_prints() {
        assert_eq!(Version::parse("3.12.1").unwrap().to_string(), "3.12.1");
        assert_eq!(Version::parse("3.13.0rc2").unwrap().release, "rc2");
        assert_eq!(Version::parse("3.9").unwrap().to_string(), "3.9");
        assert!(Version::parse("x.y").is_none());
        assert_eq!(Version::from_hex(0x030c01f0).to_string(), "3.12.1");
        assert_eq!(Version::from_hex(0x030f00a2).to_string(), "3.15.0a2");
        let ft = Version::parse("3.13.5t").unwrap();
        assert!(ft.free_threaded && ft.patch == Some(5));
        assert_eq!(
            (ft.to_string(), ft.minor_key()),
            ("3.13.5t".into(), "3.13t".into())
        );
        assert_eq!(Version::parse("3.13t").unwrap().minor_key(), "3.13t");
        assert!(!Version::parse("3.13.5").unwrap().free_threaded);
    }

    #[test]
    fn supported() {
        assert!(!is_supported(&Version::new(3, 16, Some(0))));
        assert!(is_supported(&Version::new(3, 15, None)));
        assert!(is_supported(&Version::new(2, 7, Some(18))));
    }
}
