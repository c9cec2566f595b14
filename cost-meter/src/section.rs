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

use std::cell::{Cell, RefCell};
use std::sync::{Arc, OnceLock};

use crate::CpuMode;
use crate::alloc::ledger::{self, Tag};
use crate::apportion::{Split, interval_total};
use crate::clock::thread_cpu_ns;
use crate::job::JobInner;

/// The longest an apportioning interval runs, in nanoseconds of TSC time, before its sections are settled.
pub(crate) const INTERVAL_NS: u64 = 1_000_000;
/// The most sections an interval holds before it is settled (one clock read per this many polls at least).
pub(crate) const MAX_ENTRIES: usize = 256;

/// The TSC, calibrated against the monotonic clock once per process (quanta falls back to the monotonic
/// clock where the TSC is not invariant).
fn tsc() -> &'static quanta::Clock {
    static TSC: OnceLock<quanta::Clock> = OnceLock::new();
    TSC.get_or_init(quanta::Clock::new)
}

/// One job's sections in the open interval.
struct Entry {
    job: Arc<JobInner>,
    /// Their TSC time, raw ticks.
    ticks: u64,
    /// What they were charged at once (the rest, or less, when the interval settles).
    provisional_ns: u64,
}

/// This thread's apportioning state.
struct Interval {
    /// Whether an interval is open (its start read).
    open: bool,
    /// The thread CPU clock and the TSC at the interval's start.
    cpu0: u64,
    tsc0: u64,
    /// TSC ticks of an interval's length ([`INTERVAL_NS`]), once known.
    length: u64,
    /// CPU charged by exactly measured sections during the interval: not the apportioned sections'.
    exact_ns: u64,
    /// The thread's last measured on-CPU ratio of its apportioned sections (charged / TSC time), ×2³².
    ratio: u64,
    entries: Vec<Entry>,
}

impl Interval {
    const fn new() -> Self {
        Interval { open: false, cpu0: 0, tsc0: 0, length: 0, exact_ns: 0, ratio: 1 << 32, entries: Vec::new() }
    }

    /// Reads the thread CPU clock, splits the interval's CPU over its entries and starts the next interval.
    fn settle(&mut self, now_tsc: u64) {
        let cpu = thread_cpu_ns();
        if self.open && !self.entries.is_empty() {
            let clock = tsc();
            let ticks: u64 = self.entries.iter().map(|e| e.ticks).sum();
            let polled_ns = clock.delta_as_nanos(0, ticks);
            let cpu_ns = cpu.saturating_sub(self.cpu0).saturating_sub(self.exact_ns);
            let total = interval_total(cpu_ns, polled_ns);
            let mut split = Split::new(total, ticks);
            for e in self.entries.drain(..) {
                e.job.settle(split.part(e.ticks), e.provisional_ns);
            }
            if polled_ns > 0 {
                self.ratio = ((u128::from(total) << 32) / u128::from(polled_ns)) as u64;
            }
        }
        self.entries.clear();
        if self.length == 0 {
            self.length = clock_ticks_per_interval(tsc());
        }
        self.open = true;
        self.cpu0 = cpu;
        self.tsc0 = now_tsc;
        self.exact_ns = 0;
    }
}

impl Drop for Interval {
    /// A thread that ends settles what it ran.
    fn drop(&mut self) {
        if !self.entries.is_empty() {
            self.settle(tsc().raw());
        }
    }
}

thread_local! {
    /// TSC ticks spent in the sections nested inside the current one, so it can leave them out.
    static NESTED_TICKS: Cell<u64> = const { Cell::new(0) };
    /// CPU charged by the sections nested inside the current one, so an exact section can leave it out.
    static NESTED_NS: Cell<u64> = const { Cell::new(0) };
    static INTERVAL: RefCell<Interval> = const { RefCell::new(Interval::new()) };
}

/// Charges the thread's CPU time and allocations to `job` until dropped (drop order restores the outer job,
/// also when the work panics).
pub(crate) struct Section<'a> {
    job: &'a Arc<JobInner>,
    previous_tag: Tag,
    outer_nested_ticks: u64,
    outer_nested_ns: u64,
    start_tsc: u64,
    start_ns: u64,
}

impl<'a> Section<'a> {
    #[inline]
    pub(crate) fn enter(job: &'a Arc<JobInner>) -> Self {
        let (outer_nested_ticks, outer_nested_ns, start_tsc, start_ns) = match job.cpu_mode() {
            CpuMode::WallEstimate => (0, 0, 0, 0),
            CpuMode::ThreadCpu => (NESTED_TICKS.replace(0), NESTED_NS.replace(0), tsc().raw(), thread_cpu_ns()),
            CpuMode::Apportioned => {
                let start_tsc = tsc().raw();
                let _ = INTERVAL.try_with(|i| {
                    if let Ok(mut i) = i.try_borrow_mut()
                        && !i.open
                    {
                        i.settle(start_tsc);
                    }
                });
                (NESTED_TICKS.replace(0), NESTED_NS.replace(0), start_tsc, 0)
            }
        };
        let previous_tag = ledger::enter(job.tag());
        Section { job, previous_tag, outer_nested_ticks, outer_nested_ns, start_tsc, start_ns }
    }
}

impl Drop for Section<'_> {
    #[inline]
    fn drop(&mut self) {
        match self.job.cpu_mode() {
            CpuMode::WallEstimate => ledger::leave(self.previous_tag),
            CpuMode::ThreadCpu => {
                let spent_ns = thread_cpu_ns().saturating_sub(self.start_ns);
                let spent_ticks = tsc().raw().saturating_sub(self.start_tsc);
                // The bookkeeping below is the thread's, not the job's (its allocations included).
                ledger::leave(self.previous_tag);
                let charged = spent_ns.saturating_sub(NESTED_NS.get());
                self.job.charge_cpu(charged);
                NESTED_TICKS.set(self.outer_nested_ticks + spent_ticks);
                NESTED_NS.set(self.outer_nested_ns + charged);
                // The apportioned sections of this thread's interval are not charged this CPU.
                let _ = INTERVAL.try_with(|i| {
                    if let Ok(mut i) = i.try_borrow_mut()
                        && i.open
                    {
                        i.exact_ns += charged;
                    }
                });
            }
            CpuMode::Apportioned => {
                let clock = tsc();
                let now = clock.raw();
                ledger::leave(self.previous_tag);
                let spent_ticks = now.saturating_sub(self.start_tsc);
                let own = spent_ticks.saturating_sub(NESTED_TICKS.get());
                let charged = INTERVAL
                    .try_with(|i| {
                        let mut i = i.try_borrow_mut().ok()?;
                        let own_ns = clock.delta_as_nanos(0, own);
                        let provisional = ((u128::from(own_ns) * u128::from(i.ratio)) >> 32) as u64;
                        self.job.add_job_cpu(provisional);
                        match i.entries.last_mut() {
                            Some(last) if Arc::ptr_eq(&last.job, self.job) => {
                                last.ticks += own;
                                last.provisional_ns += provisional;
                            }
                            _ => i.entries.push(Entry {
                                job: Arc::clone(self.job),
                                ticks: own,
                                provisional_ns: provisional,
                            }),
                        }
                        if now.saturating_sub(i.tsc0) >= i.length || i.entries.len() >= MAX_ENTRIES {
                            i.settle(now);
                        }
                        Some(provisional)
                    })
                    .ok()
                    .flatten()
                    // A thread being torn down (or re-entered from a settle): the section is charged its
                    // TSC time.
                    .unwrap_or_else(|| {
                        let ns = clock.delta_as_nanos(0, own);
                        self.job.charge_cpu(ns);
                        ns
                    });
                NESTED_TICKS.set(self.outer_nested_ticks + spent_ticks);
                NESTED_NS.set(self.outer_nested_ns + charged);
            }
        }
    }
}

/// The raw TSC ticks in [`INTERVAL_NS`].
fn clock_ticks_per_interval(clock: &quanta::Clock) -> u64 {
    // delta_as_nanos is linear in the ticks: find the ticks of 1 ms from the ns of 2⁴⁰ ticks.
    let probe = 1u64 << 40;
    let ns = clock.delta_as_nanos(0, probe).max(1);
    ((u128::from(INTERVAL_NS) * u128::from(probe)) / u128::from(ns)).max(1) as u64
}

/// Settles the calling thread's apportioning interval now: one read of the thread CPU clock, and the
/// [`Apportioned`](crate::CpuMode::Apportioned) polls it ran since the last one are charged their exact
/// shares instead of their provisional charge. A thread settles by itself about every millisecond while it
/// polls, and when it exits; [`Job::finish`](crate::Job::finish) settles its own thread for jobs that are not
/// per request. Give it to a runtime's `on_thread_park` hook and a worker settles before it sleeps, so
/// per-request records are exact too (one clock read per park):
///
/// ```
/// let runtime = tokio::runtime::Builder::new_multi_thread()
///     .on_thread_park(cost_meter::settle_thread)
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn settle_thread() {
    let _ = INTERVAL.try_with(|i| {
        if let Ok(mut i) = i.try_borrow_mut()
            && !i.entries.is_empty()
        {
            i.settle(tsc().raw());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_about_a_millisecond_of_ticks() {
        let clock = tsc();
        let ticks = clock_ticks_per_interval(clock);
        let ns = clock.delta_as_nanos(0, ticks);
        assert!((ns as i64 - INTERVAL_NS as i64).abs() <= 1_000, "{ticks} ticks are {ns} ns");
    }
}
