//! Ctrl-C, SIGTERM and SIGHUP ask pysampler to stop cleanly (finish the
//! output, detach); a second Ctrl-C exits at once. Exiting at once is safe
//! for the target: threads are only ever paused with PTRACE_INTERRUPT, which
//! the kernel undoes when the tracer exits.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone)]
pub struct StopRequest(Arc<AtomicBool>);

impl StopRequest {
    /// Installs the handlers. Without a handler (an error), signals keep
    /// their default effect, which still leaves the target running.
    pub fn install() -> StopRequest {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            // Registered first, so it sees the flag as it was before this signal.
            let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone());
            let _ = signal_hook::flag::register(signal, flag.clone());
        }
        StopRequest(flag)
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
