//! The walker over pristine 3.13+ snapshots with hostile `_Py_DebugOffsets`
//! values: on 3.13+ `Interpreter::locate` takes the layout from the target's
//! memory, so every offset is attacker-controlled.
//! Input: `[seed selector] ([field selector] [u64 LE value])*`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        pysampler_fuzz::require_seeds(pysampler_fuzz::LAYOUT_SEEDS);
        pysampler_fuzz::install_overflow_tolerance();
    },
    |data: &[u8]| {
        pysampler_fuzz::guarded(|| {
            if let Some((seed, interp)) = pysampler_fuzz::layout_input(data) {
                pysampler_fuzz::exercise(&interp, seed.snap.memory(), &seed.snap.tids);
            }
        });
    }
);
