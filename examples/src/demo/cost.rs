//! What the demo's requests cost: the sum of their cost-meter records, read per GameDay phase.

use std::sync::atomic::{AtomicU64, Ordering};

use cost_meter::{JobRecord, MemoryMode};

/// What the service's requests cost, summed from their cost-meter records.
#[derive(Debug, Default)]
pub struct CostTotals {
    cpu_ns: AtomicU64,
    memory_byte_ms: AtomicU64,
    jobs: AtomicU64,
    allocator_jobs: AtomicU64,
}

impl CostTotals {
    pub(crate) fn add(&self, record: &JobRecord) {
        self.cpu_ns.fetch_add((record.cpu_seconds * 1e9).round() as u64, Ordering::Relaxed);
        self.memory_byte_ms.fetch_add((record.memory_byte_seconds * 1e3).round() as u64, Ordering::Relaxed);
        self.jobs.fetch_add(1, Ordering::Relaxed);
        if record.memory_mode == MemoryMode::Allocator {
            self.allocator_jobs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The totals so far, as the GameDay runner reads them.
    pub fn sample(&self) -> chaos_gameday::CostSample {
        let s = self.snapshot();
        chaos_gameday::CostSample {
            requests: s.jobs,
            cpu_seconds: s.cpu_ns as f64 / 1e9,
            memory_byte_seconds: s.memory_byte_ms as f64 / 1e3,
            allocator_requests: s.allocator_jobs,
        }
    }

    /// The totals so far.
    pub fn snapshot(&self) -> CostSnapshot {
        CostSnapshot {
            cpu_ns: self.cpu_ns.load(Ordering::Relaxed),
            memory_byte_ms: self.memory_byte_ms.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
            allocator_jobs: self.allocator_jobs.load(Ordering::Relaxed),
        }
    }
}

/// [`CostTotals`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostSnapshot {
    cpu_ns: u64,
    memory_byte_ms: u64,
    jobs: u64,
    allocator_jobs: u64,
}

/// What the requests finished between two snapshots cost.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PhaseCost {
    /// Requests metered (finished) in the span.
    pub requests: u64,
    /// CPU time they used, from the thread CPU clock.
    pub cpu_seconds: f64,
    /// CPU time per request, in milliseconds.
    pub cpu_ms_per_request: f64,
    /// Their live heap bytes integrated over their lives, in byte-seconds.
    pub memory_byte_seconds: f64,
    /// The same in GB-hours.
    pub memory_gb_hours: f64,
    /// `allocator` when every request's memory was measured by cost-meter's allocator, else `reservation`.
    pub memory_mode: &'static str,
}

impl CostSnapshot {
    /// The cost of what finished between `earlier` and this snapshot.
    pub fn since(self, earlier: CostSnapshot) -> PhaseCost {
        let requests = self.jobs - earlier.jobs;
        let cpu_seconds = (self.cpu_ns - earlier.cpu_ns) as f64 / 1e9;
        let memory_byte_seconds = (self.memory_byte_ms - earlier.memory_byte_ms) as f64 / 1e3;
        let metered = self.allocator_jobs - earlier.allocator_jobs;
        PhaseCost {
            requests,
            cpu_seconds,
            cpu_ms_per_request: if requests == 0 { 0.0 } else { cpu_seconds * 1e3 / requests as f64 },
            memory_byte_seconds,
            memory_gb_hours: cost_meter::gb_hours(memory_byte_seconds),
            memory_mode: if metered == requests { "allocator" } else { "reservation" },
        }
    }
}
