//! Turning "permission denied" into a reason and a remedy.

use crate::error::Error;
use std::os::unix::fs::MetadataExt;

const CAP_SYS_PTRACE: u32 = 19;

/// Builds the error for a denied read of `pid`, naming the likely cause.
/// A process that is exiting refuses access too: that is its exit.
pub fn explain(pid: i32) -> Error {
    if !crate::process::is_alive(pid) || crate::process::is_exiting(pid) {
        return Error::ProcessExited(pid);
    }
    Error::PermissionDenied {
        pid,
        reason: reason(pid),
    }
}

fn reason(pid: i32) -> String {
    let our_uid = nix::unistd::geteuid().as_raw();
    let their_uid = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid());
    let has_cap = has_ptrace_capability();
    if let Ok(uid) = their_uid {
        if uid != our_uid && !has_cap {
            return format!(
                "it belongs to another user (uid {uid}, you are uid {our_uid}); run pysampler as that user or with sudo"
            );
        }
    }
    if let Some(scope) = ptrace_scope() {
        if scope >= 1 && !has_cap {
            return format!(
                "the kernel's Yama ptrace_scope is {scope}, which lets only a parent read its children; run with sudo, or set it to 0 with `sudo sysctl kernel.yama.ptrace_scope=0`"
            );
        }
    }
    if !has_cap {
        return "pysampler lacks the CAP_SYS_PTRACE capability; run with sudo, or in Docker add `--cap-add SYS_PTRACE`, in Kubernetes add SYS_PTRACE to the container's securityContext.capabilities.add".into();
    }
    "the kernel refused access even with CAP_SYS_PTRACE (a seccomp profile or an LSM such as AppArmor/SELinux may block process_vm_readv and ptrace); in Docker use `--cap-add SYS_PTRACE --security-opt seccomp=unconfined`".into()
}

fn ptrace_scope() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether our effective capabilities include CAP_SYS_PTRACE.
pub fn has_ptrace_capability() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_PTRACE) != 0)
}
