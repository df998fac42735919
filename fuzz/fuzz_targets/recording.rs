//! The recording reader (`Reader`, `replay`, `export`) and the outputs it
//! feeds, on arbitrary bytes. Seeds: `fuzz-tool recording-seeds`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        pysampler_fuzz::install_overflow_tolerance();
    },
    |data: &[u8]| {
        pysampler_fuzz::guarded(|| pysampler_fuzz::recording::run_recording(data));
    }
);
