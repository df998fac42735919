//! The uploader thread and its bounded queue. The recorder hands windows
//! over without waiting; the thread sends them in order, retrying what a
//! retry may fix with backoff. When the queue is full the oldest window is
//! dropped (counted): a server that is down costs a few windows of memory,
//! never a stalled sampler or growing memory.

use super::args::Config;
use super::request::{Client, Failure};
use super::window::Window;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Windows waiting to be sent, at most (one minute at the default 10 s).
const QUEUE: usize = 6;
/// Tries of one window before it is given up.
const TRIES: u32 = 4;
/// The first wait before a retry; doubled each time, at most `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What became of the windows, for the status line and the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub pushed: u64,
    /// Thread samples in the windows pushed.
    pub samples_pushed: u64,
    /// Dropped from the full queue, unsent.
    pub dropped: u64,
    /// Given up after their tries, or refused for good.
    pub failed: u64,
    pub retries: u64,
    pub last_error: Option<String>,
}

struct State {
    queue: VecDeque<Window>,
    closing: bool,
    stats: Stats,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

pub struct Uploader {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Signalled by the thread when it is done.
    done: crossbeam_channel::Receiver<()>,
}

impl Uploader {
    pub fn start(config: Config) -> std::io::Result<Uploader> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(QUEUE),
                closing: false,
                stats: Stats::default(),
            }),
            wake: Condvar::new(),
        });
        let (tx, done) = crossbeam_channel::bounded(1);
        let client = Client::new(config);
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pyroscope".into())
            .spawn(move || {
                run(&inner, &client);
                let _ = tx.send(());
            })?;
        Ok(Uploader {
            shared,
            thread: Some(thread),
            done,
        })
    }

    /// Queues a window without waiting; the oldest goes when the queue is full.
    pub fn push(&self, window: Window) {
        if window.series.is_empty() {
            return;
        }
        let mut state = self.shared.state.lock();
        if state.queue.len() >= QUEUE {
            state.queue.pop_front();
            state.stats.dropped += 1;
        }
        state.queue.push_back(window);
        drop(state);
        self.shared.wake.notify_all();
    }

    pub fn stats(&self) -> Stats {
        self.shared.state.lock().stats.clone()
    }

    /// "pyroscope: 4 pushed, 1 dropped": for the status line.
    pub fn status(&self) -> String {
        let s = self.stats();
        let mut text = format!("pyroscope: {} pushed", s.pushed);
        if s.dropped + s.failed > 0 {
            text.push_str(&format!(", {} dropped", s.dropped + s.failed));
        }
        text
    }

    /// Sends what is queued (each window tried once more, no backoff), for
    /// at most `limit`; what is left then is counted as dropped.
    pub fn finish(mut self, limit: Duration) -> Stats {
        self.shared.state.lock().closing = true;
        self.shared.wake.notify_all();
        let finished = self.done.recv_timeout(limit).is_ok();
        if finished {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        let mut state = self.shared.state.lock();
        let left = state.queue.len() as u64;
        state.queue.clear();
        state.stats.dropped += left;
        if !finished {
            // The window being sent is not in the queue: it is lost too.
            state.stats.dropped += 1;
            state.stats.last_error.get_or_insert_with(|| {
                format!("the server did not answer within {} s", limit.as_secs())
            });
        }
        state.stats.clone()
    }
}

fn run(shared: &Shared, client: &Client) {
    let mut reported_permanent = false;
    loop {
        let window = {
            let mut state = shared.state.lock();
            loop {
                if let Some(w) = state.queue.pop_front() {
                    break w;
                }
                if state.closing {
                    return;
                }
                shared.wake.wait(&mut state);
            }
        };
        let samples: u64 = window.series.iter().map(|s| s.samples).sum();
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0;
        let outcome = loop {
            tries += 1;
            match client.send(&window) {
                Ok(()) => break Ok(()),
                Err(Failure::Retry(e)) => {
                    let mut state = shared.state.lock();
                    if tries >= TRIES || state.closing {
                        break Err(e);
                    }
                    state.stats.retries += 1;
                    state.stats.last_error = Some(e);
                    // Waits for the backoff, or less when Ctrl-C comes.
                    let until = Instant::now() + backoff;
                    while !state.closing && Instant::now() < until {
                        shared.wake.wait_until(&mut state, until);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(Failure::Permanent(e)) => {
                    if !reported_permanent {
                        // Once: the same answer would follow every window.
                        let clear = if std::io::stderr().is_terminal() {
                            "\r\x1b[K"
                        } else {
                            ""
                        };
                        eprintln!("{clear}pysampler: pushing to Pyroscope failed: {e}");
                        reported_permanent = true;
                    }
                    break Err(e);
                }
            }
        };
        let mut state = shared.state.lock();
        match outcome {
            Ok(()) => {
                state.stats.pushed += 1;
                state.stats.samples_pushed += samples;
            }
            Err(e) => {
                state.stats.failed += 1;
                state.stats.last_error = Some(e);
            }
        }
    }
}
