//! Fault injection (issue 6): the target exits under pysampler (`record`,
//! `top`, `dump`), pysampler is signalled or killed, threads churn,
//! recursion is deep, code objects are freed and their addresses reused,
//! names are odd or huge, and the interpreter is starting or finalising.
//! Whatever happens, the target keeps running unharmed and not stopped,
//! pysampler never hangs or panics, and what it prints is either valid or a
//! clear message.
//!
//! Every test repeats its fault `PYSAMPLER_FAULT_ITERATIONS` times (default
//! 10). Random moments come from a seeded generator; the seed is printed and
//! `PYSAMPLER_FAULT_SEED=N` repeats a run. A test runs all its iterations,
//! prints a tally (`--nocapture` shows it) and then fails listing every
//! failed iteration with its interpreter, random choices and what went wrong.
//! Every wait is bounded; handshakes are lines from the fixture or pysampler
//! and /proc polled against a deadline.
//!
//! One file per fault family; the shared parts: `harness` (repetition,
//! seeds, tallies, time bounds), `procfs` (the target as /proc shows it),
//! `spawn` (running pysampler) and `judge` (what its output must be).

mod harness;
mod judge;
mod procfs;
mod spawn;

mod code_reuse;
mod deep;
mod exits;
mod names;
mod shutdown;
mod signals;
mod startup;
mod threads;
