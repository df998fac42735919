//! Shortening source paths: pure text, so it lives in the core crate (the
//! dump renderer there needs it); re-exported where the outputs look for it.

pub use pysampler_core::filenames::FileNames;
