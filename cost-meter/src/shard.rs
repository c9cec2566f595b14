//! Counters split into per-thread shards, each on its own cache line: threads that update one counter at once
//! (workers starting and ending jobs) each write their own line instead of taking one line from each other.
//! A read sums the shards.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How many shards a counter has: threads past this many share shards (still correct, less spread).
pub(crate) const SHARDS: usize = 16;

/// Numbers the threads as they first use a sharded counter.
static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static NUMBER: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The calling thread's number, given at its first call (a thread being torn down gets a fresh one each time).
pub(crate) fn thread_number() -> usize {
    let fresh = || THREADS.fetch_add(1, Ordering::Relaxed);
    NUMBER
        .try_with(|number| {
            number.get().unwrap_or_else(|| {
                let n = fresh();
                number.set(Some(n));
                n
            })
        })
        .unwrap_or_else(|_| fresh())
}

/// The calling thread's shard.
#[inline]
pub(crate) fn index() -> usize {
    thread_number() % SHARDS
}

#[repr(align(64))]
struct Line(AtomicU64);

/// A count that threads add to and subtract from at once, in shards. A shard may wrap below zero (a job
/// started on one thread and ended on another); the sum is right, modulo 2⁶⁴.
pub(crate) struct Sharded([Line; SHARDS]);

impl Sharded {
    pub(crate) const fn new() -> Self {
        Sharded([const { Line(AtomicU64::new(0)) }; SHARDS])
    }

    /// Adds `n` in shard `shard` (the updating thread's [`index`], or one it took earlier: any shard keeps
    /// the sum right).
    #[inline]
    pub(crate) fn add(&self, shard: usize, n: u64, order: Ordering) {
        self.0[shard % SHARDS].0.fetch_add(n, order);
    }

    /// Subtracts `n` in shard `shard`.
    #[inline]
    pub(crate) fn sub(&self, shard: usize, n: u64, order: Ordering) {
        self.0[shard % SHARDS].0.fetch_sub(n, order);
    }

    /// The count: the sum of the shards.
    pub(crate) fn sum(&self, order: Ordering) -> u64 {
        self.0.iter().fold(0u64, |sum, line| sum.wrapping_add(line.0.load(order)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    proptest::proptest! {
        /// Whatever threads add and subtract, each on a shard of its own, the sum is the net count (a
        /// subtraction often lands on another shard than the addition it undoes).
        #[test]
        fn the_sum_is_the_net_count_across_threads(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..5), 0..40),
        ) {
            let counter = Sharded::new();
            std::thread::scope(|s| {
                for &(add, n) in &ops {
                    let counter = &counter;
                    s.spawn(move || if add { counter.add(index(), n, Relaxed) } else { counter.sub(index(), n, Relaxed) });
                }
            });
            let net = ops.iter().fold(0u64, |net, &(add, n)| if add { net.wrapping_add(n) } else { net.wrapping_sub(n) });
            proptest::prop_assert_eq!(counter.sum(Relaxed), net);
        }
    }

    #[test]
    fn each_thread_keeps_its_number() {
        let here = thread_number();
        assert_eq!(thread_number(), here);
        let there = std::thread::spawn(thread_number).join().unwrap();
        assert_ne!(here, there);
    }
}
