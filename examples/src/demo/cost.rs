//! What the demo's requests cost: the sum of their cost-meter records, read per GameDay phase
//! ([`CostTotals::sample`]; the runner turns two samples into a phase's cost).

use std::sync::atomic::{AtomicU64, Ordering};

use brownout_cost::{JobRecord, MemoryMode};

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
        // Rounded half up by adding a half (`as` truncates, and saturates): `f64::round` is a libm call on
        // x86-64, once per request here.
        self.cpu_ns.fetch_add((record.cpu_seconds * 1e9 + 0.5) as u64, Ordering::Relaxed);
        self.memory_byte_ms.fetch_add((record.memory_byte_seconds * 1e3 + 0.5) as u64, Ordering::Relaxed);
        self.jobs.fetch_add(1, Ordering::Relaxed);
        if record.memory_mode == MemoryMode::Allocator {
            self.allocator_jobs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The totals so far, as the GameDay runner reads them.
    pub fn sample(&self) -> brownout_gameday::CostSample {
        brownout_gameday::CostSample::default()
            .requests(self.jobs.load(Ordering::Relaxed))
            .cpu_seconds(self.cpu_ns.load(Ordering::Relaxed) as f64 / 1e9)
            .memory_byte_seconds(self.memory_byte_ms.load(Ordering::Relaxed) as f64 / 1e3)
            .allocator_requests(self.allocator_jobs.load(Ordering::Relaxed))
    }
}
