//! The one parser of `/proc/PID/stat` and `/proc/PID/task/TID/stat` lines
//! (proc(5)). The command, field 2, is in parentheses and may itself hold
//! spaces and parentheses: fields are counted after its last `)`.

/// A stat line, split after the command.
#[derive(Debug, Clone, Copy)]
pub struct StatLine<'a> {
    after_command: &'a str,
}

impl<'a> StatLine<'a> {
    pub fn parse(text: &'a str) -> Option<StatLine<'a>> {
        let end = text.rfind(')')?;
        Some(StatLine {
            after_command: text.get(end + 1..)?,
        })
    }

    /// Field `n`, numbered from 1 as in proc(5); 3 or more.
    pub fn field(&self, n: usize) -> Option<&'a str> {
        self.after_command.split_whitespace().nth(n.checked_sub(3)?)
    }

    fn number(&self, n: usize) -> Option<u64> {
        self.field(n)?.parse().ok()
    }

    /// The one-letter state (field 3): R, S, D, Z, T, t, X...
    pub fn state(&self) -> Option<char> {
        self.field(3)?.chars().next()
    }

    /// The parent pid (field 4).
    pub fn parent(&self) -> Option<i32> {
        self.field(4)?.parse().ok()
    }

    /// The kernel's flags (field 9): `PF_*`.
    pub fn flags(&self) -> Option<u64> {
        self.number(9)
    }

    /// When the process started, in clock ticks after boot (field 22).
    pub fn start_time(&self) -> Option<u64> {
        self.number(22)
    }

    /// Where the main thread's stack starts (field 28).
    pub fn start_stack(&self) -> Option<u64> {
        self.number(28)
    }

    /// Where the command line's arguments start (field 48).
    pub fn arg_start(&self) -> Option<u64> {
        self.number(48)
    }

    /// The CPU it last ran on (field 39).
    pub fn last_cpu(&self) -> Option<usize> {
        self.field(39)?.parse().ok()
    }

    /// Whether it has begun to exit (`PF_EXITING`), as after `exit_group` or
    /// a fatal signal, before it becomes a zombie.
    pub fn is_exiting(&self) -> bool {
        const PF_EXITING: u64 = 0x4;
        self.flags().is_some_and(|flags| flags & PF_EXITING != 0)
    }
}

/// The stat line of process `pid`, None when it is gone.
pub fn read_process(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

/// The stat line of thread `tid` of `pid`, None when it is gone.
pub fn read_thread(pid: i32, tid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()
}

#[cfg(test)]
mod tests {
    use super::StatLine;

    fn state(text: &str) -> Option<char> {
        StatLine::parse(text)?.state()
    }

    #[test]
    fn fields_survive_odd_command_names() {
        assert_eq!(state("12 (a) b) (c) S 1 2"), Some('S'));
        assert_eq!(state("12 (python) Z 1"), Some('Z'));
        assert_eq!(state("garbage"), None);
        let line = StatLine::parse("12 (a) b) S 1 2").unwrap();
        assert_eq!(line.field(5), Some("2"));
        assert_eq!(line.parent(), Some(1));
        assert_eq!(StatLine::parse("12 (a) S 1").unwrap().field(2), None);
    }

    #[test]
    fn own_stat_line_reads() {
        let text = super::read_process(std::process::id() as i32).expect("own stat");
        let line = StatLine::parse(&text).expect("parses");
        // The main thread waits for the test threads: running or asleep.
        assert!(matches!(line.state(), Some('R' | 'S')), "{text}");
        assert_eq!(
            line.parent(),
            Some(std::os::unix::process::parent_id() as i32)
        );
        assert!(line.start_time().is_some() && line.last_cpu().is_some());
        assert!(!line.is_exiting());
    }
}
