//! Locking helpers.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, going on with its data if a thread panicked while holding it.
///
/// For state that every write leaves consistent (a counter, a map replaced whole): a panic elsewhere must not
/// turn every later use of the state into a second panic.
///
/// ```
/// use std::sync::Mutex;
/// let m = Mutex::new(1);
/// *brownout_foundation::sync::lock(&m) += 1;
/// assert_eq!(*brownout_foundation::sync::lock(&m), 2);
/// ```
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_mutex_still_gives_its_data() {
        let m = std::sync::Arc::new(Mutex::new(41));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _guard = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 42);
    }
}
