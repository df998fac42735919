//! The offsets tables from `python-offsets/`, embedded at build time.

use crate::error::{Error, Result};
use crate::interpreter::layout::Layout;
use crate::interpreter::version::Version;

include!(concat!(env!("OUT_DIR"), "/tables.rs"));

/// The table for `version`: a patch-level override ("3.11.2") if there is
/// one, else the minor version's table ("3.11").
pub fn layout_for(version: &Version) -> Result<Layout> {
    let exact = version.to_string();
    let minor = version.minor_key();
    let (key, text) = TABLES
        .iter()
        .find(|(k, _)| *k == exact)
        .or_else(|| TABLES.iter().find(|(k, _)| *k == minor))
        .ok_or_else(|| super::families::unsupported(&exact))?;
    Layout::from_toml(text).map_err(|e| Error::Layout {
        version: key.to_string(),
        detail: e.to_string(),
    })
}

/// The supported minor versions ("3.12"), oldest first, for `--version`.
pub fn supported_minors() -> Vec<String> {
    crate::interpreter::families::supported_versions()
        .map(|(major, minor)| format!("{major}.{minor}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_version_has_a_table_and_every_table_a_supported_version() {
        for minor in supported_minors() {
            assert!(
                TABLES.iter().any(|(k, _)| *k == minor),
                "no python-offsets/{minor}.toml"
            );
        }
        for (key, _) in TABLES {
            let version = Version::parse(key).unwrap();
            assert!(
                crate::interpreter::families::is_supported(&version),
                "{key}.toml: not in families::SUPPORTED"
            );
            let pair = (version.major, version.minor);
            assert_eq!(
                version.free_threaded,
                crate::interpreter::families::FREE_THREADED.contains(&pair) && key.ends_with('t'),
                "{key}.toml: free-threaded tables and families::FREE_THREADED differ"
            );
        }
        for (major, minor) in crate::interpreter::families::FREE_THREADED {
            let key = format!("{major}.{minor}t");
            assert!(
                TABLES.iter().any(|(k, _)| *k == key),
                "no python-offsets/{key}.toml"
            );
        }
    }

    #[test]
    fn every_table_parses() {
        assert!(!TABLES.is_empty());
        for (key, text) in TABLES {
            let layout = Layout::from_toml(text).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert!(
                layout.version.starts_with(&key[..key.len().min(3)]),
                "{key}"
            );
        }
    }
}
