//! Waiting for keys without trusting crossterm's reader with a dead terminal:
//! once the terminal hangs up (an ssh connection drops, the tmux pane is
//! killed), crossterm 0.28 retries the empty read forever inside
//! `event::poll`, so the view would never see the hang-up and spin at full
//! CPU. Here the terminal is polled first, and crossterm is only asked to
//! read when there is input and no hang-up.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    Input,
    Timeout,
    /// The terminal is gone.
    HungUp,
}

/// The terminal keys come from: stdin, or /dev/tty when stdin is redirected
/// (crossterm makes the same choice).
pub struct Input {
    fd: RawFd,
    _tty: Option<File>,
}

impl Input {
    pub fn open() -> io::Result<Input> {
        if io::stdin().is_terminal() {
            return Ok(Input {
                fd: libc::STDIN_FILENO,
                _tty: None,
            });
        }
        let tty = File::open("/dev/tty")?;
        Ok(Input {
            fd: tty.as_raw_fd(),
            _tty: Some(tty),
        })
    }

    /// Waits up to `timeout` for input.
    pub fn wait(&self, timeout: Duration) -> io::Result<Ready> {
        let mut poll = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut poll, 1, millis) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::Interrupted => Ok(Ready::Timeout),
                _ => Err(e),
            };
        }
        Ok(
            if poll.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                Ready::HungUp
            } else if poll.revents & libc::POLLIN != 0 {
                Ready::Input
            } else {
                Ready::Timeout
            },
        )
    }
}
