//! A stretch of one thread's work charged to one job, the allocator pointed at the job in between. Nested
//! sections charge the innermost job only. Three ways to measure its CPU, after the job's [`CpuMode`]:
//!
//! - [`CpuMode::ThreadCpu`]: the thread CPU clock read at both ends (two system calls);
//! - [`CpuMode::Apportioned`]: the section timed with the TSC (two reads of a counter, no system call),
//!   charged at once at the thread's last measured on-CPU ratio, and settled when the thread's interval
//!   closes: every [`INTERVAL`] of TSC time (or [`MAX_ENTRIES`] sections) the thread CPU clock is read once
//!   and the interval's CPU is split over the sections that ran in it by their TSC time
//!   ([`apportion`](crate::apportion));
//! - [`CpuMode::WallEstimate`]: no clock (the job's wall time is its figure).

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use brownout_foundation::process::thread_cpu_ns;

use crate::CpuMode;
use crate::alloc::ledger::{self, Tag};
use crate::apportion::{Split, interval_total};
use crate::job::JobInner;
use crate::spare::JobRef;

/// The longest an apportioning interval runs, in nanoseconds of TSC time, before its sections are settled.
pub(crate) const INTERVAL_NS: u64 = 1_000_000;
/// The most sections an interval holds before it is settled (one clock read per this many polls at least).
pub(crate) const MAX_ENTRIES: usize = 256;
/// A gap between two polls on a thread shorter than this is the runtime's own work, on the CPU when the
/// thread is; a longer one is taken as parked (see [`interval_total`]).
pub(crate) const SHORT_GAP_NS: u64 = 50_000;

/// The TSC, calibrated against the monotonic clock once per process (quanta falls back to the monotonic
/// clock where the TSC is not invariant).
fn tsc() -> &'static quanta::Clock {
    static TSC: OnceLock<quanta::Clock> = OnceLock::new();
    TSC.get_or_init(quanta::Clock::new)
}

/// One job's sections in the open interval.
struct Entry {
    job: JobRef,
    /// Their TSC time, raw ticks.
    ticks: u64,
    /// What they were charged at once (the rest, or less, when the interval settles).
    provisional_ns: u64,
}

/// This thread's apportioning state.
struct Interval {
    /// Whether an interval is open (its start read).
    open: bool,
    /// The thread CPU clock, the TSC and the monotonic clock at the interval's start.
    cpu0: u64,
    tsc0: u64,
    wall0: Option<Instant>,
    /// TSC ticks of an interval's length ([`INTERVAL_NS`]) and of a short gap ([`SHORT_GAP_NS`]), once known.
    length: u64,
    short_gap: u64,
    /// The TSC when the last top-level apportioned section ended (or the interval started).
    last_end: u64,
    /// The TSC time of the short gaps between the interval's sections.
    short_gaps: u64,
    /// How deep the apportioned sections running now nest (gaps are counted between top-level ones).
    depth: u32,
    /// Whether the runtime tells this thread when it parks ([`on_thread_park`], [`on_thread_unpark`]): then
    /// every gap between polls is the runtime's work, whatever its length.
    hooked: bool,
    /// CPU charged by exactly measured sections during the interval: not the apportioned sections'.
    exact_ns: u64,
    /// TSC ticks spent, and CPU charged, by the sections nested inside the running one, so it can leave
    /// them out.
    nested_ticks: u64,
    nested_ns: u64,
    /// What the last interval charged per TSC tick of its sections, in nanoseconds ×2³² (its sections'
    /// on-CPU ratio times the TSC's nanoseconds per tick): the provisional rate of the next one.
    rate: u64,
    entries: Vec<Entry>,
}

impl Interval {
    const fn new() -> Self {
        Interval {
            open: false,
            cpu0: 0,
            tsc0: 0,
            wall0: None,
            length: 0,
            short_gap: 0,
            last_end: 0,
            short_gaps: 0,
            depth: 0,
            hooked: false,
            exact_ns: 0,
            nested_ticks: 0,
            nested_ns: 0,
            rate: 0,
            entries: Vec::new(),
        }
    }

    /// Takes the nested sections' ticks and CPU, for a section that starts (it gives them back at its end).
    fn take_nested(&mut self) -> (u64, u64) {
        (std::mem::take(&mut self.nested_ticks), std::mem::take(&mut self.nested_ns))
    }

    /// Reads the thread CPU clock, splits the interval's CPU over its entries and starts the next interval.
    ///
    /// The TSC's ticks are converted to nanoseconds by the interval's own monotonic-clock time (one vDSO read
    /// per interval), not by a calibration made once: a TSC frequency estimated 1% off would charge 1% off.
    fn settle(&mut self) {
        let cpu = thread_cpu_ns();
        let (now_tsc, wall) = (tsc().raw(), Instant::now());
        if let (true, Some(wall0)) = (self.open && !self.entries.is_empty(), self.wall0) {
            let ticks: u64 = self.entries.iter().map(|e| e.ticks).sum();
            let wall_ns = wall.duration_since(wall0).as_nanos();
            let interval_ticks = u128::from(now_tsc.saturating_sub(self.tsc0)).max(1);
            let polled_ns = (u128::from(ticks) * wall_ns / interval_ticks) as u64;
            let cpu_ns = cpu.saturating_sub(self.cpu0).saturating_sub(self.exact_ns);
            let total = interval_total(cpu_ns, polled_ns, ticks, self.short_gaps);
            let mut split = Split::new(total, ticks);
            // The meter's total is one shared counter: charged once per run of entries of the same meter.
            let mut run: Option<(JobRef, u64)> = None;
            for e in self.entries.drain(..) {
                let share = split.part(e.ticks);
                e.job.settle(share, e.provisional_ns);
                match &mut run {
                    Some((first, sum)) if first.same_meter(&e.job) => *sum += share,
                    _ => {
                        if let Some((first, sum)) = run.replace((e.job, share)) {
                            first.charge_meter(sum);
                        }
                    }
                }
            }
            if let Some((first, sum)) = run {
                first.charge_meter(sum);
            }
            if ticks > 0 {
                self.rate = ((u128::from(total) << 32) / u128::from(ticks)) as u64;
            }
        }
        self.entries.clear();
        if self.length == 0 {
            let clock = tsc();
            self.length = ticks_in(clock, INTERVAL_NS);
            self.short_gap = ticks_in(clock, SHORT_GAP_NS);
            self.rate = ticks_in_rate(clock);
        }
        self.open = true;
        self.last_end = now_tsc;
        self.short_gaps = 0;
        self.cpu0 = cpu;
        self.tsc0 = now_tsc;
        self.wall0 = Some(wall);
        self.exact_ns = 0;
    }
}

impl Drop for Interval {
    /// A thread that ends settles what it ran.
    fn drop(&mut self) {
        if !self.entries.is_empty() {
            self.settle();
        }
    }
}

thread_local! {
    static INTERVAL: RefCell<Interval> = const { RefCell::new(Interval::new()) };
}

/// Runs `f` on this thread's apportioning state: `None` while the thread is torn down or re-entered (from a
/// settle that drops a job's last handle).
#[inline]
fn with_interval<R>(f: impl FnOnce(&mut Interval) -> R) -> Option<R> {
    INTERVAL.try_with(|i| i.try_borrow_mut().ok().map(|mut i| f(&mut i))).ok().flatten()
}

/// Charges the thread's CPU time and allocations to `job` until dropped (drop order restores the outer job,
/// also when the work panics).
pub(crate) struct Section<'a> {
    job: &'a Arc<JobInner>,
    mode: CpuMode,
    previous_tag: Tag,
    outer_nested_ticks: u64,
    outer_nested_ns: u64,
    start_tsc: u64,
    start_ns: u64,
}

impl<'a> Section<'a> {
    /// A poll of one of the job's futures: measured as the job's [`CpuMode`] says.
    #[inline]
    pub(crate) fn enter(job: &'a Arc<JobInner>) -> Self {
        Self::enter_as(job, job.cpu_mode())
    }

    /// A closure or a thread of the job's, long by nature: an apportioned job's measured exactly.
    pub(crate) fn enter_closure(job: &'a Arc<JobInner>) -> Self {
        let mode = match job.cpu_mode() {
            CpuMode::Apportioned => CpuMode::ThreadCpu,
            mode => mode,
        };
        Self::enter_as(job, mode)
    }

    #[inline]
    fn enter_as(job: &'a Arc<JobInner>, mode: CpuMode) -> Self {
        let (outer_nested_ticks, outer_nested_ns, start_tsc, start_ns) = match mode {
            CpuMode::WallEstimate | CpuMode::ChildRusage => (0, 0, 0, 0),
            CpuMode::ThreadCpu => {
                let (ticks, ns) = with_interval(Interval::take_nested).unwrap_or_default();
                (ticks, ns, tsc().raw(), thread_cpu_ns())
            }
            CpuMode::Apportioned => {
                let start_tsc = tsc().raw();
                let (ticks, ns) = with_interval(|i| {
                    if !i.open {
                        i.settle();
                    } else if i.depth == 0 {
                        let gap = start_tsc.saturating_sub(i.last_end);
                        if i.hooked || gap < i.short_gap {
                            i.short_gaps += gap;
                        }
                    }
                    i.depth += 1;
                    i.take_nested()
                })
                .unwrap_or_default();
                (ticks, ns, start_tsc, 0)
            }
        };
        let previous_tag = ledger::enter(job.tag());
        Section { job, mode, previous_tag, outer_nested_ticks, outer_nested_ns, start_tsc, start_ns }
    }
}

impl Drop for Section<'_> {
    #[inline]
    fn drop(&mut self) {
        match self.mode {
            CpuMode::WallEstimate | CpuMode::ChildRusage => ledger::leave(self.previous_tag),
            CpuMode::ThreadCpu => {
                let spent_ns = thread_cpu_ns().saturating_sub(self.start_ns);
                let spent_ticks = tsc().raw().saturating_sub(self.start_tsc);
                // The bookkeeping below is the thread's, not the job's (its allocations included).
                ledger::leave(self.previous_tag);
                let charged = with_interval(|i| {
                    let charged = spent_ns.saturating_sub(i.nested_ns);
                    i.nested_ticks = self.outer_nested_ticks + spent_ticks;
                    i.nested_ns = self.outer_nested_ns + charged;
                    // The apportioned sections of this thread's interval are not charged this CPU.
                    if i.open {
                        i.exact_ns += charged;
                    }
                    charged
                })
                .unwrap_or(spent_ns);
                self.job.charge_cpu(charged);
            }
            CpuMode::Apportioned => {
                let now = tsc().raw();
                ledger::leave(self.previous_tag);
                let spent_ticks = now.saturating_sub(self.start_tsc);
                let job = self.job;
                let (outer_ticks, outer_ns) = (self.outer_nested_ticks, self.outer_nested_ns);
                let settled = with_interval(|i| {
                    let own = spent_ticks.saturating_sub(i.nested_ticks);
                    let provisional = ((u128::from(own) * u128::from(i.rate)) >> 32) as u64;
                    i.nested_ticks = outer_ticks + spent_ticks;
                    i.nested_ns = outer_ns + provisional;
                    i.depth = i.depth.saturating_sub(1);
                    job.add_job_cpu(provisional);
                    // A job polled again soon after (a request's polls, a task that yields) shares its entry.
                    let recent = i.entries.len().saturating_sub(4);
                    match i.entries[recent..].iter_mut().rev().find(|e| Arc::ptr_eq(&e.job, job)) {
                        Some(e) => {
                            e.ticks += own;
                            e.provisional_ns += provisional;
                        }
                        None => i.entries.push(Entry {
                            job: JobRef::new(Arc::clone(job)),
                            ticks: own,
                            provisional_ns: provisional,
                        }),
                    }
                    if i.depth == 0 {
                        i.last_end = now;
                        if now.saturating_sub(i.tsc0) >= i.length || i.entries.len() >= MAX_ENTRIES {
                            i.settle();
                        }
                    }
                });
                if settled.is_none() {
                    // A thread being torn down (or re-entered from a settle): charged its TSC time.
                    job.charge_cpu(tsc().delta_as_nanos(self.start_tsc, now));
                }
            }
        }
    }
}

/// Tells cost-meter that the calling thread is about to park (sleep until woken): its apportioning interval
/// settles now, so the park's time is in no interval. Give it to the runtime with [`on_thread_unpark`], and the
/// gaps between polls are told apart from parks exactly (without them, a gap longer than 50 µs is taken as a
/// park); each park then costs one read of the thread CPU clock. The thread's batch of per-request jobs' counts
/// reaches the Prometheus counters too (see [`Meter`](crate::Meter)'s metrics).
///
/// ```
/// let runtime = tokio::runtime::Builder::new_multi_thread()
///     .on_thread_park(brownout_cost::on_thread_park)
///     .on_thread_unpark(brownout_cost::on_thread_unpark)
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn on_thread_park() {
    let _ = INTERVAL.try_with(|i| {
        if let Ok(mut i) = i.try_borrow_mut() {
            i.hooked = true;
            if !i.entries.is_empty() && i.depth == 0 {
                i.settle();
            }
        }
    });
    crate::counters::flush_thread();
}

/// Tells cost-meter that the calling thread woke from a park: the time since [`on_thread_park`] is no gap
/// between polls.
pub fn on_thread_unpark() {
    let _ = INTERVAL.try_with(|i| {
        if let Ok(mut i) = i.try_borrow_mut() {
            i.hooked = true;
            i.last_end = tsc().raw();
        }
    });
}

/// The TSC's nanoseconds per tick ×2³², as calibrated: the provisional rate before a first interval settles.
fn ticks_in_rate(clock: &quanta::Clock) -> u64 {
    let probe = 1u64 << 32;
    clock.delta_as_nanos(0, probe).max(1)
}

/// The raw TSC ticks in `ns` nanoseconds.
fn ticks_in(clock: &quanta::Clock, ns: u64) -> u64 {
    // delta_as_nanos is linear in the ticks: scale by the nanoseconds of 2⁴⁰ ticks.
    let probe = 1u64 << 40;
    let probe_ns = clock.delta_as_nanos(0, probe).max(1);
    ((u128::from(ns) * u128::from(probe)) / u128::from(probe_ns)).max(1) as u64
}

/// Settles the calling thread's apportioning interval now: one read of the thread CPU clock, and the
/// [`Apportioned`](crate::CpuMode::Apportioned) polls it ran since the last one are charged their exact
/// shares instead of their provisional charge. A thread settles by itself about every millisecond while it
/// polls, and when it exits; [`Job::finish`](crate::Job::finish) settles its own thread for jobs that are not
/// per request. Give it to a runtime's `on_thread_stop` hook and a worker's last polls are settled before the
/// runtime's shutdown returns; [`on_thread_park`] settles at each park. The thread's batch of per-request jobs'
/// counts is added to the counters too.
pub fn settle_thread() {
    let _ = INTERVAL.try_with(|i| {
        if let Ok(mut i) = i.try_borrow_mut()
            && !i.entries.is_empty()
        {
            i.settle();
        }
    });
    crate::counters::flush_thread();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_about_a_millisecond_of_ticks() {
        let clock = tsc();
        let ticks = ticks_in(clock, INTERVAL_NS);
        let ns = clock.delta_as_nanos(0, ticks);
        assert!((ns as i64 - INTERVAL_NS as i64).abs() <= 1_000, "{ticks} ticks are {ns} ns");
    }
}
