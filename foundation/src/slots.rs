//! The find-or-insert of a small per-thread cache: a few entries in a `Vec`, looked up by a linear scan (a
//! handful of entries beat a hash), the oldest dropped when a new one finds the cache full.

/// The entry of `entries` that `is` picks, or one made by `make` and pushed at the end; when `entries` already
/// holds `bound`, the first (oldest) is dropped to make room.
///
/// ```
/// use brownout_foundation::slots::find_or_push;
///
/// let mut cache: Vec<(u64, &str)> = Vec::new();
/// find_or_push(&mut cache, 2, |e| e.0 == 1, || (1, "one"));
/// find_or_push(&mut cache, 2, |e| e.0 == 2, || (2, "two"));
/// assert_eq!(find_or_push(&mut cache, 2, |e| e.0 == 1, || unreachable!()).1, "one");
/// find_or_push(&mut cache, 2, |e| e.0 == 3, || (3, "three"));
/// assert_eq!(cache, [(2, "two"), (3, "three")], "the oldest went");
/// ```
#[inline]
pub fn find_or_push<T>(
    entries: &mut Vec<T>,
    bound: usize,
    is: impl FnMut(&T) -> bool,
    make: impl FnOnce() -> T,
) -> &mut T {
    let index = match entries.iter().position(is) {
        Some(index) => index,
        None => {
            if entries.len() >= bound.max(1) {
                entries.remove(0);
            }
            entries.push(make());
            entries.len() - 1
        }
    };
    &mut entries[index]
}

/// A thread's block of numbers from one shared sequence: see [`next_number`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberBlock {
    sequence: u64,
    next: u64,
    end: u64,
}

/// The next number of the shared `sequence` (told apart from others by `id`) for the calling thread, from its
/// block in `blocks` (a thread-local cache of at most `bound` blocks, the oldest dropped first): when the block
/// is used up, the thread takes the next `size` numbers with one atomic add. Numbers are unique per sequence and
/// in order on each thread, not across threads; a thread alone takes 0, 1, 2, … as a plain counter would.
///
/// ```
/// use std::sync::atomic::AtomicU64;
/// use brownout_foundation::slots::next_number;
///
/// let (sequence, mut blocks) = (AtomicU64::new(0), Vec::new());
/// let taken: Vec<u64> = (0..5).map(|_| next_number(&mut blocks, 4, 7, &sequence, 2)).collect();
/// assert_eq!(taken, [0, 1, 2, 3, 4]);
/// assert_eq!(sequence.into_inner(), 6, "three blocks of two taken");
/// ```
#[inline]
pub fn next_number(
    blocks: &mut Vec<NumberBlock>,
    bound: usize,
    id: u64,
    sequence: &std::sync::atomic::AtomicU64,
    size: u64,
) -> u64 {
    let block = find_or_push(blocks, bound, |b| b.sequence == id, || NumberBlock { sequence: id, next: 0, end: 0 });
    if block.next == block.end {
        block.next = sequence.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        block.end = block.next.saturating_add(size);
    }
    block.next += 1;
    block.next - 1
}
