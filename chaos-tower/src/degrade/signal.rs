//! The [`Signal`] trait: what a [`TriggerTask`](super::TriggerTask) polls.

/// A number read on every tick of a [`TriggerTask`](super::TriggerTask): an error rate, a p95 in seconds, a
/// share of a limit, 0/1 for a state.
///
/// `None` (or NaN) means no reading this time (too few calls, no sample yet): the trigger holds its state.
/// Any `FnMut() -> Option<f64> + Send + 'static` closure is a signal.
///
/// ```
/// use brownout_tower::degrade::Signal;
///
/// let mut queue_depth = || Some(42.0);
/// assert_eq!(queue_depth.read(), Some(42.0));
/// ```
pub trait Signal: Send + 'static {
    /// Reads the signal now; `None` when there is nothing to read.
    fn read(&mut self) -> Option<f64>;
}

impl<F> Signal for F
where
    F: FnMut() -> Option<f64> + Send + 'static,
{
    #[inline]
    fn read(&mut self) -> Option<f64> {
        self()
    }
}
