//! cost-meter's costs beside the floor and the peers, in the same run:
//! - `cost_poll`: one poll of a pending future, bare and through `Job::meter` (thread-CPU and wall-estimate
//!   modes), next to one and two reads of the thread CPU clock (two reads per poll are the floor of exact
//!   per-poll metering);
//! - `cost_alloc/{1_thread,2_threads}`: a 64-byte alloc + free through the system allocator, cost-meter's
//!   allocator outside and inside a job, tracking-allocator (tracking on, a no-op tracker, inside a group), and
//!   a wrapper that keeps one global atomic counter (what a naive attributing allocator does). Each allocator
//!   is called through `GlobalAlloc` directly, so all run in one binary.
//!
//! Two threads: each of 2 threads makes `iters` alloc+free pairs after a barrier and times its own loop; the
//! case reports the slower thread's time per pair.
//!
//! Run: `cargo bench -p benches --bench cost`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use cost_meter::{CostAllocator, JobSpec, Labels, Meter, thread_cpu_ns};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

/// A future that never completes: polling it measures the wrapper alone.
struct Pending;

impl Future for Pending {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
}

fn poll(c: &mut Criterion) {
    let mut g = c.benchmark_group("cost_poll");
    configure(&mut g);
    let mut cx = Context::from_waker(Waker::noop());
    let meter = Meter::new();

    g.bench_function("bare", |b| {
        let mut fut = std::pin::pin!(Pending);
        b.iter(|| black_box(fut.as_mut().poll(&mut cx)))
    });
    g.bench_function("one_thread_cpu_read", |b| b.iter(|| black_box(thread_cpu_ns())));
    g.bench_function("two_thread_cpu_reads", |b| b.iter(|| black_box(thread_cpu_ns()) + black_box(thread_cpu_ns())));
    let job = meter.start(JobSpec::new("bench", Labels::new("bench", "poll")));
    g.bench_function("metered/thread_cpu", |b| {
        let mut fut = std::pin::pin!(job.meter(Pending));
        b.iter(|| black_box(fut.as_mut().poll(&mut cx)))
    });
    let wall = meter.start(JobSpec::new("bench", Labels::new("bench", "poll")).wall_estimate());
    g.bench_function("metered/wall_estimate", |b| {
        let mut fut = std::pin::pin!(wall.meter(Pending));
        b.iter(|| black_box(fut.as_mut().poll(&mut cx)))
    });
    g.finish();
}

/// One global counter of live bytes, updated by every thread: the naive way to attribute allocations.
struct GlobalCounter {
    live: AtomicU64,
}

unsafe impl GlobalAlloc for GlobalCounter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.live.fetch_add(layout.size() as u64, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size() as u64, Relaxed);
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

#[inline]
fn pair(a: &(dyn GlobalAlloc + Sync)) {
    // SAFETY: a valid non-zero layout; the block is freed with it at once.
    unsafe {
        let p = a.alloc(LAYOUT);
        black_box(p);
        a.dealloc(p, LAYOUT);
    }
}

/// How a thread is set up around its timed loop.
#[derive(Clone, Copy)]
enum Setup {
    Plain,
    InJob,
    TrackingGroup,
}

/// Runs `iters` alloc+free pairs on this thread with `setup` around the loop; the loop's time.
fn timed(
    a: &'static (dyn GlobalAlloc + Sync),
    setup: Setup,
    meter: &Meter,
    iters: u64,
    barrier: Option<&Barrier>,
) -> Duration {
    let run = || {
        if let Some(b) = barrier {
            b.wait();
        }
        let start = Instant::now();
        for _ in 0..iters {
            pair(a);
        }
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

const CASES: [(&str, &(dyn GlobalAlloc + Sync), Setup); 5] = [
    ("system", &SYSTEM, Setup::Plain),
    ("cost_meter/outside_job", &COST, Setup::Plain),
    ("cost_meter/in_job", &COST, Setup::InJob),
    ("tracking_allocator", &TRACKING, Setup::TrackingGroup),
    ("global_atomic_counter", &COUNTER, Setup::Plain),
];

fn alloc(c: &mut Criterion) {
    let _ = tracking_allocator::AllocationRegistry::set_global_tracker(NoopTracker);
    tracking_allocator::AllocationRegistry::enable_tracking();
    let meter = Meter::new();
    // The allocator serves one allocation here so jobs claim memory slots (as when it is the global one).
    pair(&COST);

    let mut g = c.benchmark_group("cost_alloc/1_thread");
    configure(&mut g);
    for (name, a, setup) in CASES {
        g.bench_function(name, |b| b.iter_custom(|n| timed(a, setup, &meter, n, None)));
    }
    g.finish();

    let mut g = c.benchmark_group("cost_alloc/2_threads");
    configure(&mut g);
    for (name, a, setup) in CASES {
        g.bench_function(name, |b| {
            b.iter_custom(|n| {
                let barrier = Barrier::new(2);
                std::thread::scope(|s| {
                    let handles: Vec<_> =
                        (0..2).map(|_| s.spawn(|| timed(a, setup, &meter, n, Some(&barrier)))).collect();
                    handles.into_iter().map(|h| h.join().expect("bench thread")).max().unwrap_or_default()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, poll, alloc);
criterion_main!(benches);
