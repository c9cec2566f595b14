//! The answer to "which faults does this request get?", holding the active-fault slots it took.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

use crate::fault::{BodyFault, Delay, FaultKind, Outcome};
use crate::rule::RuleSet;

/// One injected fault. While it lives it counts against the rule's `max_active` and the set's
/// `max_active_faults`; dropping it gives the slot back, so a cancelled request frees its slot.
pub struct ActiveFault<T> {
    set: Arc<RuleSet>,
    index: usize,
    fault: T,
}

impl<T> ActiveFault<T> {
    pub(crate) fn new(set: Arc<RuleSet>, index: usize, fault: T) -> Self {
        Self { set, index, fault }
    }

    /// What to inject.
    pub fn fault(&self) -> &T {
        &self.fault
    }

    /// The name of the rule that fired.
    pub fn rule(&self) -> &str {
        &self.set.rules[self.index].name
    }

    /// The name of the rule that fired, shared (for errors that outlive the fault).
    pub fn rule_shared(&self) -> std::sync::Arc<str> {
        self.set.rules[self.index].name.clone()
    }

    /// The rule name as a header value, for `x-chaos-injected`.
    pub fn header_value(&self) -> &HeaderValue {
        &self.set.rules[self.index].header_value
    }

    /// The kind of fault the rule injects.
    pub fn kind(&self) -> FaultKind {
        self.set.rules[self.index].kind()
    }

    /// The name of the experiment whose rule fired (the config's `experiment`), if it has one.
    pub fn experiment(&self) -> Option<&str> {
        self.set.config.experiment.as_deref()
    }
}

impl<T> Drop for ActiveFault<T> {
    fn drop(&mut self) {
        self.set.release(self.index);
    }
}

impl<T: fmt::Debug> fmt::Debug for ActiveFault<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveFault").field("rule", &self.rule()).field("fault", &self.fault).finish()
    }
}

/// The faults chosen for one request: at most one delay, one outcome and one body fault, each from the first
/// rule of that kind that fired. A delay comes first; then the outcome replaces the service's answer, or the
/// body fault shapes it.
#[derive(Debug, Default)]
pub struct Injection {
    pub(crate) delay: Option<ActiveFault<Delay>>,
    pub(crate) outcome: Option<ActiveFault<Outcome>>,
    pub(crate) body: Option<ActiveFault<BodyFault>>,
}

impl Injection {
    /// The delay (a sleep or a CPU burn) to apply before anything else.
    pub fn delay(&self) -> Option<&ActiveFault<Delay>> {
        self.delay.as_ref()
    }

    /// The answer that replaces the service's.
    pub fn outcome(&self) -> Option<&ActiveFault<Outcome>> {
        self.outcome.as_ref()
    }

    /// What happens to the response body.
    pub fn body(&self) -> Option<&ActiveFault<BodyFault>> {
        self.body.as_ref()
    }

    /// Splits into the three parts, each keeping its own slot.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> (Option<ActiveFault<Delay>>, Option<ActiveFault<Outcome>>, Option<ActiveFault<BodyFault>>) {
        (self.delay, self.outcome, self.body)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.delay.is_none() && self.outcome.is_none() && self.body.is_none()
    }
}
