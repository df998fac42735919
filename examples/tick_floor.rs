//! The CPU cost of waking up on time with nothing else to do: what every
//! sampling profiler pays per sample before it reads a byte. It uses
//! pysampler's own schedule and sampler-thread settings. `make bench` runs
//! it beside the CPU-per-sample runs and reports it as the wake floor
//! (see BENCHMARKS.md); its CPU time is measured from outside (getrusage).
//!
//! Usage: tick_floor RATE_HZ SECONDS. Prints "ticks N late L".

use pysampler::sampling::schedule::{prefer_this_thread, Schedule};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [rate, seconds] = args[..] else {
        eprintln!("usage: tick_floor RATE_HZ SECONDS");
        std::process::exit(2);
    };
    prefer_this_thread();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut schedule = Schedule::new(start, Duration::from_secs_f64(1.0 / rate));
    let (mut ticks, mut late) = (0u64, 0u64);
    loop {
        let tick = schedule.wait();
        if Instant::now() >= end {
            break;
        }
        ticks += 1;
        late += tick.late as u64;
    }
    println!("ticks {ticks} late {late}");
}
