//! `pysampler top`: wires a sampling session to the live view in `crate::top`.

use crate::cli::TopArgs;
use crate::error::{Error, Result};

pub fn run(_args: &TopArgs) -> Result<i32> {
    Err(Error::Usage("top is being built (issue 4)".into()))
}
