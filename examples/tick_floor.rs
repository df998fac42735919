//! The CPU cost of waking up on time with nothing else to do: what every
//! sampling profiler pays per sample before it reads a byte. It uses
//! pysampler's own schedule and sampler-thread settings. `make bench` runs
//! it beside the CPU-per-sample runs and reports it as the wake floor
//! (see BENCHMARKS.md); its CPU time is measured from outside (getrusage).
//!
//! With `pause`, each tick also pauses and resumes a process the way the
//! pausing sampler does (process::pause, the sampler kept off the thread's
//! CPU), reading nothing: the floor of a pausing sample, which on a VM is
//! mostly the inter-processor interrupts that stop the thread and wake its
//! CPU. The process is a child spinning on one CPU, or PID's main thread
//! (for the slowdown that pausing alone causes); it stops when PID exits.
//!
//! Usage: tick_floor RATE_HZ SECONDS [pause [PID]]. Prints "ticks N late L".

use pysampler::process::pause::{self, Held, StopWait};
use pysampler::sampling::activity::Activity;
use pysampler::sampling::sampler_cpus::{stop_wait_for, SamplerCpus};
use pysampler::sampling::schedule::{prefer_this_thread, Schedule};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// What each tick pauses.
enum Paused {
    Nothing,
    /// Our child, spinning on the CPU we keep off.
    Spinner(Child),
    /// Another process's main thread, wherever it runs.
    Process {
        pid: i32,
        cpus: SamplerCpus,
        activity: Activity,
    },
}

fn main() {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let word = |i: usize| words.get(i).map(String::as_str);
    if word(0) == Some("spin") {
        spin_on_one_cpu();
    }
    let number = |i: usize| word(i).and_then(|w| w.parse::<f64>().ok());
    let (Some(rate), Some(seconds)) = (number(0), number(1)) else {
        usage();
    };
    let mut paused = match (word(2), word(3)) {
        (None, _) => Paused::Nothing,
        (Some("pause"), None) => Paused::Spinner(start_spinner()),
        (Some("pause"), Some(pid)) => Paused::Process {
            pid: pid.parse().unwrap_or_else(|_| usage()),
            cpus: SamplerCpus::new(),
            activity: Activity::default(),
        },
        _ => usage(),
    };
    prefer_this_thread();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let mut schedule = Schedule::new(start, Duration::from_secs_f64(1.0 / rate));
    let (mut ticks, mut late) = (0u64, 0u64);
    loop {
        let tick = schedule.wait();
        if Instant::now() >= end || !pause_once(&mut paused) {
            break;
        }
        ticks += 1;
        late += tick.late as u64;
    }
    // Killed, not waited for: a waited-for child's CPU would count as ours.
    if let Paused::Spinner(spinner) = &mut paused {
        let _ = spinner.kill();
    }
    println!("ticks {ticks} late {late}");
}

fn usage() -> ! {
    eprintln!("usage: tick_floor RATE_HZ SECONDS [pause [PID]]");
    std::process::exit(2);
}

/// Pauses and resumes what this tick pauses; false once it is gone.
fn pause_once(paused: &mut Paused) -> bool {
    let (pid, wait) = match paused {
        Paused::Nothing => return true,
        Paused::Spinner(child) => (child.id() as i32, StopWait::Spin),
        Paused::Process {
            pid,
            cpus,
            activity,
        } => {
            // As the sampler: a thread asleep is not paused; one running is
            // paused from another CPU, yielding only when it shares ours.
            if !activity.is_running(*pid, *pid) {
                return alive(*pid);
            }
            let its_cpu = activity.last_cpu(*pid);
            cpus.keep_off(its_cpu);
            (*pid, stop_wait_for(its_cpu))
        }
    };
    match pause::pause_thread(pid, pid, wait) {
        Ok(Held::Paused(held)) => {
            drop(held);
            true
        }
        Ok(Held::Running) => true,
        Ok(Held::Gone) => false,
        Err(e) if alive(pid) => {
            eprintln!("tick_floor: cannot pause process {pid}: {e}");
            std::process::exit(1);
        }
        Err(_) => false,
    }
}

/// Whether `pid` is still there and not exiting.
fn alive(pid: i32) -> bool {
    !pysampler::process::is_exiting(pid)
}

/// Starts `tick_floor spin` and keeps this thread off the CPU it spins on.
fn start_spinner() -> Child {
    let spawned = std::env::current_exe().and_then(|exe| Command::new(exe).arg("spin").spawn());
    let spinner = spawned.unwrap_or_else(|e| {
        eprintln!("tick_floor: cannot start the spinning child: {e}");
        std::process::exit(1);
    });
    SamplerCpus::new().keep_off(first_allowed_cpu());
    spinner
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
