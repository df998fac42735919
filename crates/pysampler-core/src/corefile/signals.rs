//! Signal names, and which signals end a process with a core dump.

/// "SIGSEGV", or "signal N" for one without a name here.
pub fn name(signal: u32) -> String {
    let known = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        17 => "SIGCHLD",
        19 => "SIGSTOP",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => return format!("signal {signal}"),
    };
    known.to_string()
}

/// Whether `signal`'s default action is to end the process with a core
/// (signal(7)); a core with another signal was written by something else,
/// such as `gcore` stopping a running process.
pub fn is_fatal_with_core(signal: u32) -> bool {
    matches!(signal, 3 | 4 | 5 | 6 | 7 | 8 | 11 | 24 | 25 | 31)
}
