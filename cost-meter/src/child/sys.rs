//! The two system calls `std::process` does not offer: `wait4` (the child's exit status with its rusage) and
//! `kill` of a process group. The crate's only unsafe code outside the allocator; each call is a plain FFI
//! call with owned, initialised out-parameters.
#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums, reason = "a process exits or is killed by a signal")]
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
    wait_for(pid, false).map(|r| r.map(|(_, r)| r))?.ok_or_else(|| io::Error::other("wait4 returned no child"))
}

/// Reaps any child that ended: waits for one unless `nohang`; `Ok(None)` when `nohang` and none has ended,
/// or when there is no child left.
pub(crate) fn wait_any(nohang: bool) -> io::Result<Option<(i32, Reaped)>> {
    match wait_for(-1, nohang) {
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(None),
        other => other,
    }
}

/// Makes this process the reaper of its orphaned descendants (`PR_SET_CHILD_SUBREAPER`): a descendant whose
/// parent exits is re-parented to it rather than to init, so it can be waited for and metered.
pub(crate) fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only; PR_SET_CHILD_SUBREAPER reads no memory of ours.
    if unsafe {
        libc::prctl(
            libc::PR_SET_CHILD_SUBREAPER,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    } == 0
    {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn wait_for(pid: i32, nohang: bool) -> io::Result<Option<(i32, Reaped)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let options = if nohang { libc::WNOHANG } else { 0 };
    let reaped = loop {
        // SAFETY: both pointers are to live, writable locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, options, &mut usage) };
        if r > 0 {
            break r;
        }
        if r == 0 {
            return Ok(None);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let ended = if libc::WIFSIGNALED(status) {
        Ended::Signaled(libc::WTERMSIG(status))
    } else {
        Ended::Exited(libc::WEXITSTATUS(status))
    };
    Ok(Some((
        reaped,
        Reaped {
            ended,
            user: timeval(usage.ru_utime),
            system: timeval(usage.ru_stime),
            max_rss_bytes: (usage.ru_maxrss.max(0) as u64).saturating_mul(1024),
        },
    )))
}

/// Sends `signal` to process `pid`, or to its process group when `group`.
pub(crate) fn kill(pid: i32, signal: i32, group: bool) -> io::Result<()> {
    let target = if group { -pid } else { pid };
    // SAFETY: kill takes two integers and touches no memory of ours.
    if unsafe { libc::kill(target, signal) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}
