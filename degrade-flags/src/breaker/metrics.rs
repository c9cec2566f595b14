//! The breaker's metrics, through the `metrics` facade:
//!
//! - `circuit_breaker_state{breaker}` (gauge): [`Status::code`](super::Status::code), 0 closed, 1 open,
//!   2 half-open, 3 forced open, 4 forced closed, 5 disabled.
//! - `circuit_breaker_transitions_total{breaker,from,to}` (counter), labels from
//!   [`Status::label`](super::Status::label).
//! - `circuit_breaker_calls_total{breaker,outcome}` (counter), `outcome` one of `success`, `failure`, `slow`
//!   (a successful slow call; a slow failure counts as `failure`), `rejected`, `ignored`.
//!
//! Handles are registered once, when the breaker is built, with the recorder in force then. Call counts are
//! batched in the per-thread stripes and published at every bucket boundary, transition and snapshot, and by
//! [`CircuitBreaker::publish_metrics`](super::CircuitBreaker::publish_metrics): the closed path never writes
//! a metric.

use metrics::{Counter, Gauge, SharedString, counter, gauge};

use super::state::Status;

pub(crate) const OUTCOMES: [&str; 5] = ["success", "failure", "slow", "ignored", "rejected"];

#[derive(Debug)]
pub(crate) struct Metrics {
    label: SharedString,
    state: Option<Gauge>,
    calls: [Counter; 5],
}

impl Metrics {
    pub(crate) fn new(label: &str, state_gauge: bool) -> Self {
        let label = SharedString::from(label.to_owned());
        metrics::describe_gauge!(
            "circuit_breaker_state",
            "Breaker state: 0 closed, 1 open, 2 half-open (forced states too)."
        );
        metrics::describe_counter!("circuit_breaker_calls_total", "Calls through the breaker, per outcome.");
        metrics::describe_counter!(
            "circuit_breaker_transitions_total",
            "Breaker state changes, per from and to state."
        );
        let state = state_gauge.then(|| gauge!("circuit_breaker_state", "breaker" => label.clone()));
        let calls =
            OUTCOMES.map(|o| counter!("circuit_breaker_calls_total", "breaker" => label.clone(), "outcome" => o));
        if let Some(g) = &state {
            g.set(0.0);
        }
        Self { label, state, calls }
    }

    pub(crate) fn calls(&self, deltas: [u64; 5]) {
        for (counter, delta) in self.calls.iter().zip(deltas) {
            if delta > 0 {
                counter.increment(delta);
            }
        }
    }

    pub(crate) fn transition(&self, from: Status, to: Status) {
        if let Some(g) = &self.state {
            g.set(f64::from(to.code()));
        }
        if from.label() != to.label() {
            counter!("circuit_breaker_transitions_total", "breaker" => self.label.clone(),
                "from" => from.label(), "to" => to.label())
            .increment(1);
        }
    }
}
