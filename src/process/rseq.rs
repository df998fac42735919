//! The CPU a thread runs on, read from its own memory: glibc 2.35+
//! registers a `struct rseq` for every thread, and the kernel writes the
//! thread's CPU into its `cpu_id` field each time the thread returns to
//! user space after it was preempted or moved. A thread running Python
//! code is in user space, so the field is where it runs now.
//!
//! The pausing sampler needs that CPU to keep off it (sampling::sampler_cpus).
//! From `/proc/PID/task/TID/stat` it costs a `pread`, 21–27 µs after the
//! sampler's sleep at 100 Hz (BENCHMARKS.md, "Cold samples"); from here it is
//! four bytes in the batched copy the sample makes anyway.
//!
//! Where: `__rseq_offset` (exported by glibc's dynamic loader) is the
//! area's offset from the thread pointer, and on x86-64 the thread pointer
//! is glibc's `struct pthread`, which CPython keeps as the thread's ident
//! (`pthread_self()`). `__rseq_size` is 0 when glibc did not register it
//! (`glibc.pthread.rseq=0`, or a kernel without rseq); other C libraries do
//! not export the symbols. Either way there is no rseq CPU, and the sampler
//! reads stat as before.

use crate::process::binary::Binary;
use crate::process::maps::{mapped_files, regions};
use crate::process::memory::MemorySource;
use crate::process::ProcessInfo;

/// `cpu_id` within `struct rseq` (after `cpu_id_start`).
const CPU_ID_OFFSET: i64 = 4;
/// No machine this runs on has more CPUs; a larger value (-1: not
/// registered, -2: registration failed, or garbage) is no answer.
const MAX_CPUS: u32 = 1 << 16;

/// Where each thread's rseq `cpu_id` is, relative to its `struct pthread`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RseqCpus {
    offset: i64,
}

impl RseqCpus {
    /// Finds the target's rseq offset through its dynamic loader, if it has
    /// one that registered rseq (x86-64 only: elsewhere the thread pointer
    /// is not `struct pthread`).
    pub fn find(process: &ProcessInfo, mem: &dyn MemorySource) -> Option<RseqCpus> {
        if !cfg!(target_arch = "x86_64") {
            return None;
        }
        let files = mapped_files(&regions(process.pid).ok()?);
        let loader = files.iter().find(|f| {
            let name = f.path.rsplit('/').next().unwrap_or("");
            name.starts_with("ld-linux") || name.starts_with("ld64.so")
        })?;
        let binary = crate::process::binary::load(process, loader).ok()?;
        Self::from_loader(&binary, mem)
    }

    /// The offset from a parsed loader and the target's memory.
    fn from_loader(loader: &Binary, mem: &dyn MemorySource) -> Option<RseqCpus> {
        let size = mem.read_u32(loader.symbol("__rseq_size")?).ok()?;
        let mut offset = [0u8; 8];
        mem.read(loader.symbol("__rseq_offset")?, &mut offset)
            .ok()?;
        // The size of the features in use (20 in glibc 2.40 and Debian's
        // 2.36, 32 before): `cpu_id` must be one of them.
        (size as i64 >= CPU_ID_OFFSET + 4).then_some(RseqCpus {
            offset: i64::from_le_bytes(offset),
        })
    }

    /// The address of the `cpu_id` of the thread whose `struct pthread` is
    /// at `pthread` (CPython's thread ident).
    fn cpu_id_address(&self, pthread: u64) -> u64 {
        pthread
            .wrapping_add_signed(self.offset)
            .wrapping_add_signed(CPU_ID_OFFSET)
    }

    /// The thread's CPU as read from its `cpu_id`, if it is one.
    pub fn cpu(&self, mem: &dyn MemorySource, pthread: u64) -> Option<usize> {
        let cpu = mem.read_u32(self.cpu_id_address(pthread)).ok()?;
        (cpu < MAX_CPUS).then_some(cpu as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::memory::LiveMemory;

    /// Our own threads run on glibc too: each one's rseq CPU, read the way
    /// a target's is, is the CPU it says it runs on.
    #[test]
    fn each_thread_s_rseq_cpu_is_where_it_runs() {
        let pid = std::process::id() as i32;
        // `ProcessInfo::open` refuses ourselves, which is right for targets.
        let process = ProcessInfo {
            pid,
            exe: String::new(),
            cmdline: Vec::new(),
            root: "/".into(),
            cwd: None,
            identity: None,
        };
        let mem = LiveMemory::new(pid);
        let Some(rseq) = RseqCpus::find(&process, &mem) else {
            // Only where glibc registers rseq; this machine's does (2.36).
            // SAFETY: glibc returns a pointer to its static, NUL-terminated
            // version string.
            let glibc = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
            panic!("no rseq offset found (glibc {glibc:?})");
        };
        // Each thread pins itself to one CPU first. Free to move, a thread
        // moved between `sched_getcpu` and the read (often, on a loaded
        // machine) made the two disagree; pinned, it cannot move, so its
        // `cpu_id` must name that CPU at every read.
        use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
        use nix::unistd::Pid;
        let allowed = sched_getaffinity(Pid::from_raw(0)).expect("an affinity mask");
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&c| allowed.is_set(c).unwrap_or(false))
            .collect();
        let threads: Vec<_> = (0..4)
            .map(|k| {
                let cpu = cpus[k % cpus.len()];
                std::thread::spawn(move || {
                    let mut only = CpuSet::new();
                    only.set(cpu).unwrap();
                    sched_setaffinity(Pid::from_raw(0), &only).expect("pin the thread");
                    let me = nix::sys::pthread::pthread_self() as u64;
                    let mem = LiveMemory::new(pid);
                    let agreed = (0..100)
                        .filter(|_| {
                            let here = nix::sched::sched_getcpu().unwrap_or(usize::MAX);
                            here == cpu && rseq.cpu(&mem, me) == Some(cpu)
                        })
                        .count();
                    (cpu, agreed)
                })
            })
            .collect();
        for t in threads {
            let (cpu, agreed) = t.join().unwrap();
            eprintln!("pinned to CPU {cpu}: rseq CPU agreed {agreed} times of 100");
            assert_eq!(
                agreed, 100,
                "pinned to CPU {cpu}: rseq CPU agreed {agreed} times of 100"
            );
        }
    }
}
