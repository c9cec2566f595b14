//! [`TriggerError`]: a trigger that cannot be built.

use std::fmt;

/// A trigger that was refused: thresholds out of order or not finite, an unknown flag, or a value the flag
/// cannot take. Nothing was spawned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerError {
    trigger: String,
    reason: String,
}

impl TriggerError {
    pub(crate) fn new(trigger: &str, reason: impl Into<String>) -> Self {
        Self { trigger: trigger.to_owned(), reason: reason.into() }
    }

    /// The trigger's name.
    pub fn trigger(&self) -> &str {
        &self.trigger
    }

    /// Why it was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for TriggerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trigger `{}`: {}", self.trigger, self.reason)
    }
}

impl std::error::Error for TriggerError {}
