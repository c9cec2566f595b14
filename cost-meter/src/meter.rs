//! [`Meter`]: starts jobs and publishes what they used — records, metrics, events — and reconciles the sum
//! over jobs with the process's own CPU time and memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use brownout_foundation::process::{process_cpu_ns, rss_bytes};

use crate::alloc;
use crate::counters::Counts;
use crate::guardrail::{AdhocFreeze, ConcurrencyLimit, Frozen};
use crate::job::{Job, JobSpec};
use crate::record::{CpuMode, JobRecord, MemoryMode};
use crate::shard::{self, Owned};
use crate::sink::RecordSink;

/// Metric: CPU time charged to jobs, in nanoseconds (counter; labels env, team, service, strategy, tier).
pub const CPU_NANOSECONDS_TOTAL: &str = "cost_meter_cpu_nanoseconds_total";
/// Metric: live memory integrated over time, in byte-seconds (counter; same labels).
pub const MEMORY_BYTE_SECONDS_TOTAL: &str = "cost_meter_memory_byte_seconds_total";
/// Metric: finished jobs (counter; same labels).
pub const JOBS_TOTAL: &str = "cost_meter_jobs_total";

/// Starts jobs and publishes their records. A cheap `Clone`: every clone shares the sinks and totals.
///
/// Metrics go through the `metrics` facade at each job's end (per-request jobs' in per-thread batches, added
/// at most a millisecond after a busy thread's last batch and whenever a thread parks, settles or exits: see
/// [`on_thread_park`](crate::on_thread_park)); events through `tracing` (target
/// `brownout_cost`): `job_started` and `job_completed` at INFO for long jobs, and at DEBUG for per-request ones
/// ([`JobSpec::per_request`](crate::JobSpec::per_request), as `CostLayer` marks them) and wall-estimate ones:
/// a service at its default log level writes no line per request.
#[derive(Clone)]
pub struct Meter {
    inner: Arc<MeterInner>,
}

struct MeterInner {
    /// Unique per meter in the process: keys its jobs' memory slots and its cached metric handles.
    id: u64,
    sinks: Vec<Arc<dyn RecordSink>>,
    limit: Option<ConcurrencyLimit>,
    freeze: Option<AdhocFreeze>,
    process_cpu_at_start: u64,
    /// Its jobs' counts ([`CHARGED_CPU_NS`] …), kept per thread on one cache line each ([`Owned`]: a load and a
    /// store on the thread's own line): every job of every worker updates them.
    counts: Owned<COUNTS>,
}

/// CPU charged to the meter's thread-CPU jobs so far, running or finished, in nanoseconds.
const CHARGED_CPU_NS: usize = 0;
/// Jobs finished.
const FINISHED_JOBS: usize = 1;
/// Jobs running.
const RUNNING_JOBS: usize = 2;
/// The finished jobs' records summed ([`Meter::totals`]): CPU in nanoseconds,
const RECORDED_CPU_NS: usize = 3;
/// memory in byte-milliseconds,
const RECORDED_MEMORY_BYTE_MS: usize = 4;
/// and the jobs whose memory the allocator measured.
const ALLOCATOR_JOBS: usize = 5;
const COUNTS: usize = 6;

/// Meter ids; 0 is never used (a free memory slot's owner).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meter")
            .field("sinks", &self.inner.sinks.len())
            .field("finished_jobs", &self.inner.counts.sum(FINISHED_JOBS))
            .finish()
    }
}

impl Default for Meter {
    fn default() -> Self {
        Meter::new()
    }
}

/// Builds a [`Meter`] with its record sinks.
#[derive(Default)]
pub struct MeterBuilder {
    sinks: Vec<Arc<dyn RecordSink>>,
    limit: Option<ConcurrencyLimit>,
    freeze: Option<AdhocFreeze>,
}

impl fmt::Debug for MeterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeterBuilder").field("sinks", &self.sinks.len()).finish()
    }
}

impl MeterBuilder {
    /// Adds a sink that receives every finished job's record.
    pub fn sink(mut self, sink: impl RecordSink + 'static) -> Self {
        self.sinks.push(Arc::new(sink));
        self
    }

    /// Makes [`Meter::try_start`] obey `limit`: a job holds a permit from start to finish (a
    /// [`BudgetMonitor`](crate::budget::BudgetMonitor) lowers the limit while a budget is critical).
    pub fn limit(mut self, limit: ConcurrencyLimit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Makes [`Meter::try_start`] refuse new ad-hoc jobs while `freeze` is on (a budget at critical).
    pub fn freeze(mut self, freeze: AdhocFreeze) -> Self {
        self.freeze = Some(freeze);
        self
    }

    /// The meter. Its reconciliation counts process CPU time from now. The metrics' help texts go to the
    /// recorder installed now: install the exporter first.
    pub fn build(self) -> Meter {
        metrics::describe_counter!(CPU_NANOSECONDS_TOTAL, "CPU time charged to finished jobs, in nanoseconds.");
        metrics::describe_counter!(
            MEMORY_BYTE_SECONDS_TOTAL,
            "Live memory of finished jobs integrated over time, in byte-seconds."
        );
        metrics::describe_counter!(JOBS_TOTAL, "Jobs finished.");
        Meter {
            inner: Arc::new(MeterInner {
                sinks: self.sinks,
                limit: self.limit,
                freeze: self.freeze,
                id: NEXT_ID.fetch_add(1, Relaxed),
                process_cpu_at_start: process_cpu_ns(),
                counts: Owned::new(),
            }),
        }
    }
}

impl Meter {
    /// A meter with no record sink (metrics and events only).
    pub fn new() -> Meter {
        MeterBuilder::default().build()
    }

    /// A builder, to add record sinks.
    pub fn builder() -> MeterBuilder {
        MeterBuilder::default()
    }

    /// Starts a job: logs `job_started` and, when the [`CostAllocator`](crate::CostAllocator) is installed,
    /// gives it a memory slot.
    ///
    /// `start` does not consult the guardrails: a job runner uses [`try_start`](Self::try_start).
    pub fn start(&self, spec: JobSpec) -> Job {
        Job::start(self.clone(), spec, None)
    }

    /// Starts a job if the guardrails allow it: refused while the ad-hoc freeze is on (for
    /// [`Launch::AdHoc`] jobs) or while the concurrency limit has no room; the job holds its permit until it
    /// finishes. Heavy-tier windows are the [`TierGate`](crate::budget::TierGate)'s to check, before this.
    ///
    /// ```
    /// use brownout_cost::guardrail::{AdhocFreeze, ConcurrencyLimit};
    /// use brownout_cost::{JobSpec, Labels, Launch, Meter, Refused};
    ///
    /// let (limit, freeze) = (ConcurrencyLimit::new(1), AdhocFreeze::new());
    /// let meter = Meter::builder().limit(limit.clone()).freeze(freeze.clone()).build();
    /// let spec = || JobSpec::new("bt", Labels::new("research", "backtester"));
    /// let first = meter.try_start(spec(), Launch::Scheduled).unwrap();
    /// assert!(matches!(meter.try_start(spec(), Launch::Scheduled), Err(Refused::Concurrency { max: 1 })));
    /// first.finish();
    /// freeze.freeze("research-cluster", "budget `research-cluster` is critical");
    /// assert!(matches!(meter.try_start(spec(), Launch::AdHoc), Err(Refused::Frozen(_))));
    /// assert!(meter.try_start(spec(), Launch::Scheduled).is_ok());
    /// ```
    pub fn try_start(&self, spec: JobSpec, launch: Launch) -> Result<Job, Refused> {
        if launch == Launch::AdHoc
            && let Some(freeze) = &self.inner.freeze
        {
            freeze.check().map_err(Refused::Frozen)?;
        }
        let permit = match &self.inner.limit {
            Some(limit) => Some(limit.try_acquire().ok_or(Refused::Concurrency { max: limit.max() })?),
            None => None,
        };
        Ok(Job::start(self.clone(), spec, permit))
    }

    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    pub(crate) fn same(&self, other: &Meter) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    #[inline]
    pub(crate) fn charge_cpu(&self, ns: u64) {
        self.inner.counts.add(shard::here(), CHARGED_CPU_NS, ns);
    }

    /// A job started.
    pub(crate) fn job_started(&self, spec: &JobSpec, memory_metered: bool) {
        self.inner.counts.add(shard::here(), RUNNING_JOBS, 1);
        let l = &spec.labels;
        macro_rules! started {
            ($level:ident) => {
                tracing::$level!(target: "cost_meter", event = "job_started", job_id = %spec.id, env = %l.env,
                    team = %l.team, service = %l.service, strategy = %l.strategy, tier = %l.tier,
                    cpu_mode = ?spec.cpu_mode, reserved_bytes = spec.reserved_bytes, memory_metered,
                    "job started")
            };
        }
        if spec.per_request || spec.cpu_mode == CpuMode::WallEstimate { started!(debug) } else { started!(info) }
    }

    /// A job dropped without being finished: no longer running, not recorded.
    pub(crate) fn job_abandoned(&self) {
        self.inner.counts.sub(shard::here(), RUNNING_JOBS, 1);
    }

    /// A job finished at `ended` (monotonic nanoseconds); a per-request job's counts are batched per thread
    /// ([`crate::counters`]).
    pub(crate) fn job_finished(&self, record: &JobRecord, per_request: bool, ended: u64) {
        let (own, here) = (&self.inner.counts, shard::here());
        own.sub(here, RUNNING_JOBS, 1);
        own.add(here, FINISHED_JOBS, 1);
        let counts = Counts {
            cpu_nanoseconds: round(record.cpu_seconds * 1e9),
            memory_byte_seconds: round(record.memory_byte_seconds),
            jobs: 1,
        };
        own.add(here, RECORDED_CPU_NS, counts.cpu_nanoseconds);
        own.add(here, RECORDED_MEMORY_BYTE_MS, round(record.memory_byte_seconds * 1e3));
        own.add(here, ALLOCATOR_JOBS, u64::from(record.memory_mode == MemoryMode::Allocator));
        crate::counters::count(self.inner.id, &record.labels, counts, per_request, ended);
        for sink in &self.inner.sinks {
            sink.record(record);
        }
        let l = &record.labels;
        macro_rules! completed {
            ($level:ident) => {
                tracing::$level!(target: "cost_meter", event = "job_completed", job_id = %record.job_id,
                    env = %l.env, team = %l.team, service = %l.service, strategy = %l.strategy, tier = %l.tier,
                    wall_seconds = record.wall_seconds, cpu_seconds = record.cpu_seconds,
                    cpu_mode = ?record.cpu_mode, memory_gb_hours = record.memory_gb_hours,
                    peak_bytes = record.peak_bytes, reserved_bytes = record.reserved_bytes,
                    memory_mode = ?record.memory_mode, "job completed")
            };
        }
        if per_request || record.cpu_mode == CpuMode::WallEstimate { completed!(debug) } else { completed!(info) }
    }

    /// Compares what jobs claimed with what the process used since the meter was built. The calling thread's
    /// apportioned polls are settled first; other threads' last millisecond or so of apportioned polls is
    /// counted when they settle (see [`settle_thread`](crate::settle_thread)).
    pub fn reconcile(&self) -> Reconciliation {
        crate::section::settle_thread();
        let process_ns = process_cpu_ns().saturating_sub(self.inner.process_cpu_at_start);
        let jobs_ns = self.inner.counts.sum(CHARGED_CPU_NS);
        let jobs_live_bytes = alloc::ledger::live_bytes_of(self.inner.id);
        let rss = rss_bytes();
        Reconciliation {
            process_cpu_seconds: process_ns as f64 / 1e9,
            jobs_cpu_seconds: jobs_ns as f64 / 1e9,
            idle_cpu_seconds: process_ns.saturating_sub(jobs_ns) as f64 / 1e9,
            rss_bytes: rss,
            jobs_live_bytes,
            unclaimed_rss_bytes: rss.map(|r| r.saturating_sub(jobs_live_bytes)),
            memory_metered: alloc::is_installed(),
            running_jobs: self.inner.counts.sum(RUNNING_JOBS) as usize,
            finished_jobs: self.inner.counts.sum(FINISHED_JOBS),
        }
    }

    /// What the meter's finished jobs used, summed from their records (the figures its sinks receive), kept per
    /// thread: reading it sums each thread's line, finishing a job adds to its thread's without an atomic
    /// read-modify-write. For a service that reports its own cost (a GameDay reads it per phase) without a sink
    /// of its own.
    ///
    /// ```
    /// use brownout_cost::{JobSpec, Labels, Meter};
    ///
    /// let meter = Meter::new();
    /// meter.start(JobSpec::new("r-1", Labels::new("trading", "quotes")).wall_estimate()).finish();
    /// let totals = meter.totals();
    /// assert_eq!(totals.jobs, 1);
    /// assert!(totals.cpu_seconds >= 0.0);
    /// ```
    pub fn totals(&self) -> JobTotals {
        let counts = &self.inner.counts;
        JobTotals {
            jobs: counts.sum(FINISHED_JOBS),
            cpu_seconds: counts.sum(RECORDED_CPU_NS) as f64 / 1e9,
            memory_byte_seconds: counts.sum(RECORDED_MEMORY_BYTE_MS) as f64 / 1e3,
            allocator_jobs: counts.sum(ALLOCATOR_JOBS),
        }
    }
}
/// `x` rounded half up to a whole count (0 for a negative or NaN `x`, `u64::MAX` past it), without a call to
/// libm's `round` (x86-64's baseline has no rounding instruction): once per counter per job. Within a hair
/// of a half it may round up where `f64::round` rounds down (adding 0.5 rounds), never by more than one.
fn round(x: f64) -> u64 {
    // `as` saturates, and truncates toward zero: for x ≥ 0, trunc(x + 0.5) is x rounded half up.
    (x + 0.5) as u64
}

/// The sums of a meter's finished jobs' records ([`Meter::totals`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct JobTotals {
    /// Jobs finished.
    pub jobs: u64,
    /// Their records' `cpu_seconds`, summed (each rounded to the nanosecond).
    pub cpu_seconds: f64,
    /// Their records' `memory_byte_seconds`, summed (each rounded to the byte-millisecond).
    pub memory_byte_seconds: f64,
    /// How many of them had their memory measured by the allocator (`memory_mode: allocator`).
    pub allocator_jobs: u64,
}

/// How a job was launched, for the ad-hoc freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Launch {
    /// By a schedule or a pipeline: not affected by the ad-hoc freeze.
    Scheduled,
    /// By hand: refused while a critical budget freezes ad-hoc runs.
    AdHoc,
}

/// Why [`Meter::try_start`] refused a job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// The concurrency limit in force (`max`) is reached.
    Concurrency {
        /// The limit in force.
        max: usize,
    },
    /// New ad-hoc runs are frozen by a critical budget.
    Frozen(Frozen),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Concurrency { max } => {
                write!(f, "job refused: {max} jobs already running, the concurrency limit in force; retry later")
            }
            Refused::Frozen(frozen) => write!(f, "job refused: {frozen}"),
        }
    }
}

impl std::error::Error for Refused {}

/// The sum over jobs set against the process's own figures. What no job claims is idle (the runtime, the
/// allocator's tick, work outside any job).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Reconciliation {
    /// Process CPU time since the meter was built (every thread).
    pub process_cpu_seconds: f64,
    /// CPU time charged to thread-CPU jobs, finished and running (wall-estimate jobs are left out: their
    /// figure is not CPU time). Includes work a job's futures or threads did after it finished.
    pub jobs_cpu_seconds: f64,
    /// Process CPU time no job claims.
    pub idle_cpu_seconds: f64,
    /// The process's resident set size now, where the OS reports it.
    pub rss_bytes: Option<u64>,
    /// Live heap bytes held by this meter's running jobs (0 without the allocator).
    pub jobs_live_bytes: u64,
    /// Resident memory no running job holds.
    pub unclaimed_rss_bytes: Option<u64>,
    /// Whether the [`CostAllocator`](crate::CostAllocator) is installed (memory figures are exact).
    pub memory_metered: bool,
    /// Jobs running now.
    pub running_jobs: usize,
    /// Jobs finished since the meter was built.
    pub finished_jobs: u64,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::round;

    #[test]
    fn rounding_at_the_edges() {
        assert_eq!(round(0.0), 0);
        assert_eq!(round(0.5), 1);
        assert_eq!(round(2.4999), 2);
        assert_eq!(round(-3.0), 0);
        assert_eq!(round(f64::NAN), 0);
        assert_eq!(round(1e30), u64::MAX);
    }

    proptest! {
        /// What the counters are given is `f64::round`'s whole count, but for the hair around a half.
        #[test]
        fn rounds_as_f64_round(x in 0.0f64..1e15) {
            let exact = x.round() as u64;
            if (x.fract() - 0.5).abs() > 1e-6 {
                prop_assert_eq!(round(x), exact);
            } else {
                prop_assert!(round(x).abs_diff(exact) <= 1);
            }
        }
    }
}
