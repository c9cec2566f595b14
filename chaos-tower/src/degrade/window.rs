//! [`LatencyWindow`]: call outcomes over a sliding window of time, for error-rate and p95 signals.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use brownout_foundation::clock::{Clock, TokioClock};
use tokio::time::Instant;

use super::{LatencyWindowLayer, Signal};

/// Exact buckets below this many nanoseconds; above, each power of two is split in this many buckets.
const SUB: u64 = 16;
const SUB_BITS: u32 = SUB.trailing_zeros();
/// Latencies of `2^MAX_EXP` ns (about 18.3 minutes) or more count as the largest bucket.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS) as u64 * SUB) as usize;
const DEFAULT_SLOTS: usize = 10;
const MAX_SLOTS: usize = 1000;
const MIN_SLOT: Duration = Duration::from_micros(1);

/// The largest latency the window tells apart (`2^40` ns, about 18.3 minutes); longer ones count as this.
pub const MAX_LATENCY: Duration = Duration::from_nanos((1 << MAX_EXP) - 1);

/// The histogram bucket of a latency in nanoseconds.
fn bucket(nanos: u64) -> usize {
    let v = nanos.min((1 << MAX_EXP) - 1);
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(exp - SUB_BITS) * SUB + sub) as usize
}

/// The value reported for a bucket: its midpoint (exact below 16 ns).
fn bucket_value(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index;
    }
    let k = index - SUB;
    let shift = k / SUB;
    let width = 1u64 << shift;
    ((SUB + k % SUB) << shift) + width / 2
}

struct Slot {
    /// Which slot of time (since the origin) it holds; `u64::MAX` when it never held one.
    epoch: u64,
    calls: u64,
    errors: u64,
    latencies: Box<[u32]>,
}

impl Slot {
    fn clear(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.calls = 0;
        self.errors = 0;
        self.latencies.fill(0);
    }
}

struct Ring {
    origin: Instant,
    slot_nanos: u64,
    slots: Vec<Slot>,
}

impl Ring {
    fn epoch(&self, at: Instant) -> u64 {
        let since = u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX);
        since / self.slot_nanos
    }

    /// The slots inside the window that ends in the slot of `now`.
    fn live(&self, now: Instant) -> impl Iterator<Item = &Slot> {
        let current = self.epoch(now);
        let n = self.slots.len() as u64;
        self.slots.iter().filter(move |s| s.epoch <= current && current - s.epoch < n)
    }
}

/// What a [`LatencyWindow`] holds now.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct WindowStats {
    /// Calls recorded in the window.
    pub calls: u64,
    /// Of which not ok.
    pub errors: u64,
    /// The 95th percentile latency of all the calls in the window (ok or not), within 1/32 of the exact value
    /// (see [`LatencyWindow`]); `None` without calls.
    pub p95: Option<Duration>,
}

impl WindowStats {
    /// `errors / calls`; `None` without calls.
    pub fn error_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.errors as f64 / self.calls as f64)
    }
}

/// Call outcomes (latency, ok or not) over a sliding window of time on tokio's clock: the error rate and the
/// p95 of a dependency, or the fsync latency of a journal. A cheap, cloneable handle: every clone records into
/// and reads the same window.
///
/// - **Window.** Time is cut into `slots` slots of `window / slots` each (10 by default), counted from the
///   window's creation on its clock ([`TokioClock`] unless [`clock`](Self::clock) says otherwise, so
///   paused-time tests move it). The window is the slot now
///   plus the `slots - 1` before it: between `window - window / slots` and `window` of the most recent time.
///   A call is counted in the slot of the moment it is recorded.
/// - **Error rate.** Exact over the window: errors / calls.
/// - **p95.** The latency of rank ⌈0.95 · calls⌉ among the calls in the window (ok or not), read from a
///   log-linear histogram (exact below 16 ns, then 16 buckets per power of two) and reported as its bucket's
///   midpoint: within **1/32 (3.125 %)** of the exact value. Latencies of [`MAX_LATENCY`] (about 18 minutes) or
///   more count as [`MAX_LATENCY`].
/// - **Cost.** [`record`](Self::record) takes a small mutex (no allocation): a few tens of nanoseconds
///   uncontended. Reading sums the slots (and, for the p95, their histograms): meant for a trigger's tick, not
///   for every request.
///
/// ```
/// use std::time::Duration;
/// use brownout_tower::degrade::LatencyWindow;
///
/// let window = LatencyWindow::new(Duration::from_secs(10)).min_calls(2);
/// window.record(Duration::from_millis(20), true);
/// assert_eq!(window.error_rate(), None); // fewer than min_calls: no reading
/// window.record(Duration::from_millis(40), false);
/// assert_eq!(window.error_rate(), Some(0.5));
/// let p95 = window.p95().unwrap();
/// assert!(p95.abs_diff(Duration::from_millis(40)) <= Duration::from_millis(40) / 32);
/// ```
#[derive(Clone)]
pub struct LatencyWindow {
    ring: Arc<Mutex<Ring>>,
    window: Duration,
    min_calls: u64,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for LatencyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyWindow")
            .field("window", &self.window)
            .field("slots", &self.slots())
            .field("min_calls", &self.min_calls)
            .field("stats", &self.stats())
            .finish()
    }
}

impl LatencyWindow {
    /// An empty window of `window` in 10 slots.
    pub fn new(window: Duration) -> Self {
        Self::with_slots(window, DEFAULT_SLOTS)
    }

    /// An empty window of `window` in `slots` slots (clamped to 1..=1000; a slot lasts at least 1 µs). More
    /// slots make the window's edge sharper and reads slower.
    pub fn with_slots(window: Duration, slots: usize) -> Self {
        let slots = slots.clamp(1, MAX_SLOTS);
        let slot = (window / slots as u32).max(MIN_SLOT);
        let slot_nanos = u64::try_from(slot.as_nanos()).unwrap_or(u64::MAX);
        let ring = Ring {
            origin: Instant::now(),
            slot_nanos,
            slots: (0..slots)
                .map(|_| Slot { epoch: u64::MAX, calls: 0, errors: 0, latencies: vec![0; BUCKETS].into() })
                .collect(),
        };
        Self {
            ring: Arc::new(Mutex::new(ring)),
            window: slot * slots as u32,
            min_calls: 1,
            clock: Arc::new(TokioClock),
        }
    }

    /// This handle's readings ([`error_rate`](Self::error_rate), [`p95`](Self::p95) and their signals) say
    /// `None` while the window holds fewer than `calls` calls (default 1), so that one early error does not
    /// read as a 100 % error rate. Recording is unaffected; other clones keep their own minimum.
    pub fn min_calls(mut self, calls: u64) -> Self {
        self.min_calls = calls.max(1);
        self
    }

    /// Reads `clock` instead of [`TokioClock`] (the default, which follows paused time): for the window's slots
    /// and, in a [`LatencyWindowLayer`](super::LatencyWindowLayer), for the calls' latencies. Set it before
    /// recording: it restarts the window's slots from the clock's now, for every clone.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        let now = self.now();
        let mut ring = self.lock();
        ring.origin = now;
        ring.slots.iter_mut().for_each(|s| s.clear(u64::MAX));
        drop(ring);
        self
    }

    /// The window's clock now (as a tokio [`Instant`], the type of [`record_at`](Self::record_at)).
    pub fn now(&self) -> Instant {
        Instant::from_std(self.clock.now())
    }

    /// The window's length (`slots` × the slot's length).
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How many slots the window has.
    pub fn slots(&self) -> usize {
        self.lock().slots.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one call that took `latency` and succeeded (`ok`) or not, now.
    pub fn record(&self, latency: Duration, ok: bool) {
        self.record_at(self.now(), latency, ok);
    }

    /// Records one call at `at`: for callers that keep their own timestamps. A call older than the window
    /// (its slot already reused) is dropped.
    pub fn record_at(&self, at: Instant, latency: Duration, ok: bool) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let mut ring = self.lock();
        let epoch = ring.epoch(at);
        let n = ring.slots.len() as u64;
        let slot = &mut ring.slots[(epoch % n) as usize];
        if slot.epoch != epoch {
            if slot.epoch != u64::MAX && slot.epoch > epoch {
                return;
            }
            slot.clear(epoch);
        }
        slot.calls += 1;
        slot.errors += u64::from(!ok);
        let count = &mut slot.latencies[bucket(nanos)];
        *count = count.saturating_add(1);
    }

    /// What the window holds now.
    pub fn stats(&self) -> WindowStats {
        self.stats_at(self.now())
    }

    /// What the window that ends at `now` holds.
    pub fn stats_at(&self, now: Instant) -> WindowStats {
        let ring = self.lock();
        let (mut calls, mut errors) = (0, 0);
        let mut merged = vec![0u64; BUCKETS];
        for slot in ring.live(now) {
            calls += slot.calls;
            errors += slot.errors;
            for (m, c) in merged.iter_mut().zip(slot.latencies.iter()) {
                *m += u64::from(*c);
            }
        }
        drop(ring);
        let p95 = (calls > 0).then(|| {
            let rank = (calls * 95).div_ceil(100).max(1);
            let mut seen = 0;
            let index = merged.iter().position(|c| {
                seen += c;
                seen >= rank
            });
            Duration::from_nanos(bucket_value(index.unwrap_or(BUCKETS - 1)))
        });
        WindowStats { calls, errors, p95 }
    }

    /// `(calls, errors)` in the window that ends at `now`, without the histogram.
    fn counts_at(&self, now: Instant) -> (u64, u64) {
        let ring = self.lock();
        ring.live(now).fold((0, 0), |(c, e), s| (c + s.calls, e + s.errors))
    }

    /// The error rate over the window now (errors / calls); `None` with fewer than
    /// [`min_calls`](Self::min_calls) calls.
    pub fn error_rate(&self) -> Option<f64> {
        let (calls, errors) = self.counts_at(self.now());
        (calls >= self.min_calls).then(|| errors as f64 / calls as f64)
    }

    /// The p95 latency over the window now, within 1/32 of the exact value; `None` with fewer than
    /// [`min_calls`](Self::min_calls) calls.
    pub fn p95(&self) -> Option<Duration> {
        let stats = self.stats();
        if stats.calls >= self.min_calls { stats.p95 } else { None }
    }

    /// A Tower layer that records every call of a service into this window (see [`LatencyWindowLayer`]).
    pub fn layer(&self) -> LatencyWindowLayer {
        LatencyWindowLayer::new(self.clone())
    }

    /// A signal: the error rate, from 0 to 1 (`None`, so the trigger holds, with too few calls).
    pub fn error_rate_signal(&self) -> impl Signal + use<> {
        let window = self.clone();
        move || window.error_rate()
    }

    /// A signal: the p95 latency in seconds (`None`, so the trigger holds, with too few calls).
    pub fn p95_seconds_signal(&self) -> impl Signal + use<> {
        let window = self.clone();
        move || window.p95().map(|d| d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_the_range_in_order_within_one_thirty_second() {
        assert_eq!(bucket((1 << MAX_EXP) - 1), BUCKETS - 1);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for v in (0..100_000u64).chain((0..MAX_EXP).flat_map(|e| [(1u64 << e) - 1, 1 << e, (1 << e) + 1])) {
            let mid = bucket_value(bucket(v));
            assert!(mid.abs_diff(v) * 32 <= v, "{v} -> bucket {} value {mid}", bucket(v));
        }
        assert!((1..100_000u64).all(|v| bucket(v) >= bucket(v - 1)), "buckets in order");
    }
}
