//! Counters split into per-thread shards, each on its own cache line: threads that update one counter at once
//! (workers starting and ending jobs) each write their own line instead of taking one line from each other.
//! A read sums the shards. [`Sharded`] updates a shard with an atomic read-modify-write (any thread may use any
//! shard); [`Owned`] gives each live thread a line of its own, which it updates with a plain load and store.

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

/// How many threads at once own a line of every [`Owned`] count (a meter's counts take a line each: 4 KiB); threads
/// past them share one more line, updated atomically. A service has a worker per core, a thread gives its line
/// back when it exits.
pub(crate) const OWNED_LINES: usize = 64;

/// The owned lines no live thread holds: bit `i` set when line `i` is free.
static FREE_LINES: AtomicU64 = AtomicU64::new(u64::MAX);

/// A thread's line of the [`Owned`] counts, given back when the thread exits.
struct LineOwner(Cell<usize>);

/// Not yet asked for a line.
const UNASSIGNED: usize = usize::MAX;
/// The shared line: every owned line was taken.
const SHARED_LINE: usize = OWNED_LINES;

impl Drop for LineOwner {
    fn drop(&mut self) {
        let line = self.0.get();
        release_line(&FREE_LINES, line);
    }
}

thread_local! {
    static LINE: LineOwner = const { LineOwner(Cell::new(UNASSIGNED)) };
}

/// The calling thread's line: its own (`< OWNED_LINES`) or the shared one (also for a thread being torn down).
#[inline]
fn owned_line() -> usize {
    LINE.try_with(|owner| {
        let line = owner.0.get();
        if line != UNASSIGNED {
            return line;
        }
        let line = claim_line(&FREE_LINES);
        owner.0.set(line);
        line
    })
    .unwrap_or(SHARED_LINE)
}

/// Takes a line free in `lines` (a bit set per free line), or the shared one when none is free.
#[cold]
fn claim_line(lines: &AtomicU64) -> usize {
    let mut free = lines.load(Ordering::Relaxed);
    while free != 0 {
        let line = free.trailing_zeros() as usize;
        // Acquire: this thread sees the stores of the line's previous owner.
        match lines.compare_exchange_weak(free, free & !(1 << line), Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return line,
            Err(now) => free = now,
        }
    }
    SHARED_LINE
}

/// Gives `line` back to `lines` (nothing for the shared line or none).
fn release_line(lines: &AtomicU64, line: usize) {
    if line < OWNED_LINES {
        // Release: the next owner sees every store this thread made to the line.
        lines.fetch_or(1 << line, Ordering::Release);
    }
}

/// The calling thread's line of the [`Owned`] counts, looked up once for several updates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Here(usize);

/// The calling thread's line: its own, or the shared one (past [`OWNED_LINES`] live threads, or while the
/// thread is being torn down).
#[inline]
pub(crate) fn here() -> Here {
    Here(owned_line())
}

/// `N` counts that each live thread adds to on a cache line of its own: an update is a load and a store (no
/// atomic read-modify-write), since no other thread writes that line while it lives; threads past
/// [`OWNED_LINES`] at once, and threads being torn down, add atomically to one shared line. A line may wrap
/// below zero (a job started on one thread and ended on another); a sum is right, modulo 2⁶⁴.
pub(crate) struct Owned<const N: usize>([CountLine<N>; OWNED_LINES + 1]);

#[repr(align(64))]
struct CountLine<const N: usize>([AtomicU64; N]);

impl<const N: usize> Owned<N> {
    pub(crate) const fn new() -> Self {
        Owned([const { CountLine([const { AtomicU64::new(0) }; N]) }; OWNED_LINES + 1])
    }

    /// Adds `n` (modulo 2⁶⁴) to count `index` on the line `here`, the calling thread's.
    #[inline]
    pub(crate) fn add(&self, here: Here, index: usize, n: u64) {
        let cell = &self.0[here.0].0[index];
        if here.0 < OWNED_LINES {
            // Only this thread writes this line while it owns it.
            cell.store(cell.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            cell.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Subtracts `n` (modulo 2⁶⁴) from count `index` on the line `here`.
    #[inline]
    pub(crate) fn sub(&self, here: Here, index: usize, n: u64) {
        self.add(here, index, n.wrapping_neg());
    }

    /// Count `index`: the sum of the lines.
    pub(crate) fn sum(&self, index: usize) -> u64 {
        self.0.iter().fold(0u64, |sum, line| sum.wrapping_add(line.0[index].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    proptest::proptest! {
        /// Whatever many threads add and subtract, on lines of their own or on the shared one, one after another
        /// or at once, and however often threads exit and give their lines to new ones, the sum is the net count.
        #[test]
        fn owned_counts_sum_to_the_net_count(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..5), 0..60),
            threads in 1usize..40,
        ) {
            let counter = Owned::<2>::new();
            std::thread::scope(|s| {
                for (i, chunk) in ops.chunks(ops.len().div_ceil(threads).max(1)).enumerate() {
                    let counter = &counter;
                    s.spawn(move || {
                        for &(add, n) in chunk {
                            // Every third thread on the shared line, as threads past the owned lines are.
                            let here = if i % 3 == 2 { Here(SHARED_LINE) } else { here() };
                            if add { counter.add(here, 1, n) } else { counter.sub(here, 1, n) }
                            counter.add(here, 0, 1);
                        }
                    });
                }
            });
            let net =
                ops.iter().fold(0u64, |net, &(add, n)| if add { net.wrapping_add(n) } else { net.wrapping_sub(n) });
            proptest::prop_assert_eq!(counter.sum(1), net);
            proptest::prop_assert_eq!(counter.sum(0), ops.len() as u64);
        }
    }

    /// Lines are taken until none is free (then the shared one), and a line given back is taken next.
    #[test]
    fn lines_are_taken_once_and_given_back() {
        let lines = AtomicU64::new(u64::MAX);
        let taken: Vec<usize> = (0..OWNED_LINES).map(|_| claim_line(&lines)).collect();
        assert_eq!(taken, (0..OWNED_LINES).collect::<Vec<_>>(), "each line once");
        assert_eq!(claim_line(&lines), SHARED_LINE, "none free: the shared line");
        release_line(&lines, 5);
        release_line(&lines, SHARED_LINE);
        assert_eq!(claim_line(&lines), 5);
        assert_eq!(claim_line(&lines), SHARED_LINE);
    }

    /// Two threads alive at once hold different lines (unless both got the shared one).
    #[test]
    fn live_threads_hold_different_lines() {
        let barrier = std::sync::Barrier::new(2);
        let (a, b) = std::thread::scope(|s| {
            let one = s.spawn(|| {
                let l = owned_line();
                barrier.wait();
                l
            });
            let two = s.spawn(|| {
                let l = owned_line();
                barrier.wait();
                l
            });
            (one.join().unwrap(), two.join().unwrap())
        });
        assert!(a != b || a == SHARED_LINE, "two live threads on one owned line: {a}");
    }

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
