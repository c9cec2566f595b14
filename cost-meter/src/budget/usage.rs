//! What budgets see of metered jobs: CPU-hours and memory GB-hours, month to date.

use std::collections::BTreeMap;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

use super::civil::Month;
use super::spec::{Budget, BudgetSet};
use crate::{JobRecord, Labels};

/// An amount of metered resources.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Usage {
    /// CPU time, in hours.
    pub cpu_hours: f64,
    /// Memory integrated over time, in GB-hours (1 GB = 10⁹ bytes).
    pub memory_gb_hours: f64,
}

impl Usage {
    /// `cpu_hours` of CPU and `memory_gb_hours` of memory.
    pub fn new(cpu_hours: f64, memory_gb_hours: f64) -> Self {
        Self { cpu_hours, memory_gb_hours }
    }

    /// The usage of one finished job. Negative or non-finite figures (a damaged record) count as zero.
    pub fn of(record: &JobRecord) -> Usage {
        let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
        Usage { cpu_hours: clean(record.cpu_hours()), memory_gb_hours: clean(record.memory_gb_hours) }
    }

    /// This usage scaled by `k`.
    pub fn scaled(self, k: f64) -> Usage {
        Usage { cpu_hours: self.cpu_hours * k, memory_gb_hours: self.memory_gb_hours * k }
    }
}

impl Add for Usage {
    type Output = Usage;

    fn add(self, o: Usage) -> Usage {
        Usage { cpu_hours: self.cpu_hours + o.cpu_hours, memory_gb_hours: self.memory_gb_hours + o.memory_gb_hours }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        *self = *self + o;
    }
}

/// A budget's utilisation: usage over the monthly amount, per budgeted resource (`None` when the resource has
/// no budget). 1.0 is the whole budget.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Utilization {
    /// CPU-hours used over monthly CPU-hours.
    pub cpu: Option<f64>,
    /// GB-hours used over monthly GB-hours.
    pub memory: Option<f64>,
}

impl Utilization {
    /// The utilisation of `budget` at `usage`.
    pub fn of(budget: &Budget, usage: Usage) -> Utilization {
        Utilization {
            cpu: budget.monthly_cpu_hours.map(|m| usage.cpu_hours / m),
            memory: budget.monthly_memory_gb_hours.map(|m| usage.memory_gb_hours / m),
        }
    }

    /// The higher of the two: what alerts judge.
    pub fn max(self) -> f64 {
        self.cpu.unwrap_or(0.0).max(self.memory.unwrap_or(0.0))
    }

    /// `(resource, ratio)` for each budgeted resource, with the names metrics use (`cpu`, `memory`).
    pub fn resources(self) -> impl Iterator<Item = (&'static str, f64)> {
        [("cpu", self.cpu), ("memory", self.memory)].into_iter().filter_map(|(n, r)| r.map(|r| (n, r)))
    }
}

/// What [`Ledger::charge`] did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Charge {
    /// Added to these budgets (possibly none) of the current month.
    Charged(Vec<String>),
    /// The record finished in a later month: the ledger moved to it (usage restarted at zero) and charged it.
    NewMonth(Vec<String>),
    /// The record finished in a month before the ledger's: not charged (that month is closed).
    Stale,
}

/// Month-to-date usage per budget. A record counts in the month it finished in (start + wall time, UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Ledger {
    month: Month,
    usage: BTreeMap<String, Usage>,
}

impl Ledger {
    /// An empty ledger for `month`.
    pub fn new(month: Month) -> Self {
        Ledger { month, usage: BTreeMap::new() }
    }

    /// A ledger holding these usages (from a checkpoint).
    pub fn with_usage(month: Month, usage: BTreeMap<String, Usage>) -> Self {
        Ledger { month, usage }
    }

    /// The month it counts.
    pub fn month(&self) -> Month {
        self.month
    }

    /// A budget's usage so far this month.
    pub fn usage(&self, budget: &str) -> Usage {
        self.usage.get(budget).copied().unwrap_or_default()
    }

    /// Every budget's usage (budgets without usage are absent).
    pub fn all(&self) -> &BTreeMap<String, Usage> {
        &self.usage
    }

    /// Moves to a later month, with usage back at zero. Earlier months are ignored.
    pub fn roll_to(&mut self, month: Month) -> bool {
        if month > self.month {
            self.month = month;
            self.usage.clear();
            true
        } else {
            false
        }
    }

    /// Charges a finished job to every budget that covers it.
    pub fn charge(&mut self, budgets: &BudgetSet, record: &JobRecord) -> Charge {
        match self.charge_covering(budgets, record) {
            None => Charge::Stale,
            Some(rolled) => {
                let names = budgets.covering(&record.labels).map(|b| b.name.clone()).collect();
                if rolled { Charge::NewMonth(names) } else { Charge::Charged(names) }
            }
        }
    }

    /// [`charge`](Self::charge) without naming the budgets: `None` for a stale record, else whether the
    /// ledger moved to a new month. Allocates nothing once each budget has been charged once.
    pub(crate) fn charge_covering(&mut self, budgets: &BudgetSet, record: &JobRecord) -> Option<bool> {
        let month = Month::of_unix(record.started_at_unix + record.wall_seconds.max(0.0));
        self.charge_usage(budgets, &record.labels, Usage::of(record), month)
    }

    /// Charges `usage` of jobs with `labels` that finished in `month` (a batch of them, or one) to every
    /// budget that covers them: `None` when the month is closed, else whether the ledger moved to a new month.
    pub(crate) fn charge_usage(
        &mut self,
        budgets: &BudgetSet,
        labels: &Labels,
        usage: Usage,
        month: Month,
    ) -> Option<bool> {
        if month < self.month {
            return None;
        }
        let rolled = self.roll_to(month);
        for budget in budgets.covering(labels) {
            match self.usage.get_mut(&budget.name) {
                Some(total) => *total += usage,
                None => {
                    self.usage.insert(budget.name.clone(), usage);
                }
            }
        }
        Some(rolled)
    }
}
