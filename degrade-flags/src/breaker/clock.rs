//! The breaker's notion of time: Brownout's one [`Clock`] ([`brownout_foundation::clock`]), injected so tests
//! move it by hand or with tokio's paused time. The breaker counts nanoseconds from the instant it was built.

use std::time::{Duration, Instant};

pub use brownout_foundation::clock::{Clock, ManualClock, SystemClock};

/// Linux's coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`, read through the vDSO): a few nanoseconds per
/// read instead of [`SystemClock`]'s ~25, at the kernel tick's resolution (1 to 10 ms). The clock to give a
/// time-window breaker on a hot path, when its buckets span 100 ms or more.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy)]
pub struct CoarseClock {
    origin: Instant,
    coarse_origin: u64,
}

#[cfg(target_os = "linux")]
impl CoarseClock {
    /// A coarse clock, anchored to the system clock now.
    pub fn new() -> Self {
        Self { origin: Instant::now(), coarse_origin: coarse_nanos() }
    }
}

#[cfg(target_os = "linux")]
impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_os = "linux")]
fn coarse_nanos() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    u64::try_from(t.tv_sec).unwrap_or(0).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

#[cfg(target_os = "linux")]
impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> Instant {
        let by = Duration::from_nanos(coarse_nanos().saturating_sub(self.coarse_origin));
        self.origin.checked_add(by).unwrap_or(self.origin)
    }
}

/// The breaker's reading of a clock: nanoseconds since `origin` (the breaker's creation), never below zero.
#[derive(Debug)]
pub(crate) struct Ticks {
    clock: std::sync::Arc<dyn Clock>,
    origin: Instant,
}

impl Ticks {
    pub(crate) fn new(clock: std::sync::Arc<dyn Clock>) -> Self {
        let origin = clock.now();
        Self { clock, origin }
    }

    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        nanos(self.clock.now().saturating_duration_since(self.origin))
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
