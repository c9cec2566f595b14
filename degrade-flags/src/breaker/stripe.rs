//! Per-thread counters: the closed path writes only the stripe of its own thread, one cache line that no
//! other thread writes (unless there are more threads than stripes), so two threads do not slow each other.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Cumulative counters of one stripe, never reset (the window subtracts a base; the metrics a published
/// count), so a reader that races a writer never loses a call.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Stripe {
    /// Calls recorded in the window (failed, slow or not; not ignored).
    pub(crate) calls: AtomicU64,
    /// Of those, failed.
    pub(crate) failures: AtomicU64,
    /// Of those, slow and successful.
    pub(crate) slow_ok: AtomicU64,
    /// Of those, slow and failed.
    pub(crate) slow_failed: AtomicU64,
    /// Calls recorded as ignored (or dropped unrecorded).
    pub(crate) ignored: AtomicU64,
    /// Calls rejected.
    pub(crate) rejected: AtomicU64,
    /// Calls counted in the metrics only (probes, dry-run admissions, stale permits): successes, failures,
    /// slow successes.
    pub(crate) extra_ok: AtomicU64,
    pub(crate) extra_failed: AtomicU64,
    pub(crate) extra_slow: AtomicU64,
    /// The value of `calls` when the current bucket began (count window; written under the lock).
    pub(crate) base_calls: AtomicU64,
    /// When the current bucket ends, clock nanoseconds (time window; written under the lock).
    pub(crate) bucket_end: AtomicU64,
}

/// A consistent-enough reading of a stripe's window counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Cumulative {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Stripe {
    /// Reads the window counters. The hot path adds to `failures` / `slow_*` before `calls`, and this reads
    /// `calls` first, so it never sees more failures than calls for the calls it sees... except for calls in
    /// flight on other threads, which the window clamps.
    pub(crate) fn read(&self) -> Cumulative {
        let calls = self.calls.load(Relaxed);
        let failures = self.failures.load(Relaxed);
        let slow = self.slow_ok.load(Relaxed) + self.slow_failed.load(Relaxed);
        Cumulative { calls, failures, slow }
    }

    /// Metrics counts: success, failure, slow, ignored, rejected.
    pub(crate) fn outcomes(&self) -> [u64; 5] {
        let slow_ok = self.slow_ok.load(Relaxed);
        let failures = self.failures.load(Relaxed);
        let calls = self.calls.load(Relaxed);
        [
            calls.saturating_sub(failures).saturating_sub(slow_ok) + self.extra_ok.load(Relaxed),
            failures + self.extra_failed.load(Relaxed),
            slow_ok + self.extra_slow.load(Relaxed),
            self.ignored.load(Relaxed),
            self.rejected.load(Relaxed),
        ]
    }
}

/// How many stripes a breaker has: the available parallelism rounded up to a power of two, in `2..=32`.
pub(crate) fn stripe_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 32).next_power_of_two())
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_INDEX: usize = NEXT_THREAD.fetch_add(1, Relaxed);
}

/// This thread's index: threads are numbered in the order they first touch a breaker, so consecutive
/// threads use different stripes.
#[inline]
pub(crate) fn thread_index() -> usize {
    THREAD_INDEX.try_with(|i| *i).unwrap_or(0)
}
