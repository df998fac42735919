//! The core file parser (`CoreFile::parse`) on arbitrary bytes; a core that
//! parses has its command line, executable, mappings and build ids read,
//! and its memory read around the mapped files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        pysampler_fuzz::install_overflow_tolerance();
    },
    |data: &[u8]| {
        pysampler_fuzz::guarded(|| pysampler_fuzz::run_core_file(data));
    }
);
