//! Ctrl-C, SIGTERM and SIGHUP ask pysampler to stop cleanly (finish the
//! output, detach); a second Ctrl-C exits at once. Exiting at once is safe
//! for the target: threads are only ever paused with PTRACE_INTERRUPT, which
//! the kernel undoes when the tracer exits.

use nix::sys::signal::Signal;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone)]
pub struct StopRequest {
    requested: Arc<AtomicBool>,
    /// The number of the signal that asked (the last one, if several did),
    /// so the closing summary can say which.
    signal: Arc<AtomicUsize>,
}

impl StopRequest {
    /// Installs the handlers. Without a handler (an error), signals keep
    /// their default effect, which still leaves the target running.
    pub fn install() -> StopRequest {
        let requested = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicUsize::new(0));
        for number in [SIGINT, SIGTERM, SIGHUP] {
            // Registered first, so it sees the flag as it was before this signal.
            let _ =
                signal_hook::flag::register_conditional_shutdown(number, 130, requested.clone());
            let _ = signal_hook::flag::register(number, requested.clone());
            // Signal numbers are small and positive: the cast keeps them.
            let _ = signal_hook::flag::register_usize(number, signal.clone(), number as usize);
        }
        StopRequest { requested, signal }
    }

    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// The signal that asked pysampler to stop, if one did.
    pub fn signal(&self) -> Option<Signal> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            n => i32::try_from(n).ok().and_then(|n| Signal::try_from(n).ok()),
        }
    }
}
