//! A serializable picture of a breaker, for admin endpoints and logs.

use serde::Serialize;

use super::state::{ForcedState, State};

/// What [`CircuitBreaker::snapshot`](super::CircuitBreaker::snapshot) reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BreakerSnapshot {
    /// The breaker's name.
    pub name: String,
    /// The phase of the state machine.
    pub state: State,
    /// The forced state in force.
    pub forced: ForcedState,
    /// Calls in the window (not counting ignored ones). Zero outside the closed state: the window restarts at
    /// every transition.
    pub calls: u64,
    /// Failed calls in the window.
    pub failures: u64,
    /// Slow calls in the window (failed or not).
    pub slow_calls: u64,
    /// `failures / calls`, 0 when the window is empty.
    pub failure_rate: f64,
    /// `slow_calls / calls`, 0 when the window is empty.
    pub slow_call_rate: f64,
    /// While open (not forced open): seconds until the next call is let through as a probe (0 when due).
    pub time_until_half_open_seconds: Option<f64>,
}
