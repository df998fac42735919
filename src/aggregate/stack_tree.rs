//! A prefix tree of stacks: every distinct stack is a node, so memory grows
//! with the number of distinct stacks, never with the number of samples.

use crate::aggregate::frames::FrameId;
use foldhash::HashMap;

pub type NodeId = u32;
/// The root: the empty stack.
pub const ROOT: NodeId = 0;

#[derive(Debug, Clone)]
struct Node {
    parent: NodeId,
    frame: FrameId,
    depth: u32,
}

/// Stacks stored root-first as paths from `ROOT`.
#[derive(Debug, Clone)]
pub struct StackTree {
    nodes: Vec<Node>,
    children: HashMap<(NodeId, FrameId), NodeId>,
}

impl Default for StackTree {
    fn default() -> Self {
        StackTree {
            nodes: vec![Node {
                parent: ROOT,
                frame: 0,
                depth: 0,
            }],
            children: HashMap::default(),
        }
    }
}

impl StackTree {
    /// The node of the stack `root_first` (outermost frame first), adding
    /// what is missing.
    pub fn insert(&mut self, root_first: impl IntoIterator<Item = FrameId>) -> NodeId {
        let mut node = ROOT;
        for frame in root_first {
            node = self.child(node, frame);
        }
        node
    }

    /// The node of `parent`'s stack with `frame` called from it, adding it
    /// when missing (a recording defines its stacks node by node). `parent`
    /// must be a node of this tree.
    pub fn child(&mut self, parent: NodeId, frame: FrameId) -> NodeId {
        match self.children.get(&(parent, frame)) {
            Some(child) => *child,
            None => {
                let child = self.nodes.len() as NodeId;
                let depth = self.nodes[parent as usize].depth + 1;
                self.nodes.push(Node {
                    parent,
                    frame,
                    depth,
                });
                self.children.insert((parent, frame), child);
                child
            }
        }
    }

    /// The frames of `node`'s stack, outermost first.
    pub fn path(&self, node: NodeId) -> Vec<FrameId> {
        let mut path = Vec::with_capacity(self.depth(node) as usize);
        let mut at = node;
        while at != ROOT {
            let n = &self.nodes[at as usize];
            path.push(n.frame);
            at = n.parent;
        }
        path.reverse();
        path
    }

    pub fn depth(&self, node: NodeId) -> u32 {
        self.nodes[node as usize].depth
    }

    pub fn parent(&self, node: NodeId) -> NodeId {
        self.nodes[node as usize].parent
    }

    pub fn frame(&self, node: NodeId) -> FrameId {
        self.nodes[node as usize].frame
    }

    /// Number of distinct stacks (and prefixes) stored.
    pub fn len(&self) -> usize {
        self.nodes.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_prefixes_and_returns_paths() {
        let mut t = StackTree::default();
        let a = t.insert([1, 2, 3]);
        let b = t.insert([1, 2, 4]);
        let c = t.insert([1, 2, 3]);
        assert_eq!(a, c);
        assert_ne!(a, b);
        assert_eq!(t.len(), 4);
        assert_eq!(t.path(b), vec![1, 2, 4]);
        assert_eq!(t.depth(b), 3);
        assert_eq!(t.insert([]), ROOT);
        assert!(t.path(ROOT).is_empty());
    }
}
