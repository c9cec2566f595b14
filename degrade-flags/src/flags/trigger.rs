//! Triggers: flip a flag automatically from a signal, with hysteresis.

use std::time::{Duration, Instant};

use super::error::FlagError;
use super::registry::Flags;
use super::value::FlagValue;

/// A two-threshold switch with a minimum hold time: it turns on when the signal rises above `on_above`,
/// off when it falls below `off_below`, and never changes within `min_hold` of its last change. Pure: the
/// caller passes the time.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    on_above: f64,
    off_below: f64,
    min_hold: Duration,
    on: bool,
    changed_at: Option<Instant>,
}

impl Hysteresis {
    /// A switch, off. Needs `off_below ≤ on_above`, both finite.
    pub fn new(on_above: f64, off_below: f64, min_hold: Duration) -> Result<Self, FlagError> {
        if !(on_above.is_finite() && off_below.is_finite() && off_below <= on_above) {
            return Err(FlagError::new(
                "trigger",
                format!("need finite off_below ≤ on_above, got on_above {on_above}, off_below {off_below}"),
            ));
        }
        Ok(Self { on_above, off_below, min_hold, on: false, changed_at: None })
    }

    /// Is it on?
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Feeds one observation; returns the new state when it flips.
    pub fn observe(&mut self, signal: f64, now: Instant) -> Option<bool> {
        if self.changed_at.is_some_and(|at| now.saturating_duration_since(at) < self.min_hold) || signal.is_nan() {
            return None;
        }
        let flip = if self.on { signal < self.off_below } else { signal > self.on_above };
        if flip {
            self.on = !self.on;
            self.changed_at = Some(now);
            Some(self.on)
        } else {
            None
        }
    }
}

/// A trigger that sets a flag to `value` while its signal is high (error rate, p95, breaker open, memory
/// pressure, a budget at critical…) and clears it when the signal is low again.
#[derive(Debug, Clone)]
pub struct Trigger {
    name: String,
    flag: String,
    value: FlagValue,
    switch: Hysteresis,
}

impl Trigger {
    /// A trigger named `name` (shown in logs as `source=trigger:<name>`) that drives `flag` to `value`.
    pub fn new(name: &str, flag: &str, value: FlagValue, switch: Hysteresis) -> Self {
        Self { name: name.to_owned(), flag: flag.to_owned(), value, switch }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The flag it drives.
    pub fn flag(&self) -> &str {
        &self.flag
    }

    /// The value it sets the flag to while on.
    pub fn value(&self) -> FlagValue {
        self.value
    }

    /// Is its switch on? (A manual setting of the flag may still decide the flag's value.)
    pub fn is_on(&self) -> bool {
        self.switch.is_on()
    }

    /// Feeds one observation of the signal; on a flip, sets or clears the flag's trigger layer.
    pub fn observe(&mut self, flags: &Flags, signal: f64, now: Instant) -> Result<Option<bool>, FlagError> {
        let flipped = self.switch.observe(signal, now);
        if let Some(on) = flipped {
            flags.set_trigger(&self.flag, on.then_some(self.value), &self.name)?;
        }
        Ok(flipped)
    }
}
