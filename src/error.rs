//! Errors a user can act on: the core's, which this crate shares.

pub use pysampler_core::error::{Error, Result};
