//! What one system call costs right after a sleep, against the same call
//! again at once: why a sample at 100 Hz costs more than one at 1000 Hz.
//! After a sleep the CPU's caches hold other work (on a VM, another guest's),
//! so each distinct kernel path a sample takes is paid cold; BENCHMARKS.md
//! ("Cold samples") has the figures.
//!
//! Usage: cold_calls PID [SLEEP_US [ROUNDS]]. PID is any process we may read
//! (a Python target); its `[heap]` (or first writable mapping) is what the
//! `process_vm_readv` rows copy. Prints, per call, the mean wall time of the
//! first call after each sleep and of the same call repeated, then the CPU
//! per tick (getrusage of this thread) of loops that sleep and make a few of
//! those calls: the marginal cost of each at this rate.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(pid) = args.first().and_then(|a| a.parse::<i32>().ok()) else {
        eprintln!("usage: cold_calls PID [SLEEP_US [ROUNDS]]");
        std::process::exit(2);
    };
    let sleep = Duration::from_micros(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000));
    let rounds: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(300);
    let open = |path: String| {
        File::open(&path).unwrap_or_else(|e| {
            eprintln!("cold_calls: {path}: {e}");
            std::process::exit(1)
        })
    };
    let stat = open(format!("/proc/{pid}/task/{pid}/stat"));
    let schedstat = open(format!("/proc/{pid}/task/{pid}/schedstat"));
    let own_stat = open("/proc/thread-self/stat".to_string());
    let Some(region) = readable_region(pid) else {
        eprintln!("cold_calls: no writable mapping of {pid} found to read");
        std::process::exit(1);
    };
    let mut buf = vec![0u8; 64 * 1024];
    println!("after a sleep of {sleep:?}, mean of {rounds} (wall µs: first call, then again)");
    type Call<'a> = Box<dyn FnMut(&mut [u8]) + 'a>;
    let calls: Vec<(&str, Call)> = vec![
        (
            "getppid",
            Box::new(|_: &mut [u8]| {
                unsafe { libc::getppid() };
            }),
        ),
        (
            "pread stat",
            Box::new(|b: &mut [u8]| drop(stat.read_at(b, 0))),
        ),
        (
            "pread schedstat",
            Box::new(|b: &mut [u8]| drop(schedstat.read_at(b, 0))),
        ),
        (
            "pread own stat",
            Box::new(|b: &mut [u8]| drop(own_stat.read_at(b, 0))),
        ),
        (
            "process_vm_readv 4 KiB",
            Box::new(move |b: &mut [u8]| copy(pid, region, &mut b[..4096])),
        ),
        (
            "process_vm_readv 16 KiB",
            Box::new(move |b: &mut [u8]| copy(pid, region, &mut b[..16384])),
        ),
        (
            "process_vm_readv 44 KiB",
            Box::new(move |b: &mut [u8]| copy(pid, region, &mut b[..45056])),
        ),
    ];
    for (name, mut call) in calls {
        let (mut first, mut again) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..rounds {
            std::thread::sleep(sleep);
            // A cheap call first, so that "first" is this call's own path,
            // not the way into the kernel every call shares.
            unsafe { libc::getppid() };
            let t = Instant::now();
            call(&mut buf);
            let t1 = Instant::now();
            call(&mut buf);
            first += t1 - t;
            again += t1.elapsed();
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6 / rounds as f64;
        println!("  {name:<24} {:7.2}  {:6.2}", us(first), us(again));
    }
    println!("CPU per tick of a loop that sleeps, then (µs):");
    let loops: [(&str, bool, bool); 3] = [
        ("nothing", false, false),
        ("process_vm_readv 16 KiB", false, true),
        ("pread stat + process_vm_readv", true, true),
    ];
    for (name, read_stat, read_memory) in loops {
        let before = thread_cpu();
        for _ in 0..rounds {
            std::thread::sleep(sleep);
            if read_stat {
                let _ = stat.read_at(&mut buf[..1024], 0);
            }
            if read_memory {
                copy(pid, region, &mut buf[..16384]);
            }
        }
        let per_tick = (thread_cpu() - before).as_secs_f64() * 1e6 / rounds as f64;
        println!("  {name:<32} {per_tick:7.1}");
    }
}

/// The start of PID's `[heap]`, or of its first writable mapping of 64 KiB
/// or more.
fn readable_region(pid: i32) -> Option<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let parse = |line: &str| -> Option<(u64, u64, bool)> {
        let (range, rest) = line.split_once(' ')?;
        let (start, end) = range.split_once('-')?;
        let start = u64::from_str_radix(start, 16).ok()?;
        let end = u64::from_str_radix(end, 16).ok()?;
        Some((start, end, rest.starts_with("rw")))
    };
    let big = |l: &&str| parse(l).is_some_and(|(s, e, rw)| rw && e - s >= 64 * 1024);
    let heap = maps.lines().filter(big).find(|l| l.ends_with("[heap]"));
    let line = heap.or_else(|| maps.lines().find(big))?;
    parse(line).map(|(start, _, _)| start)
}

fn copy(pid: i32, remote: u64, into: &mut [u8]) {
    let local = libc::iovec {
        iov_base: into.as_mut_ptr().cast(),
        iov_len: into.len(),
    };
    let far = libc::iovec {
        iov_base: remote as *mut libc::c_void,
        iov_len: into.len(),
    };
    // SAFETY: one local buffer we own, one remote range; the kernel checks it.
    unsafe { libc::process_vm_readv(pid, &local, 1, &far, 1, 0) };
}

fn thread_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}
