//! What a call's result means to the breaker, and the pluggable classifier that decides it.

/// How a finished call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It worked (it may still count as slow, by its elapsed time).
    Success,
    /// It failed: counts toward the failure rate (and toward the slow-call rate if it was slow).
    Failure,
    /// Neither: not in the window and not a probe (a half-open probe slot is given back). Counted as
    /// `ignored` in `circuit_breaker_calls_total`.
    Ignored,
}

/// Decides the [`Outcome`] of a call from its output, e.g. a `Result` or an HTTP response.
///
/// Any `Fn(&T) -> Outcome` is a classifier. To keep injected faults out of the failure rate (so a chaos
/// experiment does not open the breaker it is meant to test around), ignore them:
///
/// ```
/// use brownout_degrade::breaker::{Classifier, Outcome};
///
/// #[derive(Debug)]
/// enum Error { Injected, Upstream }
///
/// let classify = |r: &Result<u32, Error>| match r {
///     Ok(_) => Outcome::Success,
///     Err(Error::Injected) => Outcome::Ignored,
///     Err(Error::Upstream) => Outcome::Failure,
/// };
/// assert_eq!(classify.classify(&Err(Error::Injected)), Outcome::Ignored);
/// ```
pub trait Classifier<T: ?Sized> {
    /// The outcome of one call's output.
    fn classify(&self, output: &T) -> Outcome;
}

impl<T: ?Sized, F: Fn(&T) -> Outcome> Classifier<T> for F {
    #[inline]
    fn classify(&self, output: &T) -> Outcome {
        self(output)
    }
}

/// The default classifier of `Result`s: `Ok` is a success, `Err` a failure.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct ResultClassifier;

impl<T, E> Classifier<Result<T, E>> for ResultClassifier {
    #[inline]
    fn classify(&self, output: &Result<T, E>) -> Outcome {
        match output {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}
