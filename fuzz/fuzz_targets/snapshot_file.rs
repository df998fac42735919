//! The snapshot file parser (`Snapshot::from_bytes`) on arbitrary bytes; a
//! file that loads is read around its regions and, for a supported version,
//! walked with its own metadata (layout included). The reduced snapshots the
//! tool exports from walker crashes are inputs of this target.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        pysampler_fuzz::install_overflow_tolerance();
    },
    |data: &[u8]| {
        pysampler_fuzz::guarded(|| pysampler_fuzz::run_snapshot_file(data));
    }
);
