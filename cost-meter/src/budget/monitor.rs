//! The budget monitor: charges finished jobs to their budgets, judges alert levels, applies guardrails,
//! tells the sinks, and keeps the month-to-date checkpoint.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::alert::{AlertEvent, AlertLevel, AlertSink};
use super::checkpoint::{self, BudgetState, Checkpoint, CheckpointError};
use super::civil::Month;
use super::feed::Batches;
use super::forecast::Forecast;
use super::spec::{Budget, BudgetSet};
use super::usage::{Ledger, Usage, Utilization};
use crate::guardrail::{AdhocFreeze, ConcurrencyLimit, Frozen};
use crate::{JobRecord, Labels};

/// Charges jobs to budgets and acts on their levels.
///
/// - [`record`](Self::record) charges a finished job to every budget covering it (in the month it finished),
///   re-judges those budgets, fires one [`AlertEvent`] per crossing to every sink, and saves the checkpoint.
/// - At critical, a budget's guardrails apply: it caps the shared [`ConcurrencyLimit`] and freezes new ad-hoc
///   runs ([`AdhocFreeze`]); both lift when it leaves critical (hysteresis included) or the month ends.
/// - With a checkpoint, [`open`](Self::open) restores usage and levels, so a restart loses nothing and fires
///   nothing again; guardrails of critical budgets are re-applied. [`save_every`](Self::save_every) bounds
///   how often a record saves, for monitors charged per request.
pub struct BudgetMonitor {
    budgets: Arc<BudgetSet>,
    ledger: Ledger,
    levels: BTreeMap<String, AlertLevel>,
    sinks: Vec<Box<dyn AlertSink>>,
    limit: ConcurrencyLimit,
    freeze: AdhocFreeze,
    checkpoint: Option<PathBuf>,
    /// Save at most this often from `record` (crossings and new months save at once); zero: every record.
    save_every: Duration,
    last_save: Option<SystemTime>,
    /// A record charged since the last save from `record` or `flush` was not saved (`save_every` held it back).
    unsaved: bool,
    /// The per-thread batches of its [`BudgetFeed`](super::BudgetFeed)s, charged at `flush` and `tick`.
    batches: Arc<Batches>,
}

impl fmt::Debug for BudgetMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetMonitor")
            .field("month", &self.ledger.month())
            .field("levels", &self.levels)
            .field("sinks", &self.sinks.len())
            .field("limit", &self.limit)
            .field("checkpoint", &self.checkpoint)
            .finish()
    }
}

impl BudgetMonitor {
    /// A monitor without a checkpoint, counting the month of `now`, with an unlimited concurrency limit.
    pub fn new(budgets: Arc<BudgetSet>, now: SystemTime) -> Self {
        BudgetMonitor {
            budgets,
            ledger: Ledger::new(Month::of(now)),
            levels: BTreeMap::new(),
            sinks: Vec::new(),
            limit: ConcurrencyLimit::unlimited(),
            freeze: AdhocFreeze::new(),
            checkpoint: None,
            save_every: Duration::ZERO,
            last_save: None,
            unsaved: false,
            batches: Arc::default(),
        }
    }

    /// The batches its feeds add to.
    pub(crate) fn batches(&self) -> Arc<Batches> {
        Arc::clone(&self.batches)
    }

    /// A monitor that keeps its state in `checkpoint`, restoring it if it exists. A corrupt checkpoint is moved
    /// aside and returned as an error: the caller decides (calling `open` again starts the month empty, which
    /// is then an explicit choice, not a silent one).
    pub fn open(budgets: Arc<BudgetSet>, checkpoint: &Path, now: SystemTime) -> Result<Self, CheckpointError> {
        let mut m = Self::new(budgets, now);
        m.checkpoint = Some(checkpoint.to_path_buf());
        if let Some(c) = checkpoint::load(checkpoint, now)? {
            let usage = c.budgets.iter().map(|(k, s)| (k.clone(), s.usage)).collect();
            m.ledger = Ledger::with_usage(c.month, usage);
            m.levels = c.budgets.iter().map(|(k, s)| (k.clone(), s.level)).collect();
            // Budgets renamed or removed since: their state is dropped at the next save.
            m.levels.retain(|k, _| m.budgets.get(k).is_some());
            m.reapply_critical();
        }
        Ok(m)
    }

    /// Uses this concurrency limit (share it with the Tower layer and the job runner) instead of an unlimited
    /// one. The caps of budgets already critical (restored from the checkpoint) are applied to it.
    pub fn with_limit(mut self, limit: ConcurrencyLimit) -> Self {
        self.limit = limit;
        self.reapply_critical();
        self
    }

    fn reapply_critical(&self) {
        for (name, level) in &self.levels {
            if let (AlertLevel::Critical, Some(b)) = (level, self.budgets.get(name)) {
                self.apply_guardrails(b, AlertLevel::Critical, Utilization::of(b, self.ledger.usage(name)));
            }
        }
    }

    /// Saves the checkpoint from [`record`](Self::record) at most once per `interval` instead of after every
    /// record: for a monitor charged per request, where an fsync per record would cost more than the request.
    /// A record that crosses a threshold or starts a new month still saves at once; a crash loses at most
    /// `interval` of usage, if [`flush`](Self::flush) runs on a timer of the same interval (a record that was
    /// held back is otherwise saved only by the next record). Call [`save`](Self::save) at shutdown.
    pub fn save_every(mut self, interval: Duration) -> Self {
        self.save_every = interval;
        self
    }

    /// Adds a sink.
    pub fn with_sink(mut self, sink: impl AlertSink + 'static) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// The budgets.
    pub fn budgets(&self) -> &BudgetSet {
        &self.budgets
    }

    /// The month counted.
    pub fn month(&self) -> Month {
        self.ledger.month()
    }

    /// A budget's usage so far this month.
    pub fn usage(&self, budget: &str) -> Usage {
        self.ledger.usage(budget)
    }

    /// A budget's utilisation so far this month (`None` for an unknown budget).
    pub fn utilization(&self, budget: &str) -> Option<Utilization> {
        self.budgets.get(budget).map(|b| Utilization::of(b, self.ledger.usage(budget)))
    }

    /// A budget's alert level.
    pub fn level(&self, budget: &str) -> AlertLevel {
        self.levels.get(budget).copied().unwrap_or_default()
    }

    /// The month-end forecast of a budget at `now`.
    pub fn forecast(&self, budget: &str, now: SystemTime) -> Option<Forecast> {
        self.budgets.get(budget).map(|b| Forecast::new(b, self.ledger.month(), self.ledger.usage(budget), now))
    }

    /// The shared concurrency limit that budgets lower at critical.
    pub fn concurrency_limit(&self) -> ConcurrencyLimit {
        self.limit.clone()
    }

    /// The shared ad-hoc freeze switch.
    pub fn adhoc_freeze(&self) -> AdhocFreeze {
        self.freeze.clone()
    }

    /// `Ok` if a new ad-hoc run may start, or the error to show its user.
    pub fn check_adhoc(&self) -> Result<(), Frozen> {
        self.freeze.check()
    }

    /// Charges a finished job, judges the budgets it touched, and saves the checkpoint. Returns the crossings
    /// fired. A record from a month already closed is ignored. An error means the checkpoint could not be
    /// written: the charge is kept in memory and the next successful save persists it.
    pub fn record(&mut self, record: &JobRecord, now: SystemTime) -> Result<Vec<AlertEvent>, CheckpointError> {
        let month = Month::of_unix(record.started_at_unix + record.wall_seconds.max(0.0));
        let Some((events, new_month)) = self.charge(&record.labels, Usage::of(record), month) else {
            return Ok(Vec::new());
        };
        self.save_after_charge(now, new_month, !events.is_empty())?;
        Ok(events)
    }

    /// Charges `usage` of jobs with `labels` finished in `month` and judges the budgets it touched: the
    /// crossings and whether the ledger moved to a new month (`None`: a closed month, nothing charged).
    fn charge(&mut self, labels: &Labels, usage: Usage, month: Month) -> Option<(Vec<AlertEvent>, bool)> {
        let budgets = Arc::clone(&self.budgets);
        match self.ledger.charge_usage(&budgets, labels, usage, month)? {
            false => Some((self.judge(budgets.covering(labels)), false)),
            true => Some((self.judge(budgets.iter()), true)),
        }
    }

    /// Saves after a charge when due, at a new month or a crossing; otherwise leaves it pending. Whether it
    /// wrote.
    fn save_after_charge(&mut self, now: SystemTime, new_month: bool, crossed: bool) -> Result<bool, CheckpointError> {
        let due = match self.last_save {
            Some(last) => now.duration_since(last).map_or(true, |since| since >= self.save_every),
            None => true,
        };
        // Pending until a save succeeds (here, or from `flush`).
        self.unsaved = true;
        if due || new_month || crossed {
            self.save(now)?;
            self.last_save = Some(now);
            self.unsaved = false;
            return Ok(true);
        }
        Ok(false)
    }

    /// Charges what its [`BudgetFeed`](super::BudgetFeed)s batched, judges the budgets it touched and saves
    /// as a record would: the crossings, and whether it wrote the checkpoint.
    fn drain_feeds(&mut self, now: SystemTime) -> Result<(Vec<AlertEvent>, bool), CheckpointError> {
        let (mut events, mut new_month, mut charged) = (Vec::new(), false, false);
        for p in self.batches.drain() {
            if let Some((crossed, rolled)) = self.charge(&p.labels, p.usage, p.month) {
                events.extend(crossed);
                new_month |= rolled;
                charged = true;
            }
        }
        let wrote = charged && self.save_after_charge(now, new_month, !events.is_empty())?;
        Ok((events, wrote))
    }

    /// Charges what its [`BudgetFeed`](super::BudgetFeed)s batched (judging the budgets, firing alerts), then
    /// saves the checkpoint if a charge since the last save was held back by [`save_every`](Self::save_every);
    /// returns whether it wrote. Call it from a timer of the feeds' tick (and of that interval), so that the
    /// last charges before a quiet spell are neither left unjudged nor unsaved. A failed save stays pending:
    /// the next `flush` tries again.
    pub fn flush(&mut self, now: SystemTime) -> Result<bool, CheckpointError> {
        let (_, wrote) = self.drain_feeds(now)?;
        if !self.unsaved {
            return Ok(wrote);
        }
        self.save(now)?;
        self.last_save = Some(now);
        self.unsaved = false;
        Ok(true)
    }

    /// Moves to the month of `now` if it is a new one (usage back at zero, alerts cleared, guardrails lifted).
    /// Call it from a timer so that a quiet budget clears at the month's end.
    ///
    /// What its [`BudgetFeed`](super::BudgetFeed)s batched is charged first, to the month it finished in.
    pub fn tick(&mut self, now: SystemTime) -> Result<Vec<AlertEvent>, CheckpointError> {
        let (mut events, _) = self.drain_feeds(now)?;
        if !self.ledger.roll_to(Month::of(now)) {
            return Ok(events);
        }
        let budgets = Arc::clone(&self.budgets);
        events.extend(self.judge(budgets.iter()));
        self.save(now)?;
        Ok(events)
    }

    /// Saves the checkpoint now (a no-op without one).
    pub fn save(&self, now: SystemTime) -> Result<(), CheckpointError> {
        let Some(path) = &self.checkpoint else { return Ok(()) };
        let mut c = Checkpoint::new(self.ledger.month());
        for b in self.budgets.iter() {
            let state = BudgetState { usage: self.ledger.usage(&b.name), level: self.level(&b.name) };
            if state != BudgetState::default() {
                c.budgets.insert(b.name.clone(), state);
            }
        }
        checkpoint::save(path, &c, now)
    }

    /// Re-judges `budgets` after a charge. Allocates only for a crossing (or a budget's first level).
    fn judge<'a>(&mut self, budgets: impl Iterator<Item = &'a Budget>) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        for budget in budgets {
            let name = &budget.name;
            let u = Utilization::of(budget, self.ledger.usage(name));
            let from = self.level(name);
            let to = from.next(u.max(), budget.thresholds, budget.hysteresis);
            match self.levels.get_mut(name) {
                Some(level) => *level = to,
                None => {
                    self.levels.insert(name.clone(), to);
                }
            }
            if from != to {
                self.apply_guardrails(budget, to, u);
                events.push(AlertEvent {
                    budget: name.clone(),
                    owner: budget.owner.clone(),
                    from,
                    to,
                    utilization: u,
                    month: self.ledger.month(),
                });
            }
            for sink in &self.sinks {
                sink.utilization(name, u, to);
            }
        }
        for e in &events {
            for sink in &self.sinks {
                sink.alert(e);
            }
        }
        events
    }

    fn apply_guardrails(&self, budget: &Budget, level: AlertLevel, u: Utilization) {
        let g = budget.guardrails;
        if level == AlertLevel::Critical {
            if let Some(max) = g.max_concurrency_at_critical {
                self.limit.cap(&budget.name, max);
            }
            if g.freeze_adhoc_at_critical {
                let used: Vec<String> = u.resources().map(|(r, x)| format!("{r} {:.1}%", x * 100.0)).collect();
                self.freeze.freeze(
                    &budget.name,
                    format!(
                        "budget `{}` is critical ({} of its monthly budget, critical at {:.0}%; owner {})",
                        budget.name,
                        used.join(", "),
                        budget.thresholds.critical * 100.0,
                        budget.owner
                    ),
                );
            }
        } else {
            self.limit.lift(&budget.name);
            self.freeze.thaw(&budget.name);
        }
    }
}
