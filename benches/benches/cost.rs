//! cost-meter's costs beside the floor and the peers, in the same run:
//! - `cost_poll`: one poll of a pending future, bare and through `Job::meter` in each CPU mode (apportioned,
//!   the default of `CostLayer`; the thread CPU clock around every poll; wall estimate), next to one and two
//!   reads of the thread CPU clock (two reads per poll are the floor of exact per-poll metering).
//!   `metered/apportioned_2_jobs` polls two jobs' futures in turn, two polls per iteration (each poll then
//!   opens its own entry in the thread's interval, as requests on a worker do);
//! - `cost_alloc/{1_thread,2_threads}`: a 64-byte alloc + free through the system allocator, cost-meter's
//!   allocator outside and inside a job, tracking-allocator (tracking on, a no-op tracker, inside a group), and
//!   a wrapper that keeps one global atomic counter (what a naive attributing allocator does); the cases live
//!   in `benches::alloc`, shared with the instruction counts (`--bench alloc_instructions`).
//!
//! Two threads: each of 2 threads makes `iters` alloc+free pairs after a barrier and times its own loop; the
//! case reports the slower thread's time per pair.
//!
//! Run: `cargo bench -p benches --bench cost`.

/// cost-meter's allocator is this binary's global allocator, so its jobs meter memory (as in a user's binary);
/// each case still calls its own allocator directly.
#[global_allocator]
static GLOBAL: brownout_cost::CostAllocator = brownout_cost::CostAllocator::system();

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use benches::alloc::{CASES, prepare, timed};
use brownout_cost::{JobSpec, Labels, Meter, thread_cpu_ns};
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
    let spec = || JobSpec::new("bench", Labels::new("bench", "poll")).apportioned();
    let (apportioned, other) = (meter.start(spec()), meter.start(spec()));
    g.bench_function("metered/apportioned", |b| {
        let mut fut = std::pin::pin!(apportioned.meter(Pending));
        b.iter(|| black_box(fut.as_mut().poll(&mut cx)))
    });
    g.bench_function("metered/apportioned_2_jobs", |b| {
        let mut first = std::pin::pin!(apportioned.meter(Pending));
        let mut second = std::pin::pin!(other.meter(Pending));
        b.iter(|| (black_box(first.as_mut().poll(&mut cx)), black_box(second.as_mut().poll(&mut cx))))
    });
    let wall = meter.start(JobSpec::new("bench", Labels::new("bench", "poll")).wall_estimate());
    g.bench_function("metered/wall_estimate", |b| {
        let mut fut = std::pin::pin!(wall.meter(Pending));
        b.iter(|| black_box(fut.as_mut().poll(&mut cx)))
    });
    g.finish();
}

fn alloc(c: &mut Criterion) {
    prepare();
    let meter = Meter::new();

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
