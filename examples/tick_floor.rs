//! The CPU cost of waking up on time with nothing else to do: what every
//! sampling profiler pays per sample before it reads a byte. It uses
//! pysampler's own schedule and sampler-thread settings. `make bench` runs
//! it beside the CPU-per-sample runs and reports it as the wake floor
//! (see BENCHMARKS.md); its CPU time is measured from outside (getrusage).
//!
//! With `pause`, each tick also pauses and resumes a spinning child process
//! the way the pausing sampler does (process::pause, the sampler kept off
//! the child's CPU), reading nothing: the floor of a pausing sample, which
//! on a VM is mostly the inter-processor interrupts that stop and wake it.
//!
//! Usage: tick_floor RATE_HZ SECONDS [pause]. Prints "ticks N late L".

use pysampler::process::pause::{self, Held, StopWait};
use pysampler::sampling::sampler_cpus::SamplerCpus;
use pysampler::sampling::schedule::{prefer_this_thread, Schedule};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn main() {
    let words: Vec<String> = std::env::args().skip(1).collect();
    if words.first().map(String::as_str) == Some("spin") {
        spin_on_one_cpu();
    }
    let args: Vec<f64> = words.iter().filter_map(|a| a.parse().ok()).collect();
    let [rate, seconds] = args[..] else {
        eprintln!("usage: tick_floor RATE_HZ SECONDS [pause]");
        std::process::exit(2);
    };
    let mut child = words.iter().any(|w| w == "pause").then(start_spinner);
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
        if let Some((spinner, _)) = &child {
            pause_once(spinner.id() as i32);
        }
        ticks += 1;
        late += tick.late as u64;
    }
    // Killed, not waited for: a waited-for child's CPU would count as ours.
    if let Some((spinner, _)) = child.as_mut() {
        let _ = spinner.kill();
    }
    println!("ticks {ticks} late {late}");
}

/// Starts `tick_floor spin` and keeps this thread off the CPU it spins on.
fn start_spinner() -> (Child, SamplerCpus) {
    let exe = std::env::current_exe().expect("tick_floor: cannot find its own executable");
    let spinner = Command::new(exe)
        .arg("spin")
        .spawn()
        .expect("tick_floor: cannot start the spinning child");
    let mut cpus = SamplerCpus::new();
    cpus.keep_off(first_allowed_cpu());
    (spinner, cpus)
}

fn pause_once(pid: i32) {
    match pause::pause_thread(pid, pid, StopWait::Spin) {
        Ok(Held::Paused(held)) => drop(held),
        Ok(_) => {}
        Err(e) => {
            eprintln!("tick_floor: cannot pause the spinning child: {e}");
            std::process::exit(1);
        }
    }
}

fn first_allowed_cpu() -> Option<usize> {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;
    let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
    (0..CpuSet::count()).find(|&c| allowed.is_set(c).unwrap_or(false))
}

/// The child: spins on the first allowed CPU until killed (or its parent dies).
fn spin_on_one_cpu() -> ! {
    use nix::sched::{sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    // SAFETY: sets this process's parent-death signal; no pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if let Some(cpu) = first_allowed_cpu() {
        let mut one = CpuSet::new();
        if one.set(cpu).is_ok() {
            let _ = sched_setaffinity(Pid::from_raw(0), &one);
        }
    }
    loop {
        std::hint::spin_loop();
    }
}
