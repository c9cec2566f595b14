//! Guardrails applied while a budget is critical: a concurrency limit that callers obey, and a freeze of new
//! ad-hoc runs. Both are cheap `Clone` handles over shared state: every clone sees one limit and one switch.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use brownout_foundation::sync::lock;

/// A limit on concurrent jobs or requests that budgets lower at critical and restore when they clear.
///
/// `try_acquire` is one load and a compare-exchange; the permit gives its slot back when dropped. The limit in
/// force is the lowest of the normal maximum and every cap set by a budget. Lowering the limit below the
/// permits held does not revoke them: new acquisitions fail until enough are dropped.
///
/// ```
/// use brownout_cost::guardrail::ConcurrencyLimit;
/// let limit = ConcurrencyLimit::new(4);
/// let permit = limit.try_acquire().expect("a free slot");
/// limit.cap("research-cluster", 1); // the budget went critical
/// assert!(limit.try_acquire().is_none());
/// drop(permit);
/// assert!(limit.try_acquire().is_some());
/// ```
#[derive(Clone)]
pub struct ConcurrencyLimit {
    inner: Arc<LimitInner>,
}

struct LimitInner {
    in_use: AtomicUsize,
    max: AtomicUsize,
    state: Mutex<LimitState>,
}

struct LimitState {
    normal: usize,
    caps: BTreeMap<String, usize>,
}

impl LimitState {
    fn effective(&self) -> usize {
        self.caps.values().copied().fold(self.normal, usize::min)
    }
}

impl ConcurrencyLimit {
    /// A limit of `normal` concurrent holders when no budget caps it.
    pub fn new(normal: usize) -> Self {
        ConcurrencyLimit {
            inner: Arc::new(LimitInner {
                in_use: AtomicUsize::new(0),
                max: AtomicUsize::new(normal),
                state: Mutex::new(LimitState { normal, caps: BTreeMap::new() }),
            }),
        }
    }

    /// No limit until a budget sets a cap.
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// A permit if fewer than the limit in force are held.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut current = self.inner.in_use.load(Ordering::Relaxed);
        loop {
            if current >= self.inner.max.load(Ordering::Acquire) {
                return None;
            }
            match self.inner.in_use.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(Permit { inner: Arc::clone(&self.inner) }),
                Err(seen) => current = seen,
            }
        }
    }

    /// The limit in force.
    pub fn max(&self) -> usize {
        self.inner.max.load(Ordering::Acquire)
    }

    /// Permits held now.
    pub fn in_use(&self) -> usize {
        self.inner.in_use.load(Ordering::Acquire)
    }

    /// Sets the limit when nothing caps it.
    pub fn set_normal(&self, normal: usize) {
        let mut state = lock(&self.inner.state);
        state.normal = normal;
        self.inner.max.store(state.effective(), Ordering::Release);
    }

    /// Caps the limit at `max` on behalf of `by` (a budget name), replacing `by`'s previous cap.
    pub fn cap(&self, by: &str, max: usize) {
        let mut state = lock(&self.inner.state);
        state.caps.insert(by.to_owned(), max);
        self.inner.max.store(state.effective(), Ordering::Release);
    }

    /// Lifts `by`'s cap; the limit goes back to the lowest remaining cap or the normal maximum.
    pub fn lift(&self, by: &str) {
        let mut state = lock(&self.inner.state);
        state.caps.remove(by);
        self.inner.max.store(state.effective(), Ordering::Release);
    }

    /// The caps in force, by who set them.
    pub fn caps(&self) -> BTreeMap<String, usize> {
        lock(&self.inner.state).caps.clone()
    }
}

impl fmt::Debug for ConcurrencyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimit").field("max", &self.max()).field("in_use", &self.in_use()).finish()
    }
}

/// One slot of a [`ConcurrencyLimit`], given back when dropped.
pub struct Permit {
    inner: Arc<LimitInner>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.inner.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

/// The freeze of new ad-hoc runs (jobs started by hand, not by a schedule). Scheduled runs and runs already
/// going are not affected. Checking it is one atomic load.
#[derive(Clone, Default)]
pub struct AdhocFreeze {
    inner: Arc<FreezeInner>,
}

#[derive(Default)]
struct FreezeInner {
    frozen: AtomicBool,
    reasons: Mutex<BTreeMap<String, String>>,
}

impl AdhocFreeze {
    /// A switch that is not frozen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Freezes on behalf of `by` (a budget name), saying why.
    pub fn freeze(&self, by: &str, reason: impl Into<String>) {
        let mut reasons = lock(&self.inner.reasons);
        reasons.insert(by.to_owned(), reason.into());
        self.inner.frozen.store(true, Ordering::Release);
    }

    /// Lifts `by`'s freeze; runs are allowed again when no freeze remains.
    pub fn thaw(&self, by: &str) {
        let mut reasons = lock(&self.inner.reasons);
        reasons.remove(by);
        self.inner.frozen.store(!reasons.is_empty(), Ordering::Release);
    }

    /// Whether new ad-hoc runs are frozen.
    pub fn is_frozen(&self) -> bool {
        self.inner.frozen.load(Ordering::Acquire)
    }

    /// `Ok` if a new ad-hoc run may start, or the error to show its user.
    pub fn check(&self) -> Result<(), Frozen> {
        if !self.is_frozen() {
            return Ok(());
        }
        let reasons = lock(&self.inner.reasons);
        if reasons.is_empty() {
            return Ok(());
        }
        Err(Frozen { reasons: reasons.iter().map(|(k, v)| (k.clone(), v.clone())).collect() })
    }
}

impl fmt::Debug for AdhocFreeze {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdhocFreeze").field("frozen", &self.is_frozen()).finish()
    }
}

/// A new ad-hoc run refused because a budget is critical.
///
/// `Display`: `new ad-hoc runs are frozen: budget `research-cluster` is critical (cpu 93.0%); scheduled runs
/// continue, and the freeze lifts when usage falls below the threshold or the month ends`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen {
    reasons: Vec<(String, String)>,
}

impl Frozen {
    /// The budgets that froze runs, with their reasons.
    pub fn budgets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.reasons.iter().map(|(b, r)| (b.as_str(), r.as_str()))
    }
}

impl fmt::Display for Frozen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("new ad-hoc runs are frozen: ")?;
        for (i, (_, reason)) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(reason)?;
        }
        f.write_str(
            "; scheduled runs continue, and the freeze lifts when usage falls below the threshold or the month ends",
        )
    }
}

impl std::error::Error for Frozen {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_take_the_lowest_and_lift_back() {
        let limit = ConcurrencyLimit::new(8);
        let held: Vec<_> = (0..3).map(|_| limit.try_acquire().unwrap()).collect();
        limit.cap("a", 4);
        limit.cap("b", 2);
        assert_eq!(limit.max(), 2);
        assert!(limit.try_acquire().is_none(), "3 held, limit 2");
        limit.lift("b");
        assert_eq!(limit.max(), 4);
        let fourth = limit.try_acquire().unwrap();
        assert!(limit.try_acquire().is_none());
        drop((held, fourth));
        assert_eq!(limit.in_use(), 0);
        limit.lift("a");
        assert_eq!(limit.max(), 8);
    }

    #[test]
    fn permits_are_exact_under_two_threads() {
        let limit = ConcurrencyLimit::new(3);
        let peak = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (limit, peak) = (limit.clone(), Arc::clone(&peak));
                s.spawn(move || {
                    for _ in 0..10_000 {
                        if let Some(p) = limit.try_acquire() {
                            peak.fetch_max(limit.in_use(), Ordering::Relaxed);
                            drop(p);
                        }
                    }
                });
            }
        });
        assert!(peak.load(Ordering::Relaxed) <= 3);
        assert_eq!(limit.in_use(), 0);
    }

    #[test]
    fn freeze_names_its_budgets() {
        let freeze = AdhocFreeze::new();
        assert!(freeze.check().is_ok());
        freeze.freeze("research", "budget `research` is critical");
        let err = freeze.clone().check().unwrap_err();
        assert!(err.to_string().contains("budget `research` is critical"), "{err}");
        freeze.thaw("research");
        assert!(freeze.check().is_ok());
    }
}
