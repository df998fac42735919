//! How every output names a thread, so that a dump, a flame graph, a
//! speedscope profile and `top` call the same thread the same way.

/// A thread as outputs name it.
#[derive(Debug, Clone, Copy)]
pub struct ThreadName<'a> {
    /// Python's name for it (`threading.Thread.name`), when known.
    pub name: Option<&'a str>,
    /// The OS thread id, when known.
    pub tid: Option<i32>,
    /// Python's `threading.get_ident()`.
    pub ident: u64,
}

impl ThreadName<'_> {
    /// The OS thread id, or Python's ident in hex when the OS id is unknown.
    pub fn id(&self) -> String {
        match self.tid {
            Some(t) => t.to_string(),
            None => format!("{:#x}", self.ident),
        }
    }

    /// "MainThread (1234)", or "thread 1234" when nameless.
    pub fn label(&self) -> String {
        match self.name {
            Some(name) => format!("{name} ({})", self.id()),
            None => format!("thread {}", self.id()),
        }
    }

    /// The label with its process, for views that show several:
    /// "MainThread (1234) [pid 1230]".
    pub fn label_with_pid(&self, pid: i32) -> String {
        format!("{} [pid {pid}]", self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::ThreadName;

    #[test]
    fn named_nameless_and_without_os_id() {
        let main = ThreadName {
            name: Some("MainThread"),
            tid: Some(7),
            ident: 1,
        };
        assert_eq!(main.label(), "MainThread (7)");
        assert_eq!(main.label_with_pid(5), "MainThread (7) [pid 5]");
        let nameless = ThreadName {
            name: None,
            tid: Some(4301),
            ident: 1,
        };
        assert_eq!(nameless.label(), "thread 4301");
        let foreign = ThreadName {
            name: None,
            tid: None,
            ident: 0x7f00,
        };
        assert_eq!(foreign.id(), "0x7f00");
        assert_eq!(foreign.label(), "thread 0x7f00");
    }
}
