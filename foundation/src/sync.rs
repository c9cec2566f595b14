//! Locking helpers.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

/// Read-locks `l`, going on with its data if a thread panicked while holding it (see [`lock`]).
///
/// ```
/// use std::sync::RwLock;
/// let l = RwLock::new(vec![1]);
/// brownout_foundation::sync::write(&l).push(2);
/// assert_eq!(*brownout_foundation::sync::read(&l), [1, 2]);
/// ```
pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `l`, going on with its data if a thread panicked while holding it (see [`lock`]).
pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisoned_locks_still_give_their_data() {
        let m = std::sync::Arc::new(Mutex::new(41));
        let l = std::sync::Arc::new(RwLock::new(41));
        let (m2, l2) = (m.clone(), l.clone());
        let _ = std::thread::spawn(move || {
            let _m = m2.lock().unwrap();
            let _l = l2.write().unwrap();
            panic!("poison both");
        })
        .join();
        assert!(m.is_poisoned() && l.is_poisoned());
        *lock(&m) += 1;
        *write(&l) += 1;
        assert_eq!(*lock(&m), 42);
        assert_eq!(*read(&l), 42);
    }
}
