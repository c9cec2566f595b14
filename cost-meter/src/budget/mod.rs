//! Budgets: monthly CPU-hour and memory GB-hour budgets over labelled jobs, with alerts, guardrails, the
//! heavy-tier gate, the month-end forecast, the pre-run estimate, and Prometheus rules.
//!
//! - [`BudgetSet::load_dir`] reads `configs/budgets/*.yaml` (schema in [`spec`](self::Budget)), reporting
//!   every error with its file, field and reason.
//! - [`BudgetMonitor`] charges [`JobRecord`](crate::JobRecord)s to the budgets whose `match` selects their
//!   labels (one by one, or in per-thread batches through a [`BudgetFeed`] for jobs per request), keeps month-to-date usage in an atomic checkpoint, fires [`AlertEvent`]s with hysteresis to
//!   [`AlertSink`]s ([`LogSink`], [`MetricsSink`], a closure), and applies guardrails at critical
//!   ([`ConcurrencyLimit`](crate::guardrail::ConcurrencyLimit), [`AdhocFreeze`](crate::guardrail::AdhocFreeze)).
//! - [`TierGate`] admits heavy jobs only inside their windows, or by an authorised [`Override`]; every denial
//!   and override goes to the [`AuditLog`].
//! - [`Forecast`] extrapolates the month; [`Estimate`] predicts a job from the history of similar jobs.
//! - [`rules_yaml`] and [`promtool_test_yaml`] generate Prometheus recording and alerting rules.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::{Duration, UNIX_EPOCH};
//! use brownout_cost::budget::{AlertEvent, AlertLevel, Budget, BudgetMonitor, BudgetSet, LogSink};
//! use brownout_cost::guardrail::ConcurrencyLimit;
//! use brownout_cost::{CpuMode, JobRecord, Labels};
//!
//! let yaml = "name: research-cluster\nowner: research@example.com\nmonthly_cpu_hours: 1800\n\
//!             match: { team: research }\nguardrails: { max_concurrency_at_critical: 2, freeze_adhoc_at_critical: true }\n";
//! let budgets = Arc::new(BudgetSet::new(vec![Budget::parse(yaml, None)?])?);
//! let now = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
//! let limit = ConcurrencyLimit::new(16); // a clone goes to the Tower layer and the job runner
//! let alerts = Arc::new(Mutex::new(Vec::new()));
//! let sink = { let alerts = alerts.clone(); move |e: &AlertEvent| alerts.lock().unwrap().push(e.to) };
//! let mut monitor = BudgetMonitor::new(budgets, now).with_limit(limit.clone()).with_sink(LogSink).with_sink(sink);
//!
//! // 1700 CPU-hours: 94% of the budget.
//! let backtest = JobRecord::new("bt-1", Labels::new("research", "backtester"), 1_795_000_000.0 - 3600.0, 3600.0)
//!     .cpu(1700.0 * 3600.0, CpuMode::ThreadCpu);
//! monitor.record(&backtest, now)?;
//! assert_eq!(*alerts.lock().unwrap(), [AlertLevel::Critical]);
//! assert_eq!(limit.max(), 2);
//! assert!(monitor.check_adhoc().unwrap_err().to_string().contains("research-cluster"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod alert;
mod audit;
pub mod checkpoint;
mod civil;
mod error;
mod estimate;
mod feed;
mod forecast;
mod monitor;
mod rules;
mod spec;
mod tier;
mod usage;
mod window;

pub use alert::{AlertEvent, AlertLevel, AlertSink, LogSink, MetricsSink};
pub use audit::{AUDIT_HEADER, AuditEntry, AuditEvent, AuditLog, AuditRead, read_audit};
pub use checkpoint::{Checkpoint, CheckpointError};
pub use civil::Month;
pub use error::{BudgetError, BudgetErrors};
pub use estimate::{Estimate, EstimateShare, MIN_SIMILAR, estimate};
pub use feed::BudgetFeed;
pub use forecast::Forecast;
pub use monitor::BudgetMonitor;
pub use rules::{promtool_test_yaml, rules_yaml};
pub use spec::{Budget, BudgetSet, DEFAULT_HYSTERESIS, GuardrailSpec, Selector, Thresholds};
pub use tier::{Admission, Denied, Override, TierGate, heavy_allowed};
pub use usage::{Charge, Ledger, Usage, Utilization};
pub use window::HeavyWindow;
