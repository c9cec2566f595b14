//! Allocator cases shared by the criterion run (`benches/cost.rs`) and the instruction counts
//! (`benches/alloc_instructions.rs`): a 64-byte alloc + free through the system allocator, cost-meter's
//! allocator outside and inside a job, tracking-allocator (tracking on, a no-op tracker, inside a group), and a
//! wrapper that keeps one global atomic counter (the naive attributing allocator). Each is called through
//! `GlobalAlloc` directly, so all run in one binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use brownout_cost::{CostAllocator, JobSpec, Labels, Meter};

/// One global counter of live bytes, updated by every thread.
pub struct GlobalCounter {
    live: AtomicU64,
}

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for GlobalCounter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.live.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: the caller's layout, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size() as u64, Relaxed);
        // SAFETY: the caller's pointer and layout, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

struct NoopTracker;

impl tracking_allocator::AllocationTracker for NoopTracker {
    fn allocated(&self, _: usize, _: usize, _: usize, _: tracking_allocator::AllocationGroupId) {}
    fn deallocated(
        &self,
        _: usize,
        _: usize,
        _: usize,
        _: tracking_allocator::AllocationGroupId,
        _: tracking_allocator::AllocationGroupId,
    ) {
    }
}

static SYSTEM: System = System;
static COST: CostAllocator = CostAllocator::system();
static TRACKING: tracking_allocator::Allocator<System> = tracking_allocator::Allocator::system();
static COUNTER: GlobalCounter = GlobalCounter { live: AtomicU64::new(0) };

const LAYOUT: Layout = match Layout::from_size_align(64, 8) {
    Ok(l) => l,
    Err(_) => panic!("a valid layout"),
};

/// An allocator the benches can share between threads.
pub type Alloc = &'static (dyn GlobalAlloc + Sync);

/// How a thread is set up around its timed loop.
#[derive(Debug, Clone, Copy)]
pub enum Setup {
    /// Nothing.
    Plain,
    /// Inside a cost-meter job's section.
    InJob,
    /// Inside a tracking-allocator group.
    TrackingGroup,
}

/// Every case: name, allocator, setup.
pub const CASES: [(&str, Alloc, Setup); 5] = [
    ("system", &SYSTEM, Setup::Plain),
    ("cost_meter/outside_job", &COST, Setup::Plain),
    ("cost_meter/in_job", &COST, Setup::InJob),
    ("tracking_allocator", &TRACKING, Setup::TrackingGroup),
    ("global_atomic_counter", &COUNTER, Setup::Plain),
];

/// Turns tracking-allocator's tracking on (a no-op tracker). Idempotent. The benches that use these cases make
/// cost-meter's allocator their global allocator, so its jobs meter memory.
pub fn prepare() {
    let _ = tracking_allocator::AllocationRegistry::set_global_tracker(NoopTracker);
    tracking_allocator::AllocationRegistry::enable_tracking();
}

/// One 64-byte alloc + free.
#[inline]
pub fn pair(a: &(dyn GlobalAlloc + Sync)) {
    // SAFETY: a valid non-zero layout; the block is freed with it at once.
    unsafe {
        let p = a.alloc(LAYOUT);
        black_box(p);
        a.dealloc(p, LAYOUT);
    }
}

/// Runs `iters` pairs on this thread with `setup` around the loop (after `barrier`, if any); the loop's time.
pub fn timed(a: Alloc, setup: Setup, meter: &Meter, iters: u64, barrier: Option<&Barrier>) -> Duration {
    let run = || {
        if let Some(b) = barrier {
            b.wait();
        }
        let start = Instant::now();
        // Only the loop is counted under callgrind (`alloc_instructions`): the job's set-up reads the TSC's
        // calibration, which under valgrind takes a varying number of instructions.
        crate::measured(|| {
            for _ in 0..iters {
                pair(a);
            }
        });
        start.elapsed()
    };
    match setup {
        Setup::Plain => run(),
        Setup::InJob => {
            let job = meter.start(JobSpec::new("bench", Labels::new("bench", "alloc")));
            let elapsed = job.run(run);
            job.finish();
            elapsed
        }
        Setup::TrackingGroup => {
            let mut token = tracking_allocator::AllocationGroupToken::register().expect("a group token");
            let _guard = token.enter();
            run()
        }
    }
}

/// Runs case `name` for `n` pairs on this thread; None for an unknown case.
pub fn run_case(name: &str, n: u64) -> Option<Duration> {
    let (_, a, setup) = CASES.into_iter().find(|(case, ..)| *case == name)?;
    prepare();
    Some(timed(a, setup, &Meter::new(), n, None))
}
