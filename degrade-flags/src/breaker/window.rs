//! The sliding window's sealed buckets, kept under the breaker's lock. The bucket being filled lives in the
//! stripes (one partial bucket per stripe); a stripe seals its partial bucket into the ring when it is full
//! (count window) or when its time is up (time window).

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use super::config::SlidingWindow;
use super::stripe::{Cumulative, Stripe};

/// Calls, failures and slow calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.calls += other.calls;
        self.failures += other.failures;
        self.slow += other.slow;
    }

    fn sub(&mut self, other: Counts) {
        self.calls -= other.calls;
        self.failures -= other.failures;
        self.slow -= other.slow;
    }

    fn since(now: Cumulative, base: Cumulative) -> Counts {
        Counts {
            calls: now.calls.saturating_sub(base.calls),
            failures: now.failures.saturating_sub(base.failures),
            slow: now.slow.saturating_sub(base.slow),
        }
    }

    /// Clamps failures and slow calls to calls (a reader racing a writer can see them ahead).
    pub(crate) fn clamped(mut self) -> Counts {
        self.failures = self.failures.min(self.calls);
        self.slow = self.slow.min(self.calls);
        self
    }
}

#[derive(Debug)]
enum Ring {
    Count {
        bucket_calls: u64,
        buckets: usize,
        sealed: VecDeque<Counts>,
        total: Counts,
    },
    Time {
        bucket_nanos: u64,
        /// `slots[epoch % len]` holds the bucket of `epoch`, if it is that recent.
        slots: Vec<(u64, Counts)>,
        /// The epoch of each stripe's partial bucket.
        epochs: Vec<u64>,
    },
}

#[derive(Debug)]
pub(crate) struct Window {
    ring: Ring,
    /// Each stripe's counters when its partial bucket began.
    bases: Vec<Cumulative>,
}

impl Window {
    pub(crate) fn new(config: &SlidingWindow, stripes: usize) -> Self {
        let ring = match *config {
            SlidingWindow::Count { calls, buckets } => Ring::Count {
                bucket_calls: u64::from((calls / buckets.max(1)).max(1)),
                buckets: buckets as usize,
                sealed: VecDeque::with_capacity(buckets as usize + 1),
                total: Counts::default(),
            },
            SlidingWindow::Time { duration, buckets } => Ring::Time {
                bucket_nanos: super::clock::nanos(duration / buckets.max(1)).max(1),
                slots: vec![(0, Counts::default()); buckets as usize],
                epochs: vec![0; stripes],
            },
        };
        Self { ring, bases: vec![Cumulative::default(); stripes] }
    }

    /// The number of calls after which a stripe seals its bucket (count window), or 0 (time window).
    pub(crate) fn bucket_calls(config: &SlidingWindow) -> u64 {
        match *config {
            SlidingWindow::Count { calls, buckets } => u64::from((calls / buckets.max(1)).max(1)),
            SlidingWindow::Time { .. } => 0,
        }
    }

    /// Count window: seals stripe `i`'s partial bucket if it is full.
    pub(crate) fn seal_if_full(&mut self, i: usize, stripe: &Stripe) {
        let Ring::Count { bucket_calls, buckets, sealed, total } = &mut self.ring else { return };
        let now = stripe.read();
        let partial = Counts::since(now, self.bases[i]).clamped();
        if partial.calls < *bucket_calls {
            return;
        }
        sealed.push_back(partial);
        total.add(partial);
        while sealed.len() > *buckets {
            if let Some(old) = sealed.pop_front() {
                total.sub(old);
            }
        }
        self.bases[i] = now;
        stripe.base_calls.store(now.calls, Relaxed);
    }

    /// Time window: if stripe `i`'s bucket has ended by `now`, seals it and starts the bucket of `now`.
    pub(crate) fn roll_if_due(&mut self, i: usize, stripe: &Stripe, now_nanos: u64) {
        let Ring::Time { bucket_nanos, slots, epochs } = &mut self.ring else { return };
        if now_nanos < stripe.bucket_end.load(Relaxed) {
            return;
        }
        let current = stripe.read();
        let partial = Counts::since(current, self.bases[i]).clamped();
        let epoch = epochs[i];
        let len = slots.len() as u64;
        let slot = &mut slots[(epoch % len) as usize];
        if slot.0 == epoch {
            slot.1.add(partial);
        } else if slot.0 < epoch {
            *slot = (epoch, partial);
        } // else the slot holds a newer epoch: this partial is out of any window that slot is in.
        self.bases[i] = current;
        let new_epoch = now_nanos / *bucket_nanos;
        epochs[i] = new_epoch;
        stripe.bucket_end.store(new_epoch.saturating_add(1).saturating_mul(*bucket_nanos), Relaxed);
    }

    /// The window's totals at `now_nanos` (ignored by a count window).
    pub(crate) fn totals(&self, stripes: &[Stripe], now_nanos: u64) -> Counts {
        let mut sum = Counts::default();
        match &self.ring {
            Ring::Count { total, .. } => {
                sum = *total;
                for (stripe, base) in stripes.iter().zip(&self.bases) {
                    sum.add(Counts::since(stripe.read(), *base).clamped());
                }
            }
            Ring::Time { bucket_nanos, slots, epochs } => {
                let now_epoch = now_nanos / *bucket_nanos;
                let oldest = (now_epoch + 1).saturating_sub(slots.len() as u64);
                let in_window = |epoch: u64| epoch >= oldest && epoch <= now_epoch;
                for (epoch, counts) in slots {
                    if in_window(*epoch) {
                        sum.add(*counts);
                    }
                }
                for ((stripe, base), epoch) in stripes.iter().zip(&self.bases).zip(epochs) {
                    if in_window(*epoch) {
                        sum.add(Counts::since(stripe.read(), *base).clamped());
                    }
                }
            }
        }
        sum.clamped()
    }

    /// Empties the window: every stripe's partial bucket restarts from its current counters.
    pub(crate) fn reset(&mut self, stripes: &[Stripe]) {
        for (stripe, base) in stripes.iter().zip(&mut self.bases) {
            *base = stripe.read();
            stripe.base_calls.store(base.calls, Relaxed);
        }
        match &mut self.ring {
            Ring::Count { sealed, total, .. } => {
                sealed.clear();
                *total = Counts::default();
            }
            Ring::Time { slots, .. } => slots.iter_mut().for_each(|s| *s = (0, Counts::default())),
        }
    }
}
