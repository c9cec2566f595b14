//! Budgets: monthly CPU-hour and memory GB-hour budgets over labelled jobs, with alerts, guardrails, the
//! heavy-tier gate, the month-end forecast, the pre-run estimate, and Prometheus rules.
//!
//! - [`BudgetSet::load_dir`] reads `configs/budgets/*.yaml` (schema in [`spec`](self::Budget)), reporting
//!   every error with its file, field and reason.
//! - [`BudgetMonitor`] charges [`JobRecord`](crate::JobRecord)s to the budgets whose `match` selects their
//!   labels, keeps month-to-date usage in an atomic checkpoint, fires [`AlertEvent`]s with hysteresis to
//!   [`AlertSink`]s ([`LogSink`], [`MetricsSink`], a closure), and applies guardrails at critical
//!   ([`ConcurrencyLimit`], [`AdhocFreeze`]).
//! - [`TierGate`] admits heavy jobs only inside their windows, or by an authorised [`Override`]; every denial
//!   and override goes to the [`AuditLog`].
//! - [`Forecast`] extrapolates the month; [`Estimate`] predicts a job from the history of similar jobs.
//! - [`rules_yaml`] and [`promtool_test_yaml`] generate Prometheus recording and alerting rules.

mod alert;
mod audit;
pub mod checkpoint;
mod civil;
mod error;
mod estimate;
mod forecast;
mod guardrail;
mod monitor;
mod rules;
mod spec;
mod tier;
mod usage;
mod window;

pub use alert::{AlertEvent, AlertLevel, AlertSink, LogSink, MetricsSink};
pub use audit::{AUDIT_HEADER, AuditEntry, AuditEvent, AuditLog, AuditRead, read_audit};
pub use checkpoint::{Checkpoint, CheckpointError};
pub use civil::{Month, rfc3339, unix_seconds};
pub use error::{BudgetError, BudgetErrors};
pub use estimate::{Estimate, EstimateShare, MIN_SIMILAR, estimate};
pub use forecast::Forecast;
pub use guardrail::{AdhocFreeze, ConcurrencyLimit, Frozen, Permit};
pub use monitor::BudgetMonitor;
pub use rules::{promtool_test_yaml, rules_yaml};
pub use spec::{Budget, BudgetSet, DEFAULT_HYSTERESIS, GuardrailSpec, Selector, Thresholds};
pub use tier::{Admission, Denied, Override, TierGate, heavy_allowed};
pub use usage::{Charge, Ledger, Usage, Utilization};
pub use window::HeavyWindow;
