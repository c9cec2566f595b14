//! The two system calls `std::process` does not offer: `wait4` (the child's exit status with its rusage) and
//! `kill` of a process group. The crate's only unsafe code outside the allocator; each call is a plain FFI
//! call with owned, initialised out-parameters.
#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
}

/// What `wait4` reported for a child.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reaped {
    pub(crate) ended: Ended,
    pub(crate) user: Duration,
    pub(crate) system: Duration,
    /// The largest resident set of the child or of any descendant it waited for (`ru_maxrss`), in bytes.
    pub(crate) max_rss_bytes: u64,
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::new(tv.tv_sec.max(0) as u64, (tv.tv_usec.clamp(0, 999_999) as u32) * 1000)
}

/// Waits for child `pid` to end and reaps it, retrying when a signal interrupts the wait.
pub(crate) fn wait4(pid: i32) -> io::Result<Reaped> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live, writable locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let ended = if libc::WIFSIGNALED(status) {
        Ended::Signaled(libc::WTERMSIG(status))
    } else {
        Ended::Exited(libc::WEXITSTATUS(status))
    };
    Ok(Reaped {
        ended,
        user: timeval(usage.ru_utime),
        system: timeval(usage.ru_stime),
        max_rss_bytes: (usage.ru_maxrss.max(0) as u64).saturating_mul(1024),
    })
}

/// Sends `signal` to process `pid`, or to its process group when `group`.
pub(crate) fn kill(pid: i32, signal: i32, group: bool) -> io::Result<()> {
    let target = if group { -pid } else { pid };
    // SAFETY: kill takes two integers and touches no memory of ours.
    if unsafe { libc::kill(target, signal) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}
