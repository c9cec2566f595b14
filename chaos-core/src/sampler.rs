//! The samplers: which matching requests get the fault. Each is decided once per request.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::rng;

/// A compiled sampling mode (see [`SampleConfig`](crate::SampleConfig) for the promises each one keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sampler {
    /// Never fires (rate 0).
    Never,
    /// Fires on every matching request (rate 1, every 1st).
    Always,
    /// Fires when a draw from the thread's seeded stream is below `threshold` (= rate · 2^64).
    Random {
        /// rate · 2^64.
        threshold: u64,
    },
    /// Fires when `hash(seed, rule, key)` is below `threshold`.
    Hash {
        /// rate · 2^64, or `u64::MAX` with `all`.
        threshold: u64,
        /// Rate 1: every key.
        all: bool,
        /// `hash(seed, rule name)`.
        rule_seed: u64,
    },
    /// Fires on the n-th matching request when ⌊(n+1)·r⌋ > ⌊n·r⌋, with r = rate · 2^53 in fixed point.
    Exact {
        /// rate · 2^53.
        rate_fp: u64,
    },
    /// Fires on every n-th matching request.
    EveryNth {
        /// The period.
        n: u64,
    },
    /// Fires on the first n matching requests.
    FirstN {
        /// How many.
        n: u64,
    },
}

/// 2^53: the fixed-point scale of the exact sampler (f64's mantissa, so a rate converts without loss of
/// anything a config can express).
pub(crate) const EXACT_SCALE: f64 = 9_007_199_254_740_992.0;

impl Sampler {
    /// Compiles a rate-based sampler.
    pub(crate) fn random(rate: f64) -> Self {
        if rate <= 0.0 {
            Sampler::Never
        } else if rate >= 1.0 {
            Sampler::Always
        } else {
            Sampler::Random { threshold: rng::threshold(rate) }
        }
    }

    pub(crate) fn hash(rate: f64, seed: u64, rule: &str) -> Self {
        Sampler::Hash {
            threshold: if rate >= 1.0 { u64::MAX } else { rng::threshold(rate.max(0.0)) },
            all: rate >= 1.0,
            rule_seed: rng::hash_bytes(seed, rule.as_bytes()),
        }
    }

    pub(crate) fn exact(rate: f64) -> Self {
        if rate <= 0.0 {
            Sampler::Never
        } else if rate >= 1.0 {
            Sampler::Always
        } else {
            Sampler::Exact { rate_fp: (rate * EXACT_SCALE) as u64 }
        }
    }

    /// Does this sampler need the request key?
    pub fn needs_key(&self) -> bool {
        matches!(self, Sampler::Hash { .. })
    }

    /// The pure decision of the exact sampler for the `n`-th (0-based) matching request.
    #[inline]
    pub fn exact_fires(rate_fp: u64, n: u64) -> bool {
        let r = u128::from(rate_fp);
        ((u128::from(n) + 1) * r) >> 53 > (u128::from(n) * r) >> 53
    }

    /// The pure decision of the hash sampler for a key.
    #[inline]
    pub fn hash_fires(threshold: u64, all: bool, rule_seed: u64, key: &[u8]) -> bool {
        all || rng::hash_bytes(rule_seed, key) < threshold
    }

    /// Decides for one request. `counter` is the rule's count of sampled requests; `draw` gives a uniform
    /// `u64` from the thread's stream.
    #[inline]
    pub(crate) fn fires(&self, counter: &AtomicU64, key: &[u8], draw: impl FnOnce() -> u64) -> bool {
        match *self {
            Sampler::Never => false,
            Sampler::Always => true,
            Sampler::Random { threshold } => draw() < threshold,
            Sampler::Hash { threshold, all, rule_seed } => Self::hash_fires(threshold, all, rule_seed, key),
            Sampler::Exact { rate_fp } => Self::exact_fires(rate_fp, counter.fetch_add(1, Ordering::Relaxed)),
            Sampler::EveryNth { n } => (counter.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(n),
            Sampler::FirstN { n } => {
                // Stop counting once past n so the counter cannot wrap on a long run.
                counter.load(Ordering::Relaxed) < n && counter.fetch_add(1, Ordering::Relaxed) < n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_quarter_fires_every_fourth() {
        let s = Sampler::exact(0.25);
        let c = AtomicU64::new(0);
        let fired: Vec<bool> = (0..8).map(|_| s.fires(&c, b"", || 0)).collect();
        assert_eq!(fired.iter().filter(|f| **f).count(), 2);
    }

    #[test]
    fn every_nth_and_first_n() {
        let c = AtomicU64::new(0);
        let s = Sampler::EveryNth { n: 3 };
        let fired: Vec<bool> = (0..6).map(|_| s.fires(&c, b"", || 0)).collect();
        assert_eq!(fired, [false, false, true, false, false, true]);
        let c = AtomicU64::new(0);
        let s = Sampler::FirstN { n: 2 };
        let fired: Vec<bool> = (0..4).map(|_| s.fires(&c, b"", || 0)).collect();
        assert_eq!(fired, [true, true, false, false]);
    }

    #[test]
    fn extremes() {
        let c = AtomicU64::new(0);
        assert!(!Sampler::random(0.0).fires(&c, b"", || 0));
        assert!(Sampler::random(1.0).fires(&c, b"", || u64::MAX));
        assert!(Sampler::hash(1.0, 7, "r").fires(&c, b"k", || 0));
        assert!(!Sampler::hash(0.0, 7, "r").fires(&c, b"k", || 0));
    }
}
