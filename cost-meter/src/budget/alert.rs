//! Alert levels with hysteresis, the events of their crossings, and the sinks they go to.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use metrics::Gauge;
use serde::{Deserialize, Serialize};

use super::civil::Month;
use super::spec::Thresholds;
use super::usage::Utilization;

/// A budget's alert state. Exported as `budget_alert_state{budget}`: 0 ok, 1 warn, 2 critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(
    clippy::exhaustive_enums,
    reason = "the ladder ok, warn, critical: a sink that does not handle a new level must not compile"
)]
pub enum AlertLevel {
    /// Below warn.
    #[default]
    Ok,
    /// At or above warn.
    Warn,
    /// At or above critical: guardrails apply.
    Critical,
}

impl AlertLevel {
    /// The value of `budget_alert_state`.
    pub fn as_gauge(self) -> f64 {
        match self {
            AlertLevel::Ok => 0.0,
            AlertLevel::Warn => 1.0,
            AlertLevel::Critical => 2.0,
        }
    }

    /// The name used in logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Ok => "ok",
            AlertLevel::Warn => "warn",
            AlertLevel::Critical => "critical",
        }
    }

    /// The level after utilisation `u` is seen at level `self`.
    ///
    /// A level rises as soon as `u` reaches its threshold, and falls only when `u` drops below the threshold
    /// minus `hysteresis`: between the two the level stays as it was, so a utilisation wobbling around a
    /// threshold fires once. A NaN utilisation changes nothing.
    pub fn next(self, u: f64, thresholds: Thresholds, hysteresis: f64) -> AlertLevel {
        if u.is_nan() {
            return self;
        }
        let level_at = |warn: f64, critical: f64| {
            if u >= critical {
                AlertLevel::Critical
            } else if u >= warn {
                AlertLevel::Warn
            } else {
                AlertLevel::Ok
            }
        };
        let up = level_at(thresholds.warn, thresholds.critical);
        let hold = level_at(thresholds.warn - hysteresis, thresholds.critical - hysteresis);
        up.max(self.min(hold))
    }
}

impl fmt::Display for AlertLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A crossing: a budget's level changed. Fired once per crossing (ok→warn, warn→critical, critical→warn,
/// warn→ok, or ok→critical in one step when one job pushes the budget past both thresholds).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AlertEvent {
    /// The budget.
    pub budget: String,
    /// Its owner.
    pub owner: String,
    /// The level before.
    pub from: AlertLevel,
    /// The level now.
    pub to: AlertLevel,
    /// The utilisation that caused it.
    pub utilization: Utilization,
    /// The month it is counted in.
    pub month: Month,
}

impl AlertEvent {
    /// Whether the budget got worse (a raise) rather than better (a clear).
    pub fn is_raise(&self) -> bool {
        self.to > self.from
    }
}

impl fmt::Display for AlertEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "budget `{}` {} → {} ({}", self.budget, self.from, self.to, self.month)?;
        for (resource, ratio) in self.utilization.resources() {
            write!(f, ", {resource} {:.1}%", ratio * 100.0)?;
        }
        write!(f, "; owner {})", self.owner)
    }
}

/// Where budget alerts and utilisation go. Plug in a closure (`impl Fn(&AlertEvent)`), [`LogSink`],
/// [`MetricsSink`], or your own (a pager, a chat hook).
pub trait AlertSink: Send + Sync {
    /// A crossing. Called once per crossing, after the guardrails were applied.
    fn alert(&self, event: &AlertEvent);

    /// A budget's utilisation and level after it changed (every charge). Does nothing by default.
    fn utilization(&self, _budget: &str, _utilization: Utilization, _level: AlertLevel) {}
}

impl<F: Fn(&AlertEvent) + Send + Sync> AlertSink for F {
    fn alert(&self, event: &AlertEvent) {
        self(event)
    }
}

/// Logs every crossing through `tracing`: raises at `warn` level, clears at `info`, with
/// `budget`, `from`, `to` and `owner` fields.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct LogSink;

impl AlertSink for LogSink {
    fn alert(&self, e: &AlertEvent) {
        let (budget, from, to, owner) = (e.budget.as_str(), e.from.as_str(), e.to.as_str(), e.owner.as_str());
        if e.is_raise() {
            tracing::warn!(budget, from, to, owner, "budget alert: {e}");
        } else {
            tracing::info!(budget, from, to, owner, "budget alert cleared: {e}");
        }
    }
}

/// Sets the gauges `budget_utilization_ratio{budget,resource}` (resource `cpu` or `memory`) and
/// `budget_alert_state{budget}` (0 ok, 1 warn, 2 critical) through the `metrics` facade.
///
/// The gauges' handles are looked up once per budget and kept (a monitor charged per request sets them at
/// that rate): make the sink after installing the recorder.
#[derive(Default)]
pub struct MetricsSink {
    gauges: Mutex<HashMap<String, BudgetGauges>>,
}

/// One budget's gauges; a resource's ratio is registered when the budget first reports it (a budget without
/// a memory limit publishes no memory ratio).
struct BudgetGauges {
    budget: String,
    cpu: Option<Gauge>,
    memory: Option<Gauge>,
    state: Gauge,
}

impl BudgetGauges {
    fn ratio(&mut self, resource: &'static str) -> &Gauge {
        let slot = if resource == "cpu" { &mut self.cpu } else { &mut self.memory };
        slot.get_or_insert_with(
            || metrics::gauge!("budget_utilization_ratio", "budget" => self.budget.clone(), "resource" => resource),
        )
    }
}

impl fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsSink").finish_non_exhaustive()
    }
}

impl MetricsSink {
    /// A sink; describes the two gauges to the recorder installed now.
    pub fn new() -> Self {
        metrics::describe_gauge!("budget_alert_state", "A budget's alert level: 0 ok, 1 warn, 2 critical.");
        metrics::describe_gauge!(
            "budget_utilization_ratio",
            "Month-to-date use of a budget's resource over its limit."
        );
        MetricsSink::default()
    }

    fn with_gauges(&self, budget: &str, f: impl FnOnce(&mut BudgetGauges)) {
        let mut gauges = brownout_foundation::sync::lock(&self.gauges);
        if let Some(g) = gauges.get_mut(budget) {
            return f(g);
        }
        let g = BudgetGauges {
            budget: budget.to_owned(),
            cpu: None,
            memory: None,
            state: metrics::gauge!("budget_alert_state", "budget" => budget.to_owned()),
        };
        f(gauges.entry(budget.to_owned()).or_insert(g))
    }
}

impl AlertSink for MetricsSink {
    fn alert(&self, e: &AlertEvent) {
        self.with_gauges(&e.budget, |g| g.state.set(e.to.as_gauge()));
    }

    fn utilization(&self, budget: &str, u: Utilization, level: AlertLevel) {
        self.with_gauges(budget, |g| {
            for (resource, ratio) in u.resources() {
                g.ratio(resource).set(ratio);
            }
            g.state.set(level.as_gauge());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { warn: 0.7, critical: 0.9 };

    #[test]
    fn hysteresis_holds_between_threshold_and_threshold_minus_h() {
        use AlertLevel::*;
        let steps = [
            (0.5, Ok),
            (0.7, Warn),
            (0.66, Warn),
            (0.649, Ok),
            (0.95, Critical),
            (0.86, Critical),
            (0.849, Warn),
            (0.9, Critical),
            (0.1, Ok),
            (f64::NAN, Ok),
        ];
        let mut level = Ok;
        for (u, want) in steps {
            level = level.next(u, T, 0.05);
            assert_eq!(level, want, "at {u}");
        }
    }
}
