//! Reading another process's memory. `MemorySource` is the seam: the walker
//! reads through it, so it runs the same on a live pid and on a saved snapshot.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;
use std::fs::File;
use std::io::IoSliceMut;
use std::os::unix::fs::FileExt;

/// The little-endian word at byte `at` of `data`, or 0 when `data` is too
/// short: bytes copied from the target are parsed without trusting offsets.
pub fn word_at(data: &[u8], at: u64) -> u64 {
    usize::try_from(at)
        .ok()
        .and_then(|at| data.get(at..at.checked_add(8)?))
        .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .unwrap_or(0)
}

/// Where the walker gets bytes from.
pub trait MemorySource {
    /// Fills `buf` with the bytes at `addr`, or fails without partial data.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()>;

    /// Pid of the process the memory belongs to, for messages.
    fn pid(&self) -> i32;

    /// Fills several buffers at once, in order; returns how many of them,
    /// from the first, were read completely (a failed one ends the batch).
    /// Live processes do this in one syscall.
    fn read_many(&self, requests: &mut [(u64, &mut [u8])]) -> usize {
        let mut done = 0;
        for (addr, buf) in requests.iter_mut() {
            if self.read(*addr, buf).is_err() {
                break;
            }
            done += 1;
        }
        done
    }

    /// Marks the start of a group of reads that tends to repeat from one
    /// sample to the next (the thread list, one thread's walk); `None` ends
    /// the group. A source may then serve the group from one batched copy
    /// of what it read last time (see `prefetch`).
    fn begin_group(&self, _group: Option<u64>) {}

    fn read_u64(&self, addr: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn read_u32(&self, addr: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads `len` bytes into a new vector; callers cap `len` first.
    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read(addr, &mut v)?;
        Ok(v)
    }
}

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
