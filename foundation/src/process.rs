//! The kernel's figures for the calling thread and process: CPU clocks, the page size, resident memory.
//!
//! On Unix the clocks are `rustix`'s safe wrappers of `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` and
//! `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`, so no `unsafe` is needed here. Each read is a real system call
//! (about 200 ns, not vDSO): read them per slice of work, not per instruction. [`monotonic_ns`] and
//! [`realtime_ns`] read the wall clocks as plain nanosecond counts (vDSO reads).
//!
//! Elsewhere there is no per-thread CPU clock that can be read safely: wall time since the first call stands
//! in, and the page size is taken as 4096. Brownout targets Linux.
//!
//! ```
//! use brownout_foundation::process;
//! let before = process::thread_cpu();
//! assert!(process::thread_cpu() >= before);
//! assert!(process::page_size().is_power_of_two());
//! ```

use std::time::Duration;

/// CPU time consumed by the calling thread.
#[inline]
pub fn thread_cpu() -> Duration {
    Duration::from_nanos(thread_cpu_ns())
}

/// CPU time consumed by the whole process (every thread, user and system).
#[inline]
pub fn process_cpu() -> Duration {
    Duration::from_nanos(process_cpu_ns())
}

/// CPU time consumed by the calling thread, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
#[cfg(unix)]
#[inline]
pub fn thread_cpu_ns() -> u64 {
    read_ns(rustix::time::ClockId::ThreadCPUTime)
}

/// CPU time consumed by the whole process, every thread, in nanoseconds (`CLOCK_PROCESS_CPUTIME_ID`).
#[cfg(unix)]
#[inline]
pub fn process_cpu_ns() -> u64 {
    read_ns(rustix::time::ClockId::ProcessCPUTime)
}

/// The size of a memory page in bytes.
#[cfg(unix)]
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// A clock's reading in nanoseconds.
#[cfg(unix)]
#[inline]
fn read_ns(clock: rustix::time::ClockId) -> u64 {
    nanos(rustix::time::clock_gettime(clock))
}

/// A clock's reading in nanoseconds; a negative field (which the kernel never gives) counts as zero and a sum
/// past `u64::MAX` (584 years) saturates.
#[cfg(unix)]
#[inline]
fn nanos(ts: rustix::time::Timespec) -> u64 {
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// The monotonic clock (`CLOCK_MONOTONIC`, the clock behind `std::time::Instant`) in nanoseconds from an
/// unspecified start: a vDSO read, not a system call, and a plain integer, so an interval is one subtraction
/// (`Instant::duration_since` normalises seconds and nanoseconds, about 50 instructions).
#[cfg(unix)]
#[inline]
pub fn monotonic_ns() -> u64 {
    read_ns(rustix::time::ClockId::Monotonic)
}

/// The calendar clock (`CLOCK_REALTIME`) in nanoseconds since the Unix epoch (0 for a time before it).
#[cfg(unix)]
#[inline]
pub fn realtime_ns() -> u64 {
    read_ns(rustix::time::ClockId::Realtime)
}

/// The monotonic clock in nanoseconds from an unspecified start (here, the first call).
#[cfg(not(unix))]
pub fn monotonic_ns() -> u64 {
    fallback_ns()
}

/// The calendar clock in nanoseconds since the Unix epoch (0 for a time before it).
#[cfg(not(unix))]
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// CPU time of the calling thread in nanoseconds; here, wall time since the first call (see the module).
#[cfg(not(unix))]
pub fn thread_cpu_ns() -> u64 {
    fallback_ns()
}

/// CPU time of the process in nanoseconds; here, wall time since the first call (see the module).
#[cfg(not(unix))]
pub fn process_cpu_ns() -> u64 {
    fallback_ns()
}

/// The size of a memory page in bytes; here, 4096.
#[cfg(not(unix))]
pub fn page_size() -> usize {
    4096
}

#[cfg(not(unix))]
fn fallback_ns() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    u64::try_from(EPOCH.get_or_init(std::time::Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The process's resident set size in bytes, from `/proc/self/statm` (`None` where that file cannot be read
/// or parsed, as outside Linux).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    parse_statm_rss(&statm, page_size() as u64)
}

/// The resident set size in bytes from the text of `/proc/PID/statm` (`size resident shared …`, in pages of
/// `page` bytes); `None` when the second field is missing or not a number, or the product overflows.
///
/// ```
/// use brownout_foundation::process::parse_statm_rss;
/// assert_eq!(parse_statm_rss("1000 250 100 1 0 300 0\n", 4096), Some(250 * 4096));
/// assert_eq!(parse_statm_rss("1000\n", 4096), None);
/// ```
pub fn parse_statm_rss(statm: &str, page: u64) -> Option<u64> {
    statm.split_whitespace().nth(1)?.parse::<u64>().ok()?.checked_mul(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        assert!(process_cpu() >= thread_cpu().saturating_sub(Duration::from_millis(1)));
    }

    #[cfg(unix)]
    #[test]
    fn thread_clock_does_not_advance_with_sleep() {
        let start = thread_cpu();
        std::thread::sleep(Duration::from_millis(20));
        let slept = thread_cpu().saturating_sub(start);
        assert!(slept < Duration::from_millis(5), "sleeping burned {slept:?}");
    }

    #[cfg(unix)]
    #[test]
    fn timespecs_convert_and_saturate() {
        let ts = |tv_sec, tv_nsec| rustix::time::Timespec { tv_sec, tv_nsec };
        assert_eq!(nanos(ts(2, 5)), 2_000_000_005);
        assert_eq!(nanos(ts(-1, 5)), 5);
        assert_eq!(nanos(ts(i64::MAX, 999_999_999)), u64::MAX);
    }

    #[test]
    fn page_size_is_a_power_of_two() {
        assert!(page_size().is_power_of_two());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn rss_is_read_on_linux() {
        let rss = rss_bytes().expect("/proc/self/statm exists on Linux");
        assert!(rss > 0);
        assert_eq!(rss % page_size() as u64, 0);
    }

    #[test]
    fn statm_parsing() {
        assert_eq!(parse_statm_rss("1000 250 100 1 0 300 0\n", 4096), Some(250 * 4096));
        assert_eq!(parse_statm_rss("1000\n", 4096), None);
        assert_eq!(parse_statm_rss("", 4096), None);
        assert_eq!(parse_statm_rss("1 x 3", 4096), None);
        assert_eq!(parse_statm_rss("1 -2 3", 4096), None);
        assert_eq!(parse_statm_rss(&format!("1 {} 3", u64::MAX), 4096), None);
    }

    proptest! {
        #[test]
        fn statm_gives_the_second_field_times_the_page(size: u64, rss in 0u64..1 << 40, rest in "( [0-9]{1,6}){0,5}") {
            prop_assert_eq!(parse_statm_rss(&format!("{size} {rss}{rest}\n"), 4096), Some(rss * 4096));
        }

        #[test]
        fn any_text_parses_or_not_without_panic(text in "\\PC{0,40}", page in 1u64..1 << 20) {
            let _ = parse_statm_rss(&text, page);
        }
    }
}
