//! Ready-made [`Signal`]s: the process's CPU and memory against their limits, a circuit breaker, a budget.
//! (The error rate and p95 of a dependency come from a [`LatencyWindow`](super::LatencyWindow).)

use std::sync::Arc;
#[cfg(feature = "budgets")]
use std::sync::{Mutex, PoisonError};

use brownout_chaos::sense::{Sample, SenseHandle};
#[cfg(feature = "budgets")]
use brownout_cost::budget::{AlertLevel, BudgetMonitor};
use brownout_degrade::CircuitBreaker;
use brownout_degrade::breaker::{ForcedState, State, Status};

use super::Signal;

/// The process's CPU use as a share of `cores` (0.5 = half the CPU it may use), from a sensor's latest sample:
/// `sample.cpu_cores / cores`.
///
/// A [`Sample`] carries no CPU limit (the kernel's quota is not read), so the caller passes it: the
/// container's CPU limit, or `std::thread::available_parallelism()` on a machine of its own. A first sample
/// (no interval yet, so no rate) and a `cores` that is not positive read as `None`: the trigger holds. A stopped
/// sensor's last sample keeps being read.
pub fn cpu_share(sense: SenseHandle, cores: f64) -> impl Signal {
    move || cpu_share_of(&sense.latest(), cores)
}

/// [`cpu_share`] of one sample.
pub fn cpu_share_of(sample: &Sample, cores: f64) -> Option<f64> {
    (cores > 0.0 && !sample.interval.is_zero()).then(|| sample.cpu_cores / cores)
}

/// The process's resident memory as a share of its memory limit (cgroup v2 `memory.max`, else physical
/// memory), from a sensor's latest sample: `rss_bytes / memory_limit_bytes`. `None` (the trigger holds) when
/// the limit is unknown.
pub fn memory_share(sense: SenseHandle) -> impl Signal {
    move || memory_share_of(&sense.latest())
}

/// [`memory_share`] of one sample.
pub fn memory_share_of(sample: &Sample) -> Option<f64> {
    (sample.memory_limit_bytes > 0).then(|| sample.rss_bytes as f64 / sample.memory_limit_bytes as f64)
}

/// 1.0 while the breaker is not closed, 0.0 while it is closed. Not closed: open, half-open, or forced open
/// ([`ForcedState::ForcedOpen`]); forced closed and disabled read closed; metrics-only reads its machine's
/// phase. A trigger on it with `on_above(0.5)` degrades while the dependency is cut off.
///
/// An open breaker moves to half-open only on the next call after its open duration, so with no traffic it
/// reads open: that is the breaker's own view of the dependency.
pub fn breaker_open(breaker: Arc<CircuitBreaker>) -> impl Signal {
    move || Some(if is_open(breaker.status()) { 1.0 } else { 0.0 })
}

fn is_open(status: Status) -> bool {
    match status.forced {
        ForcedState::ForcedOpen => true,
        ForcedState::ForcedClosed | ForcedState::Disabled => false,
        // Not forced (`None`, `MetricsOnly`): the state machine's own state.
        _ => status.state != State::Closed,
    }
}

/// 1.0 while any budget of the monitor is at [`AlertLevel::Critical`], else 0.0. The monitor's lock is held only
/// to read the levels. (Feature `budgets`.)
#[cfg(feature = "budgets")]
pub fn budget_critical(monitor: Arc<Mutex<BudgetMonitor>>) -> impl Signal {
    move || {
        let monitor = monitor.lock().unwrap_or_else(PoisonError::into_inner);
        let critical = monitor.budgets().iter().any(|b| monitor.level(&b.name) == AlertLevel::Critical);
        Some(if critical { 1.0 } else { 0.0 })
    }
}
