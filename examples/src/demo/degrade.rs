//! The demo's degradation that happens by itself: triggers from real signals flip its degrade flags, wired
//! from chaos-tower's `degrade` pieces in a few lines each.
//!
//! | signal | trigger | flag → value | back when |
//! |---|---|---|---|
//! | process CPU over the machine's cores (the sensor) | `cpu-high`: above 0.75 | `api.shed_percent` → 50 | under 0.6 |
//! | the same | `cpu-critical`: above 0.9 | `api.shed_percent` → 90 | under 0.75 |
//! | RSS over the memory budget (the sensor) | `memory-high`: above 0.6 | `reports.delivery` → `streaming` | under 0.45 |
//! | the provider's breaker not closed | `provider-isolated` | `quotes.source` → `stale_ok` | closed |
//! | the order store's p95 over 1 s of calls | `store-slow`: above 150 ms | `orders.ingest` → `capture_only` | under 80 ms |
//! | the order store's error rate over 1 s | `store-failing`: above 20% | `orders.ingest` → `capture_only` | under 5% |
//!
//! Each holds its state at least [`MIN_HOLD`] and is polled every [`EVERY`]. Two triggers on one flag: the
//! one that degrades most decides (shedding 90% over 50%). Dropping the [`Degradation`] stops them all and
//! hands their flags back.

use std::sync::Arc;
use std::time::Duration;

use brownout_chaos::sense::Sensor;
use brownout_degrade::Flags;
use brownout_degrade::breaker::CircuitBreaker;
use brownout_tower::degrade::{LatencyWindow, Signal, TriggerStatus, TriggerTask, signals};

/// How long a trigger holds a state before it may flip back.
pub const MIN_HOLD: Duration = Duration::from_millis(500);
/// How often each trigger reads its signal (and the sensor samples the process).
pub const EVERY: Duration = Duration::from_millis(100);
/// The window of the order store's calls the store triggers judge.
pub const STORE_WINDOW: Duration = Duration::from_secs(1);

/// What the triggers read.
#[derive(Debug, Clone)]
pub struct Signals {
    /// The provider's breaker.
    pub breaker: Arc<CircuitBreaker>,
    /// The order store's calls (from [`crate::orders::OrdersOptions::on_store_call`]), when the demo takes
    /// orders.
    pub store: Option<LatencyWindow>,
    /// The cores the process may use (default: the machine's).
    pub cores: f64,
    /// The memory budget RSS is judged against, in bytes (default: the limit the sensor reads: cgroup v2
    /// `memory.max`, else physical memory).
    pub memory_budget: Option<u64>,
}

impl Signals {
    /// The breaker and the store's window, on the machine's cores and the sensed memory limit.
    pub fn new(breaker: Arc<CircuitBreaker>, store: Option<LatencyWindow>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        Self { breaker, store, cores, memory_budget: None }
    }
}

/// The running triggers and the sensor behind them; dropping it stops them.
#[derive(Debug)]
pub struct Degradation {
    tasks: Vec<TriggerTask>,
    _sensor: Sensor,
}

impl Degradation {
    /// Starts the sensor and the triggers of the table above on `flags` (inside a tokio runtime). Errors: the
    /// sensor could not start, or a flag is missing or of another type (the trigger names it).
    pub fn wire(flags: &Flags, signals: Signals) -> Result<Degradation, String> {
        let sensor = Sensor::start(EVERY).map_err(|e| format!("the process sensor: {e}"))?;
        let cpu = || signals::cpu_share(sensor.handle(), signals.cores);
        let mut tasks = vec![
            trigger(flags, "cpu-high", "api.shed_percent", "50", (0.75, 0.6), cpu())?,
            trigger(flags, "cpu-critical", "api.shed_percent", "90", (0.9, 0.75), cpu())?,
            trigger(flags, "provider-isolated", "quotes.source", "stale_ok", (0.5, 0.5), {
                signals::breaker_open(signals.breaker.clone())
            })?,
        ];
        let memory = match signals.memory_budget {
            Some(budget) => {
                let sense = sensor.handle();
                trigger(flags, "memory-high", "reports.delivery", "streaming", (0.6, 0.45), move || {
                    Some(sense.latest().rss_bytes as f64 / budget.max(1) as f64)
                })?
            }
            None => {
                let share = signals::memory_share(sensor.handle());
                trigger(flags, "memory-high", "reports.delivery", "streaming", (0.6, 0.45), share)?
            }
        };
        tasks.push(memory);
        if let Some(store) = &signals.store {
            let p95 = store.p95_seconds_signal();
            tasks.push(trigger(flags, "store-slow", "orders.ingest", "capture_only", (0.15, 0.08), p95)?);
            let errors = store.error_rate_signal();
            tasks.push(trigger(flags, "store-failing", "orders.ingest", "capture_only", (0.2, 0.05), errors)?);
        }
        tracing::info!(triggers = tasks.len(), "degrade triggers wired");
        Ok(Degradation { tasks, _sensor: sensor })
    }

    /// Each trigger's state, for reports.
    pub fn statuses(&self) -> Vec<TriggerStatus> {
        self.tasks.iter().map(TriggerTask::status).collect()
    }
}

/// One trigger: on above `on`, off below `off`, held [`MIN_HOLD`], read every [`EVERY`].
fn trigger(
    flags: &Flags,
    name: &str,
    flag: &str,
    value: &str,
    (on, off): (f64, f64),
    signal: impl Signal,
) -> Result<TriggerTask, String> {
    TriggerTask::builder(name, flag)
        .on_above(on)
        .off_below(off)
        .min_hold(MIN_HOLD)
        .value(value)
        .every(EVERY)
        .spawn(flags, signal)
        .map_err(|e| e.to_string())
}
