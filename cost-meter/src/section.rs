//! A stretch of one thread's work charged to one job: the thread CPU clock read at both ends, the allocator
//! pointed at the job in between. Nested sections charge the innermost job only.

use std::cell::Cell;

use crate::CpuMode;
use crate::alloc::ledger::{self, Tag};
use crate::clock::thread_cpu_ns;
use crate::job::JobInner;

thread_local! {
    /// CPU time charged by the sections nested inside the current one, so it can leave it out.
    static NESTED_NS: Cell<u64> = const { Cell::new(0) };
}

/// Charges the thread's CPU time and allocations to `job` until dropped (drop order restores the outer job,
/// also when the work panics).
pub(crate) struct Section<'a> {
    job: &'a JobInner,
    previous_tag: Tag,
    outer_nested: u64,
    start_ns: u64,
}

impl<'a> Section<'a> {
    #[inline]
    pub(crate) fn enter(job: &'a JobInner) -> Self {
        let previous_tag = ledger::enter(job.tag());
        let (outer_nested, start_ns) = match job.cpu_mode() {
            CpuMode::ThreadCpu => (NESTED_NS.replace(0), thread_cpu_ns()),
            CpuMode::WallEstimate => (0, 0),
        };
        Section { job, previous_tag, outer_nested, start_ns }
    }
}

impl Drop for Section<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.job.cpu_mode() == CpuMode::ThreadCpu {
            let spent = thread_cpu_ns().saturating_sub(self.start_ns);
            let nested = NESTED_NS.get();
            self.job.charge_cpu(spent.saturating_sub(nested));
            NESTED_NS.set(self.outer_nested + spent);
        }
        ledger::leave(self.previous_tag);
    }
}
