//! What the demo's requests cost: the sum of their cost-meter records, read per GameDay phase
//! ([`CostTotals::sample`]; the runner turns two samples into a phase's cost).

use brownout_cost::Meter;

/// What the service's requests cost: their meter's totals ([`Meter::totals`], the sum of the records its jobs
/// wrote, kept per thread by the meter).
#[derive(Debug)]
pub struct CostTotals {
    meter: Meter,
}

impl CostTotals {
    pub(crate) fn new(meter: Meter) -> Self {
        CostTotals { meter }
    }

    /// The totals so far, as the GameDay runner reads them.
    pub fn sample(&self) -> brownout_gameday::CostSample {
        let totals = self.meter.totals();
        brownout_gameday::CostSample::default()
            .requests(totals.jobs)
            .cpu_seconds(totals.cpu_seconds)
            .memory_byte_seconds(totals.memory_byte_seconds)
            .allocator_requests(totals.allocator_jobs)
    }
}
