//! Jobs: what a span of work is called, what it declared, and what it used.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

use brownout_foundation::process::{monotonic_ns, realtime_ns};

use crate::alloc::ledger::{Claim, MemoryTotals, Tag};
use crate::future::Metered;
use crate::guardrail::Permit;
use crate::meter::Meter;
use crate::record::{CpuMode, JobRecord, MemoryMode, gb_hours};
use crate::section::Section;
use crate::spare::JobRef;
use crate::{JobId, Labels, alloc};

/// What a job is: its id, labels, declared memory and how its CPU is measured.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobSpec {
    /// The job's id: in records and logs, never in metric labels.
    pub id: JobId,
    /// The job's labels.
    pub labels: Labels,
    /// The memory the job expects to hold, in bytes: charged × wall time when no
    /// [`CostAllocator`](crate::CostAllocator) is installed.
    pub reserved_bytes: u64,
    /// How CPU is measured (default: the thread CPU clock around every poll).
    pub cpu_mode: CpuMode,
    /// A job per request (`CostLayer`'s): its `job_started` and `job_completed` events are logged at DEBUG,
    /// so a service at its default log level writes no line per request; long jobs keep INFO.
    pub per_request: bool,
}

impl JobSpec {
    /// A job with an id and labels, no reservation, CPU from the thread CPU clock.
    pub fn new(id: impl Into<JobId>, labels: Labels) -> Self {
        JobSpec { id: id.into(), labels, reserved_bytes: 0, cpu_mode: CpuMode::ThreadCpu, per_request: false }
    }

    /// Declares the memory the job expects to hold.
    pub fn reserve(mut self, bytes: u64) -> Self {
        self.reserved_bytes = bytes;
        self
    }

    /// Marks the job as one of many short ones, one per request: its events go to DEBUG (see
    /// [`per_request`](Self::per_request)).
    pub fn per_request(mut self) -> Self {
        self.per_request = true;
        self
    }

    /// Measures its futures' CPU with the TSC around each poll and the thread CPU clock once per interval of
    /// about a millisecond per thread, each interval's CPU split over the polls that ran in it by their TSC
    /// time ([`CpuMode::Apportioned`]): under 50 ns a poll instead of two system calls, and within 2% of the
    /// kernel's figure. Closures, scoped threads and blocking tasks ([`Job::run`], [`Job::scope`], …) are still
    /// measured exactly. The share of a poll is known when its thread's interval ends: a per-request job
    /// finishes with its last polls charged at the thread's last measured on-CPU ratio (their TSC time when
    /// the thread was not preempted), and any difference reaches the meter's totals, not its record; other
    /// jobs settle the finishing thread's interval at [`Job::finish`].
    pub fn apportioned(mut self) -> Self {
        self.cpu_mode = CpuMode::Apportioned;
        self
    }

    /// Measures CPU as the job's wall time instead of reading the thread CPU clock at every poll: cheaper for
    /// high-rate request spans, and recorded as [`CpuMode::WallEstimate`].
    pub fn wall_estimate(mut self) -> Self {
        self.cpu_mode = CpuMode::WallEstimate;
        self
    }
}

/// The state a running job shares with its futures, threads and tasks: only what a poll needs.
pub(crate) struct JobInner {
    cpu_ns: AtomicU64,
    cpu_mode: CpuMode,
    tag: Tag,
    /// `None` only while the state is spare ([`crate::spare`]).
    meter: Option<Meter>,
}

impl JobInner {
    /// A running job's state: from this thread's spare ones when it has one ([`crate::spare`]), else new.
    fn running(cpu_mode: CpuMode, tag: Tag, meter: Meter) -> Arc<JobInner> {
        let fresh = JobInner { cpu_ns: AtomicU64::new(0), cpu_mode, tag, meter: Some(meter) };
        if let Some(mut spare) = crate::spare::take()
            && let Some(state) = Arc::get_mut(&mut spare)
        {
            *state = fresh;
            return spare;
        }
        Arc::new(fresh)
    }

    /// Lets go of the meter: the state is spare.
    pub(crate) fn release(&mut self) {
        self.meter = None;
    }

    #[inline]
    fn meter(&self) -> &Meter {
        self.meter.as_ref().expect("a job's state has its meter until it is spare")
    }

    pub(crate) fn tag(&self) -> Tag {
        self.tag
    }

    pub(crate) fn cpu_mode(&self) -> CpuMode {
        self.cpu_mode
    }

    #[inline]
    pub(crate) fn charge_cpu(&self, ns: u64) {
        self.cpu_ns.fetch_add(ns, Relaxed);
        self.meter().charge_cpu(ns);
    }

    pub(crate) fn cpu_ns(&self) -> u64 {
        self.cpu_ns.load(Relaxed)
    }

    /// An apportioned section's charge at the thread's last on-CPU ratio: the job's figure only, the meter's
    /// total is charged when the thread's interval settles.
    #[inline]
    pub(crate) fn add_job_cpu(&self, ns: u64) {
        self.cpu_ns.fetch_add(ns, Relaxed);
    }

    /// Settles an apportioned interval's sections: the job's figure moves from what they were charged
    /// (`provisional`) to their share (the meter's total is charged the share by [`charge_meter`]).
    ///
    /// [`charge_meter`]: Self::charge_meter
    pub(crate) fn settle(&self, share: u64, provisional: u64) {
        if share != provisional {
            // Wrapping: `provisional` was added to `cpu_ns` before, so the result is never below zero.
            self.cpu_ns.fetch_add(share.wrapping_sub(provisional), Relaxed);
        }
    }

    /// Charges the job's meter's total (for apportioned shares, once per run of the same meter's jobs).
    pub(crate) fn charge_meter(&self, ns: u64) {
        self.meter().charge_cpu(ns);
    }

    /// Whether the two jobs belong to the same meter.
    pub(crate) fn same_meter(&self, other: &JobInner) -> bool {
        self.meter().same(other.meter())
    }
}

/// A running job. Its work is charged through [`meter`](Job::meter) (futures), [`run`](Job::run) (a closure
/// on this thread), [`scope`](Job::scope) (scoped threads) and, with the `tokio` feature,
/// [`spawn`](Job::spawn) / [`spawn_blocking`](Job::spawn_blocking). [`finish`](Job::finish) writes its record.
///
/// ```
/// use brownout_cost::{JobSpec, Labels, Meter, Tier};
///
/// let meter = Meter::new();
/// let job = meter.start(JobSpec::new("bt-42", Labels::new("research", "backtester").tier(Tier::Batch)));
/// let sum: u64 = job.run(|| (0..1_000_000u64).sum());
/// let record = job.finish();
/// assert_eq!(sum, 499_999_500_000);
/// assert!(record.cpu_seconds > 0.0);
/// ```
pub struct Job {
    inner: JobRef,
    spec: JobSpec,
    /// The job's memory slot, when the allocator meters it.
    claim: Option<Claim>,
    /// The monotonic clock at the start, in nanoseconds ([`monotonic_ns`]).
    started: u64,
    /// Set by [`finish`](Job::finish); a job dropped without it is let go unrecorded.
    finished: bool,
    /// The guardrail permit, when started by [`Meter::try_start`]: given back at finish.
    _permit: Option<Permit>,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").field("spec", &self.spec).field("cpu_ns", &self.inner.cpu_ns()).finish()
    }
}

impl Job {
    pub(crate) fn start(meter: Meter, spec: JobSpec, permit: Option<Permit>) -> Job {
        // One clock reading for the start of both the wall time and the memory integral.
        let started = monotonic_ns();
        let claim = if alloc::is_installed() { Claim::new(meter.id(), started) } else { None };
        let tag = claim.as_ref().map_or(Tag::NONE, Claim::tag);
        meter.job_started(&spec, claim.is_some());
        let inner = JobRef::new(JobInner::running(spec.cpu_mode, tag, meter));
        Job { inner, spec, claim, started, finished: false, _permit: permit }
    }

    /// The job's spec.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// Whether the job's memory is measured by the allocator (false: by its reservation).
    pub fn meters_memory(&self) -> bool {
        self.inner.tag != Tag::NONE
    }

    /// CPU time charged so far, in nanoseconds (0 in wall-estimate mode).
    pub fn cpu_nanoseconds(&self) -> u64 {
        self.inner.cpu_ns()
    }

    /// Wraps a future so each of its polls is charged to this job, on whatever thread polls it.
    pub fn meter<F: Future>(&self, future: F) -> Metered<F> {
        Metered::new(future, self.inner.clone())
    }

    /// Polls `future` once, charged to this job as [`meter`](Self::meter)'s wrapper charges each poll: for a
    /// future kept beside its job (a layer's response future holds both), without the wrapper's reference to
    /// the job's state (one reference count fewer to add and give back per future).
    ///
    /// ```
    /// use std::pin::pin;
    /// use std::task::{Context, Poll, Waker};
    /// use brownout_cost::{JobSpec, Labels, Meter};
    ///
    /// let job = Meter::new().start(JobSpec::new("r-1", Labels::new("trading", "quotes")).apportioned());
    /// let mut answer = pin!(async { 6 * 7 });
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert_eq!(job.poll_charged(answer.as_mut(), &mut cx), Poll::Ready(42));
    /// job.finish();
    /// ```
    #[inline]
    pub fn poll_charged<F: Future>(&self, future: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _section = Section::enter(&self.inner);
        future.poll(cx)
    }

    /// Runs `f` on this thread, charged to this job.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let _section = Section::enter_closure(&self.inner);
        f()
    }

    /// Runs `f` with a scope whose threads are charged to this job, like [`std::thread::scope`].
    pub fn scope<'env, R>(&self, f: impl for<'scope> FnOnce(&JobScope<'scope, 'env>) -> R) -> R {
        std::thread::scope(|scope| f(&JobScope { scope, job: Arc::clone(&self.inner) }))
    }

    /// Spawns a plain thread charged to this job.
    pub fn spawn_thread<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> std::thread::JoinHandle<R> {
        let inner = Arc::clone(&self.inner);
        std::thread::spawn(move || {
            let _section = Section::enter_closure(&inner);
            f()
        })
    }

    /// Spawns a task on the current tokio runtime, charged to this job.
    #[cfg(feature = "tokio")]
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(self.meter(future))
    }

    /// Runs a blocking closure on tokio's blocking pool, charged to this job.
    #[cfg(feature = "tokio")]
    pub fn spawn_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> tokio::task::JoinHandle<R> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _section = Section::enter_closure(&inner);
            f()
        })
    }

    /// Ends the job: measures it, writes its record to the meter's sinks, updates the metrics, logs
    /// `job_completed`, and returns the record. Work still running for the job afterwards is not recorded.
    pub fn finish(mut self) -> JobRecord {
        self.finished = true;
        if self.spec.cpu_mode == CpuMode::Apportioned && !self.spec.per_request {
            crate::section::settle_thread();
        }
        // One clock reading for the end of both the wall time and the memory integral.
        let ended = monotonic_ns();
        let wall = ended.saturating_sub(self.started) as f64 / 1e9;
        // The start's calendar time is the end's minus the wall time, and the end's is the monotonic reading plus
        // the thread's last measured offset between the two clocks ([`calendar_ns`]). Both clocks are plain
        // nanosecond counts: no `Instant` or `SystemTime` arithmetic per job.
        let now_unix = calendar_ns(ended) as f64 / 1e9;
        let (memory_mode, totals) = match self.claim.take() {
            Some(claim) => (MemoryMode::Allocator, claim.finish(ended)),
            None => (MemoryMode::Reservation, MemoryTotals::default()),
        };
        let memory_byte_seconds = match memory_mode {
            MemoryMode::Allocator => totals.byte_ms as f64 / 1000.0,
            MemoryMode::Reservation | MemoryMode::TreeRss => self.spec.reserved_bytes as f64 * wall,
        };
        let spec = &mut self.spec;
        let cpu_seconds = match spec.cpu_mode {
            CpuMode::ThreadCpu | CpuMode::Apportioned => self.inner.cpu_ns() as f64 / 1e9,
            CpuMode::WallEstimate | CpuMode::ChildRusage => wall,
        };
        // The id and labels move into the record: finishing a job copies no string.
        let record = JobRecord {
            job_id: std::mem::take(&mut spec.id),
            labels: std::mem::take(&mut spec.labels),
            started_at_unix: (now_unix - wall).max(0.0),
            wall_seconds: wall,
            cpu_seconds,
            cpu_mode: spec.cpu_mode,
            memory_byte_seconds,
            memory_gb_hours: gb_hours(memory_byte_seconds),
            peak_bytes: totals.peak_bytes,
            reserved_bytes: spec.reserved_bytes,
            memory_mode,
            cache_hit: false,
        };
        self.inner.meter().job_finished(&record, spec.per_request, ended);
        record
    }
}

/// How long a thread reuses its measure of the calendar clock's offset from the monotonic clock: the calendar
/// clock is slewed by at most 0.05% (NTP), half a millisecond a second; a step of it (set by hand) reaches the
/// records within this long.
const CALENDAR_REFRESH_NS: u64 = 1_000_000_000;

thread_local! {
    /// The monotonic reading at which the thread last read the calendar clock, and the calendar clock minus the
    /// monotonic one then (modulo 2⁶⁴).
    static CALENDAR: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

/// The calendar time (Unix nanoseconds) at the monotonic reading `monotonic`, a current one: from the thread's
/// offset between the clocks, measured at most [`CALENDAR_REFRESH_NS`] ago (one calendar clock read a second
/// per thread instead of one per job).
fn calendar_ns(monotonic: u64) -> u64 {
    CALENDAR.try_with(|cache| calendar_from(cache, monotonic, realtime_ns)).unwrap_or_else(|_| realtime_ns())
}

/// [`calendar_ns`] with the calendar clock read by `read`, when the offset in `cache` is missing or stale.
fn calendar_from(cache: &Cell<Option<(u64, u64)>>, monotonic: u64, read: impl FnOnce() -> u64) -> u64 {
    if let Some((at, offset)) = cache.get()
        && monotonic >= at
        && monotonic - at < CALENDAR_REFRESH_NS
    {
        return monotonic.wrapping_add(offset);
    }
    let calendar = read();
    cache.set(Some((monotonic, calendar.wrapping_sub(monotonic))));
    calendar
}

impl Drop for Job {
    /// A job dropped without [`finish`](Job::finish) writes no record; its memory slot is freed and it no
    /// longer counts as running.
    fn drop(&mut self) {
        if !self.finished {
            if let Some(claim) = self.claim.take() {
                claim.finish(monotonic_ns());
            }
            self.inner.meter().job_abandoned();
        }
    }
}

/// A [`std::thread::Scope`] whose threads are charged to a job. Made by [`Job::scope`].
#[derive(Debug)]
pub struct JobScope<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    job: Arc<JobInner>,
}

impl fmt::Debug for JobInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobInner").field("cpu_mode", &self.cpu_mode).field("cpu_ns", &self.cpu_ns()).finish()
    }
}

impl<'scope, 'env> JobScope<'scope, 'env> {
    /// Spawns a scoped thread charged to the job.
    pub fn spawn<R: Send + 'scope>(
        &self,
        f: impl FnOnce() -> R + Send + 'scope,
    ) -> std::thread::ScopedJoinHandle<'scope, R> {
        let job = Arc::clone(&self.job);
        self.scope.spawn(move || {
            let _section = Section::enter_closure(&job);
            f()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::spare;

    fn spec() -> JobSpec {
        JobSpec::new("r-1", Labels::new("trading", "quote-api")).wall_estimate().per_request()
    }

    /// The calendar time comes from the thread's offset between the clocks for a second after it was measured,
    /// then the calendar clock is read again (also when the monotonic reading is older than the measure).
    #[test]
    fn the_calendar_clock_is_read_once_a_second_per_thread() {
        let cache = Cell::new(None);
        let unread = || -> u64 { panic!("read within the second") };
        assert_eq!(calendar_from(&cache, 5_000, || 1_700_000_000_000_000_000), 1_700_000_000_000_000_000);
        assert_eq!(calendar_from(&cache, 5_000 + 250, unread), 1_700_000_000_000_000_250);
        let last = 5_000 + CALENDAR_REFRESH_NS - 1;
        assert_eq!(calendar_from(&cache, last, unread), 1_700_000_000_000_000_000 + CALENDAR_REFRESH_NS - 1);
        // A second on, the clock is read again, and its reading (a step, here) is what follows.
        let later = 5_000 + CALENDAR_REFRESH_NS;
        assert_eq!(calendar_from(&cache, later, || 1_800_000_000_000_000_000), 1_800_000_000_000_000_000);
        assert_eq!(calendar_from(&cache, later + 7, unread), 1_800_000_000_000_000_007);
        assert_eq!(calendar_from(&cache, later - 1, || 42), 42, "an older reading than the measure");
    }

    /// A finished job's state goes back to its thread and the next job reuses it, with no CPU charged yet and
    /// the new job's meter.
    #[test]
    fn the_next_job_reuses_a_finished_jobs_state_from_zero() {
        let (first_meter, second_meter) = (Meter::new(), Meter::new());
        let first = first_meter.start(spec());
        first.inner.add_job_cpu(5_000);
        let state = Arc::as_ptr(&first.inner);
        first.finish();
        let second = second_meter.start(spec());
        assert_eq!(Arc::as_ptr(&second.inner), state, "the state was reused");
        assert_eq!(second.cpu_nanoseconds(), 0);
        assert!(second.inner.meter().same(&second_meter));
        second.finish();
    }

    /// A state still referred to (a future of the job's outlives it) is not reused while it is.
    #[test]
    fn a_state_in_use_is_not_reused() {
        let meter = Meter::new();
        let first = meter.start(spec());
        let future = first.meter(std::future::ready(()));
        let state = Arc::as_ptr(&first.inner);
        first.finish();
        let second = meter.start(spec());
        assert_ne!(Arc::as_ptr(&second.inner), state);
        drop(future);
        let third = meter.start(spec());
        assert_eq!(Arc::as_ptr(&third.inner), state, "reused once the future let go");
    }

    /// A spare state holds no meter: a meter dropped after its jobs drops its sinks at once.
    #[test]
    fn a_spare_state_keeps_no_meter_alive() {
        struct Dropped(Arc<AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, Relaxed);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = Dropped(dropped.clone());
        let meter = Meter::builder()
            .sink(move |_: &JobRecord| {
                let _ = &guard;
            })
            .build();
        meter.start(spec()).finish();
        assert!(spare::kept() >= 1, "the job's state is spare");
        drop(meter);
        assert!(dropped.load(Relaxed), "the meter and its sink were dropped");
    }

    /// However many jobs end on a thread, it keeps at most `KEPT` spare states.
    #[test]
    fn a_thread_keeps_a_bounded_number_of_spare_states() {
        let meter = Meter::new();
        let jobs: Vec<Job> = (0..spare::KEPT + 10).map(|_| meter.start(spec())).collect();
        for job in jobs {
            job.finish();
        }
        assert_eq!(spare::kept(), spare::KEPT);
    }
}
