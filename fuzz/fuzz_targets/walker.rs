//! The whole walker (dump with locals, then sampler-style passes) over a
//! memory snapshot of a real interpreter whose hot bytes the fuzzer mutates.
//! Input: `[seed selector] [hot bytes…]`; see `pysampler_fuzz` (fuzz/src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        pysampler_fuzz::require_seeds(pysampler_fuzz::ALL_SEEDS);
        pysampler_fuzz::install_overflow_tolerance();
    },
    |data: &[u8]| {
        pysampler_fuzz::guarded(|| pysampler_fuzz::run_walker_input(data));
    }
);
