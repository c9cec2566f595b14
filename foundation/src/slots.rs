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
