//! The kernel's clocks that cost figures come from: thread and process CPU time, and resident memory.

use std::time::Duration;

/// CPU time consumed by the calling thread, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`: a system call, about
/// 200 ns on the machines we measure on).
pub fn thread_cpu_ns() -> u64 {
    nanos(rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime))
}

/// CPU time consumed by the whole process, every thread, in nanoseconds (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_ns() -> u64 {
    nanos(rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime))
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu() -> Duration {
    Duration::from_nanos(thread_cpu_ns())
}

fn nanos(ts: rustix::time::Timespec) -> u64 {
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// The process's resident set size in bytes, from `/proc/self/statm` (None where that file does not exist).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_clock_advances_with_work_and_process_clock_covers_it() {
        // The process window encloses the thread's: read the process clock first and last.
        let p0 = process_cpu_ns();
        let t0 = thread_cpu_ns();
        let mut x = 0u64;
        while thread_cpu_ns() - t0 < 5_000_000 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let t1 = thread_cpu_ns();
        let p1 = process_cpu_ns();
        assert!(t1 - t0 >= 5_000_000);
        assert!(p1 - p0 >= t1 - t0, "the process clock counts this thread too");
    }

    #[test]
    fn rss_is_read_on_linux() {
        let rss = rss_bytes().expect("/proc/self/statm exists on Linux");
        assert!(rss > 0);
    }
}
