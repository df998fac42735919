//! Turning stacks and profiles into what people read.

pub mod dump_text;
pub mod filenames;
pub mod outfile;

// record's output formats
pub mod chrometrace;
pub mod collapsed;
pub mod flamegraph;
pub mod render;
pub mod speedscope;
