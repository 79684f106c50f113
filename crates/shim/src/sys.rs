//! The few C library functions the shim needs that std does not offer.
//!
//! Why `unsafe` is allowed here, and only here: std has no API for signal masks, for waiting on
//! a signal (`sigtimedwait`), for reaping *any* child (`waitpid(-1)`, needed to reap orphans as
//! PID 1), for sending a signal other than SIGKILL (`kill`), for becoming a child subreaper
//! (`prctl`), or for giving a child a clean signal state (`Command::pre_exec` is unsafe). The default build takes no crates at all, not even `libc`, to keep the static
//! binary small and its supply chain empty, so the functions are declared here with
//! `extern "C"` and each is wrapped in a safe function that owns every pointer it passes.
//! Nothing outside this module uses `unsafe`; the workspace denies it everywhere else.
//!
//! The constants and layouts are those of Linux on x86_64 and aarch64 (glibc and musl agree:
//! `sigset_t` is 128 bytes, `timespec` is two 64-bit words); other targets do not compile.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_long, c_ulong};
use std::io;
use std::time::Duration;

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("sidecar-shim's sys module knows the signal ABI of Linux x86_64 and aarch64 only");

pub const SIGHUP: c_int = 1;
pub const SIGINT: c_int = 2;
pub const SIGQUIT: c_int = 3;
pub const SIGKILL: c_int = 9;
pub const SIGTERM: c_int = 15;
pub const SIGCHLD: c_int = 17;

const SIG_BLOCK: c_int = 0;
const SIG_SETMASK: c_int = 2;
const SIG_DFL: usize = 0;
const WNOHANG: c_int = 1;
const PR_SET_CHILD_SUBREAPER: c_int = 36;
const EAGAIN: i32 = 11;
const EINTR: i32 = 4;

/// glibc's and musl's `sigset_t`: 1024 bits.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SigSet([u64; 16]);

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: c_long,
}

unsafe extern "C" {
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigaddset(set: *mut SigSet, signum: c_int) -> c_int;
    fn pthread_sigmask(how: c_int, set: *const SigSet, oldset: *mut SigSet) -> c_int;
    fn sigtimedwait(set: *const SigSet, info: *mut u8, timeout: *const Timespec) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
}

/// Blocks `signals` in the calling thread (and in every thread it spawns later) so that they
/// stay pending until [`wait_signal`] takes them. Also resets SIGCHLD to its default
/// disposition: an ignored SIGCHLD inherited from the parent would make the kernel reap our
/// children before we could read their status.
pub fn block_signals(signals: &[c_int]) -> io::Result<SigSet> {
    let mut set = SigSet([0; 16]);
    // SAFETY: `set` is a valid, writable sigset_t for the duration of each call.
    unsafe {
        sigemptyset(&mut set);
        for &sig in signals {
            if sigaddset(&mut set, sig) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        signal(SIGCHLD, SIG_DFL);
        let rc = pthread_sigmask(SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    Ok(set)
}

/// Makes `command`'s child start with no blocked signal and the default disposition of the
/// signals we forward, whatever ours are. Without it the child would inherit our blocked mask
/// (std resets it on some spawn paths only): a supervised `sleep` would never die of the
/// SIGTERM we forward. Ignored dispositions are reset too (a shell starting us in the
/// background ignores SIGINT and SIGQUIT, and exec keeps ignored signals ignored).
pub fn clean_signals_in_child(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec. It calls only
    // sigemptyset, pthread_sigmask and signal, which are async-signal-safe, on a set that
    // lives on the child's stack; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            let mut set = SigSet([0; 16]);
            sigemptyset(&mut set);
            for sig in [SIGHUP, SIGINT, SIGQUIT, SIGTERM] {
                signal(sig, SIG_DFL);
            }
            let rc = pthread_sigmask(SIG_SETMASK, &set, std::ptr::null_mut());
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(rc))
            }
        });
    }
}

/// Waits up to `timeout` for one of the signals in `set` (which must be blocked).
/// `Ok(None)` on timeout or interruption: callers loop anyway.
pub fn wait_signal(set: &SigSet, timeout: Duration) -> io::Result<Option<c_int>> {
    let ts = Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: c_long::from(timeout.subsec_nanos()),
    };
    // SAFETY: `set` and `ts` outlive the call; a null `info` is allowed by POSIX.
    let rc = unsafe { sigtimedwait(set, std::ptr::null_mut(), &ts) };
    if rc > 0 {
        return Ok(Some(rc));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(EAGAIN | EINTR) => Ok(None),
        _ => Err(err),
    }
}

/// Sends `sig` to `pid` (a negative pid names a process group).
pub fn send_signal(pid: i32, sig: c_int) -> io::Result<()> {
    // SAFETY: plain system call on integers.
    if unsafe { kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reaps one exited child, any child (orphans re-parented to us included), without blocking:
/// its pid and raw wait status, or `None` when no child has exited.
pub fn reap_one() -> Option<(i32, i32)> {
    let mut status: c_int = 0;
    loop {
        // SAFETY: `status` is a valid, writable int.
        let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
        if pid > 0 {
            return Some((pid, status));
        }
        if pid < 0 && io::Error::last_os_error().raw_os_error() == Some(EINTR) {
            continue;
        }
        // 0: children exist but none exited; -1 with ECHILD: no children at all.
        return None;
    }
}

/// Makes this process the reaper of orphaned descendants (as PID 1 is), so that a sidecar's
/// double-forked helpers are reaped by us even when we are not PID 1.
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) reads only its integer arguments.
    let rc = unsafe {
        prctl(
            PR_SET_CHILD_SUBREAPER,
            1 as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The conventional status of a finished process: its exit code, or 128 + the signal that
/// killed it (what a shell and the kubelet report).
pub fn status_code(raw: i32) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::ExitStatus::from_raw(raw);
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 128,
    }
}

/// The name of a signal we handle, for log lines.
pub fn signal_name(sig: c_int) -> &'static str {
    match sig {
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        SIGQUIT => "SIGQUIT",
        SIGKILL => "SIGKILL",
        SIGTERM => "SIGTERM",
        SIGCHLD => "SIGCHLD",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_code_maps_exit_and_signal() {
        // Raw wait statuses as the kernel encodes them.
        assert_eq!(status_code(0), 0);
        assert_eq!(status_code(3 << 8), 3);
        assert_eq!(status_code(SIGTERM), 143);
        assert_eq!(status_code(SIGKILL), 137);
    }
}
