//! [`BudgetFeed`]: finished jobs charged to a shared [`BudgetMonitor`] in per-thread batches, flushed on a
//! tick, as the Prometheus client libraries batch counter increments: a job's end adds its usage to its
//! thread's batch (an uncontended lock, no budget judged); the monitor's lock is taken and the budgets judged
//! once per tick, for the label sets the batch saw.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use brownout_foundation::sync::lock;

use super::civil::Month;
use super::monitor::BudgetMonitor;
use super::usage::Usage;
use crate::{JobRecord, Labels, RecordSink};

/// Usage not yet charged: one entry per label set and month.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) labels: Labels,
    pub(crate) month: Month,
    pub(crate) usage: Usage,
}

/// One thread's batch for one monitor.
#[derive(Debug, Default)]
struct Shard {
    pending: Mutex<Vec<Pending>>,
}

/// The batches of every thread feeding one monitor: the monitor drains them when it flushes.
#[derive(Debug)]
pub(crate) struct Batches {
    /// Unique in the process (threads find their shard by it; an address could be reused).
    id: u64,
    shards: Mutex<Vec<Arc<Shard>>>,
}

impl Default for Batches {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Batches { id: NEXT_ID.fetch_add(1, Relaxed), shards: Mutex::default() }
    }
}

impl Batches {
    /// Takes every thread's pending usage, oldest month first. Forgets the shards of threads that ended.
    pub(crate) fn drain(&self) -> Vec<Pending> {
        let mut all = Vec::new();
        let mut shards = lock(&self.shards);
        for shard in shards.iter() {
            all.append(&mut lock(&shard.pending));
        }
        // Only the list holds a shard whose thread ended (its thread-local handle is gone), and it is empty.
        shards.retain(|s| Arc::strong_count(s) > 1);
        all.sort_by_key(|p| p.month);
        all
    }
}

thread_local! {
    /// This thread's shard of each monitor it charged through a feed: (the batches' id, the shard).
    static SHARDS: RefCell<Vec<(u64, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

/// Charges finished jobs to a shared [`BudgetMonitor`] in per-thread batches: what a service charged per
/// request uses instead of locking the monitor and judging its budgets at every job's end.
///
/// [`record`](Self::record) adds a job's usage to the calling thread's batch. The batches are charged to the
/// monitor, and the budgets they touch judged (alerts fired, guardrails applied, the checkpoint saved as
/// [`BudgetMonitor::save_every`] says) once per tick: by the first record that finishes a tick after the last
/// flush, and by every [`BudgetMonitor::flush`] or [`BudgetMonitor::tick`] (call one from a timer of the same
/// interval, so that the last charges before a quiet spell are not left waiting). **An alert therefore fires at
/// most one tick late**, and the monitor's usage, levels and checkpoint lag its jobs by at most one tick; a
/// crash loses at most the last tick's charges. Charging in batches adds the same usages in another order: the
/// month-to-date totals agree to rounding.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::{Duration, SystemTime};
/// use brownout_cost::budget::{Budget, BudgetFeed, BudgetMonitor, BudgetSet};
/// use brownout_cost::{JobSpec, Labels, Meter};
///
/// let budget = Budget::parse("name: quotes\nowner: trading@example.com\nmonthly_cpu_hours: 100\n", None)?;
/// let monitor = Arc::new(Mutex::new(BudgetMonitor::new(Arc::new(BudgetSet::new(vec![budget])?), SystemTime::now())));
/// let feed = BudgetFeed::new(&monitor, Duration::from_secs(1));
/// let meter = Meter::builder().sink(feed.clone()).build();
/// meter.start(JobSpec::new("req-1", Labels::new("trading", "quotes"))).finish();
/// monitor.lock().unwrap().flush(SystemTime::now())?; // what the timer does every tick
/// assert!(monitor.lock().unwrap().usage("quotes").cpu_hours >= 0.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct BudgetFeed {
    monitor: Arc<Mutex<BudgetMonitor>>,
    batches: Arc<Batches>,
    tick_ms: u64,
    /// When the next record-driven flush is due, in Unix milliseconds (of records' end times).
    next_due_ms: Arc<AtomicU64>,
}

impl fmt::Debug for BudgetFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetFeed").field("tick_ms", &self.tick_ms).finish_non_exhaustive()
    }
}

impl BudgetFeed {
    /// A feed of `monitor`, flushed at most `tick` after a charge (see the type's documentation).
    pub fn new(monitor: &Arc<Mutex<BudgetMonitor>>, tick: Duration) -> Self {
        let batches = lock(monitor).batches();
        BudgetFeed {
            monitor: Arc::clone(monitor),
            batches,
            tick_ms: tick.as_millis().max(1) as u64,
            next_due_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Adds a finished job's usage to this thread's batch; flushes the batches into the monitor when a tick
    /// has passed since the last flush (by the job's end time). Errors of that flush (a checkpoint that
    /// could not be written) are logged; the charges stay in the monitor and the next save persists them.
    pub fn record(&self, record: &JobRecord) {
        let usage = Usage::of(record);
        let end = record.started_at_unix + record.wall_seconds.max(0.0);
        let month = month_of(end);
        let key = self.batches.id;
        let add = |shard: &Shard| {
            let mut pending = lock(&shard.pending);
            match pending.iter_mut().find(|p| p.month == month && p.labels == record.labels) {
                Some(p) => p.usage += usage,
                None => pending.push(Pending { labels: record.labels.clone(), month, usage }),
            }
        };
        let added = SHARDS.try_with(|shards| {
            let mut shards = shards.borrow_mut();
            let shard = match shards.iter().find(|(k, _)| *k == key) {
                Some((_, shard)) => shard,
                None => {
                    let shard = Arc::new(Shard::default());
                    lock(&self.batches.shards).push(Arc::clone(&shard));
                    shards.push((key, shard));
                    &shards.last().expect("just pushed").1
                }
            };
            add(shard)
        });
        if added.is_err() {
            // A thread being torn down: charge the monitor directly.
            let mut monitor = lock(&self.monitor);
            if let Err(e) = monitor.record(record, SystemTime::now()) {
                tracing::warn!(target: "cost_meter", error = %e, "budget checkpoint not saved");
            }
            return;
        }
        let end_ms = (end.max(0.0) * 1000.0) as u64;
        let due = self.next_due_ms.load(Relaxed);
        if end_ms >= due
            && self.next_due_ms.compare_exchange(due, end_ms.saturating_add(self.tick_ms), Relaxed, Relaxed).is_ok()
        {
            self.flush();
        }
    }

    /// Charges every thread's batch to the monitor now, judging the budgets they touch.
    pub fn flush(&self) {
        let now = SystemTime::now();
        if let Err(e) = lock(&self.monitor).flush(now) {
            tracing::warn!(target: "cost_meter", error = %e, "budget checkpoint not saved");
        }
    }
}

thread_local! {
    /// The month the thread's last record ended in, with its bounds in Unix seconds: consecutive records
    /// almost always end in the same month, and finding the month of a time takes a floor (a libm call on
    /// x86-64's baseline) and a calendar computation.
    static LAST_MONTH: Cell<Option<(f64, f64, Month)>> = const { Cell::new(None) };
}

/// The month a record ending at `end` (Unix seconds) is charged to: [`Month::of_unix`], from the thread's last
/// month when `end` falls in it.
fn month_of(end: f64) -> Month {
    let last = LAST_MONTH.try_with(Cell::get).ok().flatten();
    if let Some((start, until, month)) = last
        && end >= start
        && end < until
    {
        return month;
    }
    let month = Month::of_unix(end);
    let _ = LAST_MONTH.try_with(|m| m.set(Some((month.start_unix() as f64, month.end_unix() as f64, month))));
    month
}

impl RecordSink for BudgetFeed {
    fn record(&self, record: &JobRecord) {
        BudgetFeed::record(self, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The month from the thread's last one is the month computed afresh, for any sequence of end times,
        /// month boundaries (the first second of a month, the last fraction before it) included.
        #[test]
        fn the_remembered_month_is_the_month_of_the_time(
            times in proptest::collection::vec((0i64..2_000_000_000, 0usize..4), 1..60),
        ) {
            for (t, shape) in times {
                let month = Month::of_unix(t as f64);
                let end = match shape {
                    0 => t as f64,
                    1 => month.start_unix() as f64,
                    2 => month.end_unix() as f64,
                    _ => month.end_unix() as f64 - 1e-6,
                };
                proptest::prop_assert_eq!(month_of(end), Month::of_unix(end), "at {}", end);
            }
        }
    }
}
