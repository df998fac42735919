//! The harness shared by pysampler's integration tests (tests/it), the
//! walker benchmarks (benches/walker.rs) and the fuzz tool
//! (fuzz/examples/fuzz-tool.rs):
//!
//! - [`pythons`]: the interpreters there are, found by label ("3.12",
//!   "debian-3.11", "3.14" in the Debian sid root, …), and what each one
//!   says its version is;
//! - [`fixture`]: a fixture program started on one of them (through chroot
//!   for the sid root), its stdout read line by line, the READY handshake
//!   waited for with a bound, and the process killed when dropped.
//!
//! A missing interpreter is an error (a panic for the `find`/`start`
//! forms): nothing here skips.

pub mod fixture;
pub mod pythons;

pub use fixture::{fixtures_dir, python_command, Target};
pub use pythons::Python;
