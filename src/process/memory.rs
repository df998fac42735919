//! Memory of a live process, read with `process_vm_readv`: the
//! `MemorySource` the core's walker reads through when sampling.

pub use pysampler_core::memory::{word_at, MemorySource};

use nix::errno::Errno;
use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;
use pysampler_core::error::{Error, Result};
use std::fs::File;
use std::io::IoSliceMut;
use std::os::unix::fs::FileExt;

/// Memory of a live process: `process_vm_readv`, falling back to
/// `/proc/PID/mem` where that syscall is not allowed (some seccomp profiles).
pub struct LiveMemory {
    pid: i32,
    proc_mem: Option<File>,
}

impl LiveMemory {
    pub fn new(pid: i32) -> LiveMemory {
        LiveMemory {
            pid,
            proc_mem: None,
        }
    }

    fn error(&self, errno: Errno, addr: u64, len: usize) -> Error {
        match errno {
            Errno::ESRCH => Error::ProcessExited(self.pid),
            Errno::EPERM | Errno::EACCES => crate::process::permissions::explain(self.pid),
            _ => Error::Memory {
                pid: self.pid,
                addr,
                len,
                source: std::io::Error::from_raw_os_error(errno as i32),
            },
        }
    }

    fn read_proc_mem(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let file = match &self.proc_mem {
            Some(f) => f,
            None => return Err(self.error(Errno::ENOSYS, addr, buf.len())),
        };
        file.read_exact_at(buf, addr).map_err(|e| Error::Memory {
            pid: self.pid,
            addr,
            len: buf.len(),
            source: e,
        })
    }

    /// Opens `/proc/PID/mem` for the fallback path. Called when
    /// `process_vm_readv` reports ENOSYS/EPERM on first use.
    pub fn with_proc_mem_fallback(mut self) -> LiveMemory {
        self.proc_mem = File::open(format!("/proc/{}/mem", self.pid)).ok();
        self
    }
}

impl MemorySource for LiveMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let len = buf.len();
        if len == 0 {
            return Ok(());
        }
        let remote = [RemoteIoVec {
            base: addr as usize,
            len,
        }];
        let result = process_vm_readv(
            Pid::from_raw(self.pid),
            &mut [IoSliceMut::new(buf)],
            &remote,
        );
        match result {
            Ok(n) if n == len => Ok(()),
            Ok(_) => Err(self.error(Errno::EFAULT, addr, len)),
            Err(Errno::ENOSYS) | Err(Errno::EPERM) if self.proc_mem.is_some() => {
                self.read_proc_mem(addr, buf)
            }
            Err(e) => Err(self.error(e, addr, len)),
        }
    }

    fn pid(&self) -> i32 {
        self.pid
    }

    fn read_many(&self, requests: &mut [(u64, &mut [u8])]) -> usize {
        let mut done = 0;
        // The kernel takes at most IOV_MAX (1024) segments per call.
        for chunk in requests.chunks_mut(1024) {
            let remote: Vec<RemoteIoVec> = chunk
                .iter()
                .map(|(addr, buf)| RemoteIoVec {
                    base: *addr as usize,
                    len: buf.len(),
                })
                .collect();
            let mut local: Vec<IoSliceMut> = chunk
                .iter_mut()
                .map(|(_, buf)| IoSliceMut::new(buf))
                .collect();
            let Ok(mut n) = process_vm_readv(Pid::from_raw(self.pid), &mut local, &remote) else {
                return done;
            };
            // A partial transfer stops at the first segment that failed.
            for r in &remote {
                if n < r.len {
                    return done;
                }
                n -= r.len;
                done += 1;
            }
        }
        done
    }
}
