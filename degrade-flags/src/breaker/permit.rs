//! Permits (an admitted call, waiting for its outcome) and the rejection error.

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::time::Duration;

use super::circuit::CircuitBreaker;
use super::outcome::{Classifier, Outcome};
use super::state::Status;

/// What an admitted call is to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Recorded in the window (closed, forced closed).
    Window,
    /// A half-open probe.
    Probe,
    /// Admitted only because of `MetricsOnly`: counted in the metrics, changes nothing.
    Shadow,
    /// Disabled: nothing is recorded.
    Untracked,
}

/// An admitted call. Record its outcome with [`record`](Permit::record) (or
/// [`record_with`](Permit::record_with) and a [`Classifier`]).
///
/// Dropping a permit without recording counts the call as [`Outcome::Ignored`] (a cancelled call: it is
/// not in the window, and a half-open probe slot is given back). A permit taken before a transition (say,
/// closed, and the breaker opened meanwhile) is stale: its outcome is counted in the metrics only.
#[must_use = "record the call's outcome on the permit; dropping it counts the call as ignored"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    word: u64,
    kind: Kind,
}

impl<'a> Permit<'a> {
    #[inline]
    pub(crate) fn new(breaker: &'a CircuitBreaker, word: u64, kind: Kind) -> Self {
        Self { breaker, word, kind }
    }

    /// Records the outcome of the call and how long it took (compared with `slow_calls.duration`).
    #[inline]
    pub fn record(self, outcome: Outcome, elapsed: Duration) {
        let this = ManuallyDrop::new(self);
        this.breaker.finish(this.word, this.kind, outcome, elapsed);
    }

    /// Records the call's `output` as `classifier` sees it.
    #[inline]
    pub fn record_with<T: ?Sized>(self, output: &T, classifier: &impl Classifier<T>, elapsed: Duration) {
        self.record(classifier.classify(output), elapsed)
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.kind == Kind::Probe
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker.finish(self.word, self.kind, Outcome::Ignored, Duration::ZERO);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("breaker", &self.breaker.name()).field("kind", &self.kind).finish()
    }
}

/// A [`Permit`] that owns an `Arc` of its breaker, for `'static` futures. Same rules.
#[must_use = "record the call's outcome on the permit; dropping it counts the call as ignored"]
pub struct OwnedPermit {
    breaker: Arc<CircuitBreaker>,
    word: u64,
    kind: Kind,
}

impl OwnedPermit {
    pub(crate) fn new(breaker: Arc<CircuitBreaker>, word: u64, kind: Kind) -> Self {
        Self { breaker, word, kind }
    }

    /// Records the outcome of the call and how long it took.
    pub fn record(mut self, outcome: Outcome, elapsed: Duration) {
        self.breaker.finish(self.word, self.kind, outcome, elapsed);
        self.kind = Kind::Untracked; // so the drop that follows records nothing
    }

    /// Records the call's `output` as `classifier` sees it.
    pub fn record_with<T: ?Sized>(self, output: &T, classifier: &impl Classifier<T>, elapsed: Duration) {
        self.record(classifier.classify(output), elapsed)
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.kind == Kind::Probe
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        self.breaker.finish(self.word, self.kind, Outcome::Ignored, Duration::ZERO);
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit").field("breaker", &self.breaker.name()).field("kind", &self.kind).finish()
    }
}

/// A call the breaker refused: it is open, forced open, or half-open with every probe taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected {
    status: Status,
    retry_after: Option<Duration>,
}

impl Rejected {
    pub(crate) fn new(status: Status, retry_after: Option<Duration>) -> Self {
        Self { status, retry_after }
    }

    /// The breaker's status when it refused.
    pub fn status(&self) -> Status {
        self.status
    }

    /// When open (not forced): the time until it lets probes through, e.g. for a `Retry-After` header.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker is {}", self.status.label().replace('_', " "))
    }
}

impl std::error::Error for Rejected {}
