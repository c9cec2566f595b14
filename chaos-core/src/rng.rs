//! Random numbers for the samplers and delay distributions: per-decider streams derived from the rule set's
//! seed (no shared state on the hot path), and a stable hash for the hash sampler.

use std::cell::RefCell;

use brownout_foundation::slots::{NumberBlock, next_number};

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// How many stream numbers a thread takes from a rule set at once.
const STREAM_BLOCK: u64 = 1024;
/// How many rule sets' blocks a thread keeps (sets change at a reload).
const SETS_KEPT: usize = 8;

thread_local! {
    static STREAM_NUMBERS: RefCell<Vec<NumberBlock>> = const { RefCell::new(Vec::new()) };
}

/// SplitMix64's finaliser: a bijective mix with good avalanche.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over bytes, then mixed: stable across platforms and releases (the hash sampler's decisions must not
/// change when the library does).
pub(crate) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix64(h)
}

/// A random stream owned by one [`Decider`](crate::Decider), so drawing touches no shared state.
///
/// The stream is derived lazily, at the first draw under a rule set, from `(seed, n)` where `n` is the set's
/// next stream number, taken by each thread in blocks (unique per set, in order on each thread). A
/// single-threaded run with the same seed, in which services are created and called in the same order,
/// therefore replays the same decisions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stream {
    /// Id of the rule set this stream was derived for (0: none yet).
    owner: u64,
    state: u64,
}

impl Stream {
    /// Draws a uniform `u64` for the rule set `owner`.
    #[inline]
    pub(crate) fn next(&mut self, owner: u64, seed: u64, next_stream: &std::sync::atomic::AtomicU64) -> u64 {
        self.adopt(owner, seed, next_stream);
        self.next_adopted()
    }

    /// Makes sure the stream belongs to the rule set `owner`.
    #[inline]
    pub(crate) fn adopt(&mut self, owner: u64, seed: u64, next_stream: &std::sync::atomic::AtomicU64) {
        if self.owner != owner {
            self.reseed(owner, seed, next_stream);
        }
    }

    /// Draws from a stream already [`adopt`](Self::adopt)ed by the current rule set.
    #[inline]
    pub(crate) fn next_adopted(&mut self) -> u64 {
        // wyrand: one 128-bit multiply per draw (the generator fastrand uses).
        self.state = self.state.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xE703_7ED1_A0B4_28DB);
        (t >> 64) as u64 ^ t as u64
    }

    /// Derives the stream for rule set `owner` from its seed and the next stream number, taken from the calling
    /// thread's block of the set's numbers (deciders are cloned per request by services cloned per request: a
    /// block keeps that from being one shared atomic add each).
    #[cold]
    fn reseed(&mut self, owner: u64, seed: u64, next_stream: &std::sync::atomic::AtomicU64) {
        let shared = || next_stream.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = STREAM_NUMBERS
            .try_with(|blocks| match blocks.try_borrow_mut() {
                Ok(mut blocks) => next_number(&mut blocks, SETS_KEPT, owner, next_stream, STREAM_BLOCK),
                Err(_) => shared(),
            })
            .unwrap_or_else(|_| shared());
        *self = Stream { owner, state: mix64(seed ^ n.wrapping_mul(GOLDEN)) };
    }
}

/// A uniform float in [0, 1) from a `u64`.
#[inline]
pub(crate) fn unit_f64(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The threshold below which a uniform `u64` means "yes" with probability `rate` (`rate < 1`).
pub(crate) fn threshold(rate: f64) -> u64 {
    // 2^64 · rate, computed without overflow; rate is in [0, 1).
    (rate * 18_446_744_073_709_551_616.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_across_releases() {
        // Pinned values: the hash sampler's decisions must not change between versions.
        assert_eq!(hash_bytes(0, b""), mix64(0xCBF2_9CE4_8422_2325));
        assert_ne!(hash_bytes(1, b"tenant-a"), hash_bytes(2, b"tenant-a"));
        assert_ne!(hash_bytes(1, b"tenant-a"), hash_bytes(1, b"tenant-b"));
    }

    #[test]
    fn unit_is_in_range() {
        assert_eq!(unit_f64(0), 0.0);
        assert!(unit_f64(u64::MAX) < 1.0);
    }

    #[test]
    fn threshold_scales() {
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(0.5), 1u64 << 63);
    }
}
