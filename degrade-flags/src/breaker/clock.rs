//! The breaker's notion of time: a monotonic count of nanoseconds, injected so tests move it by hand.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock in nanoseconds since an arbitrary origin.
///
/// The breaker reads it on the time-based window's record path, when it opens and while it is open; a
/// count-based window in the closed state never reads it. Implementations must never go backwards.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Nanoseconds since this clock's origin.
    fn now_nanos(&self) -> u64;
}

/// The process's monotonic clock ([`Instant`]), counted from the moment the value was created.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Linux's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`, read through the vDSO): a few nanoseconds per
/// read instead of [`SystemClock`]'s ~25, at the kernel tick's resolution (1 to 10 ms). The clock to give a
/// time-window breaker on a hot path, when its buckets span 100 ms or more.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy, Default)]
pub struct CoarseClock;

#[cfg(target_os = "linux")]
impl Clock for CoarseClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        u64::try_from(t.tv_sec).unwrap_or(0).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
    }
}

/// A clock that moves only when told: for tests. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by` (saturating).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self.nanos.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some(n.saturating_add(by)));
    }

    /// The current reading as a [`Duration`] since zero.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
