//! The kernel's CPU clocks and the page size.
//!
//! On Unix these come from `rustix`'s safe wrappers of `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`,
//! `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` and the auxiliary vector, so this crate keeps
//! `#![forbid(unsafe_code)]`. Each clock read is a real system call (≈ 200 ns here, not vDSO): read them per
//! slice, not per instruction.

use std::time::Duration;

/// CPU time consumed by the calling thread.
#[cfg(unix)]
pub(crate) fn thread_cpu() -> Duration {
    timespec(rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime))
}

/// CPU time consumed by the whole process (all threads, user and system).
#[cfg(unix)]
pub(crate) fn process_cpu() -> Duration {
    timespec(rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime))
}

/// The size of a memory page in bytes.
#[cfg(unix)]
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

#[cfg(unix)]
fn timespec(ts: rustix::time::Timespec) -> Duration {
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Duration::new(secs, 0).saturating_add(Duration::from_nanos(u64::from(nanos)))
}

// Elsewhere there is no per-thread CPU clock we can read safely: wall time since the first call stands in,
// which makes the burners spin at 100% of their slices. Brownout's pressure targets Linux.
#[cfg(not(unix))]
pub(crate) fn thread_cpu() -> Duration {
    fallback_epoch().elapsed()
}

#[cfg(not(unix))]
pub(crate) fn process_cpu() -> Duration {
    fallback_epoch().elapsed()
}

#[cfg(not(unix))]
pub(crate) fn page_size() -> usize {
    4096
}

#[cfg(not(unix))]
fn fallback_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_clock_advances_with_work_and_not_with_sleep() {
        let start = thread_cpu();
        std::thread::sleep(Duration::from_millis(20));
        let slept = thread_cpu().saturating_sub(start);
        assert!(slept < Duration::from_millis(5), "sleeping burned {slept:?}");
        assert!(process_cpu() >= thread_cpu().saturating_sub(Duration::from_millis(1)));
        assert!(page_size().is_power_of_two());
    }
}
