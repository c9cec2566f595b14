//! The tier gate: heavy jobs run only inside their budgets' windows, unless forced by an authorised override.
//! Every denial and every override is appended to the audit log.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use subtle::ConstantTimeEq;

use super::audit::{AuditEntry, AuditEvent, AuditLog};
use super::civil::unix_seconds;
use super::spec::BudgetSet;
use super::window::{HeavyWindow, minute_of_day};
use crate::{Labels, Tier};

/// Whether a heavy job may run at minute `minute` of the UTC day under these windows: inside any of them.
/// An empty list allows nothing.
pub fn heavy_allowed(windows: &[HeavyWindow], minute: u16) -> bool {
    windows.iter().any(|w| w.contains_minute(minute))
}

/// A request to force a heavy job outside its windows.
#[derive(Clone)]
#[non_exhaustive]
pub struct Override {
    /// Who asks (goes to the audit log).
    pub actor: String,
    /// The secret that authorises it (never logged).
    pub token: String,
    /// Why (goes to the audit log).
    pub reason: String,
}

impl Override {
    /// An override by `actor` with `token`, for `reason`.
    pub fn new(actor: impl Into<String>, token: impl Into<String>, reason: impl Into<String>) -> Self {
        Override { actor: actor.into(), token: token.into(), reason: reason.into() }
    }
}

impl fmt::Debug for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Override").field("actor", &self.actor).field("reason", &self.reason).finish_non_exhaustive()
    }
}

/// Why a job was let through.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Its tier is not gated (interactive, batch, nightly), or no budget covering it gates heavy jobs.
    NotGated,
    /// A heavy job inside every covering budget's windows.
    InWindow,
    /// A heavy job outside its windows, forced by an authorised override (audited).
    Overridden {
        /// Who forced it.
        actor: String,
    },
}

/// A heavy job refused: outside its windows without a valid override, or with an override that could not be
/// audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    message: String,
}

impl Denied {
    /// The explanation shown to the user.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Denied {}

/// The gate. Cheap to share behind an `Arc`; build it from the budgets, the audit log and the override tokens.
#[derive(Debug)]
pub struct TierGate {
    budgets: Arc<BudgetSet>,
    audit: AuditLog,
    tokens: Vec<Vec<u8>>,
}

impl TierGate {
    /// A gate over these budgets, auditing to `audit`, with no authorised token yet.
    pub fn new(budgets: Arc<BudgetSet>, audit: AuditLog) -> Self {
        TierGate { budgets, audit, tokens: Vec::new() }
    }

    /// Authorises overrides carrying `token` (from a secret store; never from a budget file). Empty tokens are
    /// ignored.
    pub fn authorise(mut self, token: impl AsRef<[u8]>) -> Self {
        if !token.as_ref().is_empty() {
            self.tokens.push(token.as_ref().to_vec());
        }
        self
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    fn authorised(&self, token: &str) -> bool {
        // Compare with every token without stopping early; each comparison is constant-time in the content.
        let mut ok = subtle::Choice::from(0);
        for t in &self.tokens {
            ok |= t.as_slice().ct_eq(token.as_bytes());
        }
        bool::from(ok)
    }

    /// Decides whether job `job` with `labels` may start at `now`.
    ///
    /// Only heavy jobs are gated: each budget covering the job that has `heavy_windows` must have `now` inside
    /// one of them. Outside, an override whose token is authorised lets the job through; the override is
    /// audited first and, if the audit cannot be written, refused. Every denial is audited (a failed audit
    /// write is logged and the job is still denied).
    pub fn admit(
        &self,
        job: &str,
        labels: &Labels,
        now: SystemTime,
        over: Option<&Override>,
    ) -> Result<Admission, Denied> {
        if labels.tier != Tier::Heavy {
            return Ok(Admission::NotGated);
        }
        let unix = unix_seconds(now).floor() as i64;
        let minute = minute_of_day(unix);
        let gating: Vec<_> =
            self.budgets.covering(labels).filter_map(|b| b.heavy_windows.as_ref().map(|w| (b, w))).collect();
        if gating.is_empty() {
            return Ok(Admission::NotGated);
        }
        let closed: Vec<_> = gating.iter().filter(|(_, w)| !heavy_allowed(w, minute)).collect();
        if closed.is_empty() {
            return Ok(Admission::InWindow);
        }
        let budget = closed.iter().map(|(b, _)| b.name.as_str()).collect::<Vec<_>>().join(",");
        let why = closed
            .iter()
            .map(|(b, w)| {
                if w.is_empty() {
                    format!("budget `{}` allows heavy jobs only by override", b.name)
                } else {
                    let ws = w.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                    let wait = w.iter().map(|w| w.minutes_until_open(minute)).min().unwrap_or(0);
                    format!(
                        "budget `{}` runs heavy jobs only in {ws} UTC (next window opens in {}h{:02}m)",
                        b.name,
                        wait / 60,
                        wait % 60
                    )
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let hhmm = format!("{:02}:{:02} UTC", minute / 60, minute % 60);
        let entry = |event, actor: &str, reason: String| AuditEntry {
            unix,
            event,
            budget: budget.clone(),
            job: job.to_owned(),
            tier: labels.tier.as_str().to_owned(),
            actor: actor.to_owned(),
            reason,
        };
        match over {
            Some(o) if self.authorised(&o.token) => {
                let reason = if o.reason.trim().is_empty() { "(no reason given)".to_owned() } else { o.reason.clone() };
                self.audit.append(&entry(AuditEvent::Override, &o.actor, reason)).map_err(|e| Denied {
                    message: format!(
                        "heavy job `{job}` refused at {hhmm}: the override by `{}` could not be audited ({}: {e})",
                        o.actor,
                        self.audit.path().display()
                    ),
                })?;
                tracing::warn!(job, budget, actor = o.actor.as_str(), "heavy job forced outside its windows");
                Ok(Admission::Overridden { actor: o.actor.clone() })
            }
            other => {
                let (actor, reason, hint) = match other {
                    Some(o) => (o.actor.as_str(), format!("override token not authorised; {why}"), ""),
                    None => ("", why.clone(), "; an authorised override can force it"),
                };
                let message = format!("heavy job `{job}` refused at {hhmm}: {reason}{hint}");
                if let Err(e) = self.audit.append(&entry(AuditEvent::Denied, actor, reason)) {
                    tracing::error!(job, path = %self.audit.path().display(), "cannot audit a denial: {e}");
                }
                tracing::info!(job, budget, "heavy job denied outside its windows");
                Err(Denied { message })
            }
        }
    }
}
