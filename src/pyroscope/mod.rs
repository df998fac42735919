//! Continuous profiling into Grafana Pyroscope: `record --pyroscope URL`
//! cuts the samples into windows (`--push-every`), encodes each as pprof
//! (`window`) and hands it to an uploader thread behind a bounded queue
//! (`uploader`), which sends it to the server's push or ingest API
//! (`request`). Sampling never waits on the network: a slow or dead server
//! costs retries and, past the queue, dropped windows, which are counted.

mod args;
mod pusher;
mod request;
mod uploader;
mod window;

pub use args::{Api, Config, PyroscopeArgs};
pub use pusher::Pusher;
pub use uploader::Stats;

/// Basic auth is read from these, never from the command line (where `ps` shows it).
pub const USER_VAR: &str = "PYROSCOPE_BASIC_AUTH_USER";
pub const PASSWORD_VAR: &str = "PYROSCOPE_BASIC_AUTH_PASSWORD";
