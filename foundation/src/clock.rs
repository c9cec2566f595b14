//! One clock for the whole pipeline: rule windows and the TTL (chaos-core), the SLO guard, circuit breakers
//! (degrade-flags), degrade triggers and latency windows (chaos-tower) all read a [`Clock`].
//!
//! | clock | reads | for |
//! |---|---|---|
//! | [`SystemClock`] | [`Instant::now`] | code that may run without a tokio runtime (the default there) |
//! | `TokioClock` (feature `tokio`) | `tokio::time::Instant::now` | code inside tokio: follows `tokio::time::pause` and `advance` (the default of chaos-tower's handles, triggers and windows) |
//! | [`ManualClock`] | the time you set | unit tests without a runtime |
//!
//! In a paused-time test (`#[tokio::test(start_paused = true)]`), give every component a `TokioClock`: one
//! `tokio::time::advance` then moves rules, breakers, triggers and the guard together. A component left on
//! [`SystemClock`] does not move (a breaker stays open after `advance(1h)`). The design follows seatbelt's
//! `tick::Clock` and .NET's `TimeProvider` / Polly's `FakeTimeProvider`: time is a value passed in, never read
//! from a global.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of monotonic time. Implementations must never go backwards.
///
/// Cheap to share: components hold an `Arc<dyn Clock>`, and `Arc<C>` is itself a clock.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    #[inline]
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// The process's monotonic clock ([`Instant::now`]).
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct SystemClock;

impl SystemClock {
    /// The system clock (the same as the unit value `SystemClock`).
    pub const fn new() -> Self {
        SystemClock
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// tokio's clock ([`tokio::time::Instant::now`]): it stands still under `tokio::time::pause` and moves with
/// `tokio::time::advance` and auto-advance. Outside a runtime (or without tokio's `test-util`) it reads the
/// system clock, so it is safe anywhere.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct TokioClock;

#[cfg(feature = "tokio")]
impl TokioClock {
    /// tokio's clock (the same as the unit value `TokioClock`).
    pub const fn new() -> Self {
        TokioClock
    }
}

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// A clock that moves only when told to, for tests. Cheap to clone; every clone shares one time. Reading it
/// takes no lock.
#[derive(Clone)]
pub struct ManualClock {
    origin: Instant,
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at the current instant.
    pub fn new() -> Self {
        Self { origin: Instant::now(), nanos: Arc::new(AtomicU64::new(0)) }
    }

    /// Moves the clock forward by `by`; a step past what it can count (about 584 years in all) stops there
    /// (never a panic).
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let mut cur = self.nanos.load(Ordering::Acquire);
        loop {
            let next = cur.saturating_add(by);
            match self.nanos.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
    }

    /// How far the clock has been moved since it was created.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now(&self) -> Instant {
        let elapsed = self.elapsed();
        // Past the end of `Instant`'s range, stop at the last instant it can hold a year of steps from.
        self.origin.checked_add(elapsed).unwrap_or_else(|| far(self.origin, elapsed))
    }
}

/// The latest instant at most `by` after `from` that `Instant` can represent.
fn far(from: Instant, by: Duration) -> Instant {
    let (mut lo, mut hi) = (Duration::ZERO, by);
    while hi - lo > Duration::from_nanos(1) {
        let mid = lo + (hi - lo) / 2;
        if from.checked_add(mid).is_some() { lo = mid } else { hi = mid }
    }
    from + lo
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock").field("elapsed", &self.elapsed()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new();
        let (t0, other) = (clock.now(), clock.clone());
        assert_eq!(clock.now(), t0);
        other.advance(Duration::from_secs(5));
        assert_eq!(clock.now() - t0, Duration::from_secs(5));
        assert_eq!(clock.elapsed(), Duration::from_secs(5));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        assert_eq!(shared.now(), clock.now());
    }

    #[test]
    fn manual_clock_never_panics_past_the_end() {
        let clock = ManualClock::new();
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        let end = clock.now();
        assert!(end > clock.origin);
        assert_eq!(clock.now(), end);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_clock_reads_outside_a_runtime() {
        let a = TokioClock.now();
        assert!(TokioClock.now() >= a);
    }
}
