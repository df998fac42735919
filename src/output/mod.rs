//! Turning stacks and profiles into what people read.

pub mod dump_text;
pub mod filenames;
