//! Metric names and the per-rule handles, registered once when a rule set loads.
//!
//! Names follow Prometheus conventions: `chaos_faults_injected_total{rule,kind}`,
//! `chaos_faults_overflow_total{rule}` (a fault the sampler chose but a bound skipped),
//! `chaos_active_faults{rule}`, `chaos_armed` and `chaos_disarms_total{reason}`. Handles bind to the recorder installed when the rules are
//! loaded: install the exporter first.

use metrics::{Counter, Gauge};

use crate::fault::FaultKind;

/// `chaos_faults_injected_total{rule,kind}`.
pub(crate) const INJECTED: &str = "chaos_faults_injected_total";
/// `chaos_faults_overflow_total{rule}`.
pub(crate) const OVERFLOW: &str = "chaos_faults_overflow_total";
/// `chaos_active_faults{rule}`.
pub(crate) const ACTIVE: &str = "chaos_active_faults";
/// `chaos_armed`: 1 while a rule set is armed.
pub(crate) const ARMED: &str = "chaos_armed";
/// `chaos_disarms_total{reason}`: disarms of an armed rule set, by why.
pub(crate) const DISARMS: &str = "chaos_disarms_total";

/// The `reason` label of [`DISARMS`]: `kill_switch` (an operator or the admin API), `ttl` (the rule set's TTL),
/// `slo_guard` (the SLO guard's abort), `other` (any other reason given to `disarm_because`, kept out of the
/// label so its values stay few).
pub(crate) const DISARM_REASONS: [&str; 4] = ["kill_switch", "ttl", "slo_guard", "other"];

#[derive(Debug)]
pub(crate) struct RuleMetrics {
    pub(crate) injected: Counter,
    pub(crate) overflow: Counter,
    pub(crate) active: Gauge,
}

/// Gives each metric its help text (`# HELP`, which `promtool check metrics` requires), in the recorder
/// installed now; called wherever the handles are registered.
pub(crate) fn describe() {
    metrics::describe_counter!(INJECTED, "Faults injected by chaos rules, per rule and fault kind.");
    metrics::describe_counter!(OVERFLOW, "Faults a rule chose but a bound (max_active, max_injections) skipped.");
    metrics::describe_gauge!(ACTIVE, "Injected faults in flight, per rule.");
    metrics::describe_gauge!(ARMED, "1 while a chaos rule set is armed, else 0.");
    metrics::describe_counter!(
        DISARMS,
        "Disarms of an armed chaos rule set, by reason (kill_switch, ttl, slo_guard, other)."
    );
}

impl RuleMetrics {
    pub(crate) fn register(rule: &str, kind: FaultKind) -> Self {
        describe();
        Self {
            injected: metrics::counter!(INJECTED, "rule" => rule.to_owned(), "kind" => kind.as_str()),
            overflow: metrics::counter!(OVERFLOW, "rule" => rule.to_owned()),
            active: metrics::gauge!(ACTIVE, "rule" => rule.to_owned()),
        }
    }
}

pub(crate) fn set_armed(armed: bool) {
    describe();
    metrics::gauge!(ARMED).set(if armed { 1.0 } else { 0.0 });
    // Every reason's series exists from the first arm, at 0, so an alert on one of them has a series to read.
    for reason in DISARM_REASONS {
        metrics::counter!(DISARMS, "reason" => reason).increment(0);
    }
}

/// Counts one disarm of an armed rule set; `reason` is what `Controller::disarm_because` was given.
pub(crate) fn count_disarm(reason: &str) {
    let label = match reason {
        "kill switch" => "kill_switch",
        "ttl expired" => "ttl",
        "slo guard" => "slo_guard",
        _ => "other",
    };
    metrics::counter!(DISARMS, "reason" => label).increment(1);
}
