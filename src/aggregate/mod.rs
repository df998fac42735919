//! Aggregating samples: interned frames, the stack tree, counts and timeline.

pub mod frames;
pub mod profile;
pub mod stack_tree;
pub mod threads;

pub use frames::{FrameId, FrameInfo, FrameTable};
pub use profile::{ProcessSummary, Profile, RecordingInfo, Run};
pub use stack_tree::{NodeId, StackTree, ROOT};
pub use threads::{ThreadIndex, ThreadInfo, ThreadTable};
