//! What `record` holds while pushing: the windows being cut and the
//! uploader they go to.

use super::args::Config;
use super::uploader::{Stats, Uploader};
use super::window::Windows;
use crate::aggregate::{FrameTable, ProcessSummary};
use crate::output::render::RenderOptions;
use crate::sampling::ThreadSample;
use parking_lot::Mutex;
use std::time::Duration;

pub struct Pusher {
    windows: Windows,
    uploader: Uploader,
    /// How long the last windows may take to send at the end.
    finish_limit: Duration,
    url: String,
}

impl Pusher {
    pub fn start(
        config: Config,
        started_unix: f64,
        opts: RenderOptions,
    ) -> std::io::Result<Pusher> {
        let windows = Windows::new(config.every, started_unix, config.rate_hz, opts);
        let finish_limit = config.timeout + Duration::from_secs(2);
        let url = config.url.clone();
        Ok(Pusher {
            windows,
            uploader: Uploader::start(config)?,
            finish_limit,
            url,
        })
    }

    pub fn sample(&mut self, pid: i32, at: Duration, threads: &[ThreadSample]) {
        self.windows.sample(pid, at, threads);
    }

    /// Cuts and queues the window when one is due.
    pub fn tick(
        &mut self,
        elapsed: Duration,
        processes: &[ProcessSummary],
        frames: &Mutex<FrameTable>,
    ) {
        if self.windows.due(elapsed) {
            let window = self.windows.cut(elapsed, processes, &frames.lock());
            self.uploader.push(window);
        }
    }

    pub fn status(&self) -> String {
        self.uploader.status()
    }

    /// Queues the last window and sends what is queued, waiting a bounded time.
    pub fn finish(
        mut self,
        elapsed: Duration,
        processes: &[ProcessSummary],
        frames: &Mutex<FrameTable>,
    ) -> (String, Stats) {
        let window = self.windows.cut(elapsed, processes, &frames.lock());
        self.uploader.push(window);
        let url = self.url;
        let stats = self.uploader.finish(self.finish_limit);
        (summary(&url, &stats), stats)
    }
}

/// The closing line: "pushed 5 windows (1234 samples) to URL; 2 dropped (why)".
fn summary(url: &str, s: &Stats) -> String {
    let mut text = format!(
        "pushed {} window(s) ({} samples) to {url}",
        s.pushed, s.samples_pushed
    );
    let lost = s.dropped + s.failed;
    if lost > 0 {
        text.push_str(&format!(
            "; {lost} window(s) not sent ({} dropped from the full queue, {} given up)",
            s.dropped, s.failed
        ));
    }
    if s.retries > 0 {
        text.push_str(&format!("; {} retries", s.retries));
    }
    if let Some(e) = &s.last_error {
        if lost > 0 || s.retries > 0 {
            text.push_str(&format!("; last error: {e}"));
        }
    }
    text
}
