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
//! - `cost_layer/{1_thread,2_threads}`: a request through a trivial HTTP service, bare and behind
//!   `CostLayer` (wall estimate; apportioned CPU, its default), with a Prometheus recorder installed: what
//!   the per-request job costs, and what it adds when two workers serve requests at once and share the
//!   layer's state (its meter, the allocator's slot table; the Prometheus counters get per-thread batches).
//!
//! Two threads: each of 2 threads makes `iters` alloc+free pairs (or requests, each thread through its own
//! clone of the service, as each connection gets one) after a barrier and times its own loop; the case
//! reports the slower thread's time per pair (per request).
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
use std::time::{Duration, Instant};

use benches::alloc::{CASES, prepare, timed};
use benches::{drive, get_quotes, ok200_body};
use brownout_cost::{JobSpec, Labels, Meter, thread_cpu_ns};
use brownout_tower::CostLayer;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

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

/// Times `n` requests through `svc` (after warm-up requests that register the counters), after `barrier`.
fn requests<S: Service<Request<()>>>(mut svc: S, n: u64, barrier: Option<&Barrier>) -> Duration {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..benches::WARM_UP {
        drop(black_box(drive(&mut svc, get_quotes(), &mut cx)));
    }
    if let Some(barrier) = barrier {
        barrier.wait();
    }
    let start = Instant::now();
    for _ in 0..n {
        drop(black_box(drive(black_box(&mut svc), get_quotes(), &mut cx)));
    }
    start.elapsed()
}

/// Runs `n` requests through `svc` on one thread, or through a clone of it on each of two threads at once.
fn time_requests<S>(svc: &S, n: u64, threads: usize) -> Duration
where
    S: Service<Request<()>> + Clone + Send + Sync,
{
    if threads == 1 {
        return requests(svc.clone(), n, None);
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let svc = svc.clone();
                let barrier = &barrier;
                s.spawn(move || requests(svc, n, Some(barrier)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).max().unwrap_or_default()
    })
}

fn layer(c: &mut Criterion) {
    // The exporter's recorder, as `http_service` installs it: a job's end updates its counters.
    let _ = metrics::set_global_recorder(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder());
    let labels = || Labels::new("trading", "quote-api").env("prod").strategy("quote");
    let (bare, meter) = (ok200_body(), Meter::new());
    let wall = CostLayer::new(meter.clone(), labels()).wall_estimate().layer(ok200_body());
    let apportioned = CostLayer::new(meter, labels()).layer(ok200_body());
    for (group, threads) in [("cost_layer/1_thread", 1), ("cost_layer/2_threads", 2)] {
        let mut g = c.benchmark_group(group);
        configure(&mut g);
        g.bench_function("bare", |b| b.iter_custom(|n| time_requests(&bare, n, threads)));
        g.bench_function("wall_estimate", |b| b.iter_custom(|n| time_requests(&wall, n, threads)));
        g.bench_function("apportioned", |b| b.iter_custom(|n| time_requests(&apportioned, n, threads)));
        g.finish();
    }
}

criterion_group!(benches, poll, alloc, layer);
criterion_main!(benches);
