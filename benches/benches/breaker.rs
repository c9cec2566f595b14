//! Per-call cost of a circuit breaker on its closed path (admit, then record a success), Brownout's beside
//! its peers in the same run, on one thread and on two threads sharing one breaker.
//!
//! - Brownout (`brownout_degrade::breaker`): `try_acquire` + `Permit::record(Success, elapsed)`, with the
//!   default count window (100 calls in 10 buckets) and with a time window (60 s in 60 buckets, reading the
//!   system clock, or the coarse clock, on every call). The caller measures `elapsed`; here it is a constant.
//! - recloser 1.4 and failsafe 1.3: `call(|| Ok(()))` (recloser: a ring buffer of 100 calls; failsafe: its
//!   default policy).
//! - seatbelt 0.11 and tower-resilience-circuitbreaker 0.14 are Tower middleware only: their cases drive the
//!   layer around a trivial service (`poll_ready`, `call`, poll the future), so they include a boxed future
//!   per call.
//!
//! Two threads: `iter_custom`, each of 2 scoped threads makes `iters` calls after a barrier and times its own
//! loop; the case reports the slower thread's time per call (so no slower than one thread means it scales).
//!
//! Run: `cargo bench -p benches --bench breaker`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use benches::{Injected, zero};
use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, CoarseClock, Outcome, SlidingWindow, SystemClock};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use tower_layer::Layer;
use tower_service::Service;

const ELAPSED: Duration = Duration::from_micros(300);

fn brownout(window: SlidingWindow) -> CircuitBreaker {
    let config = BreakerConfig::default().window(window);
    CircuitBreaker::new("bench", config, SystemClock::new()).expect("bench config is valid")
}

fn count_window() -> CircuitBreaker {
    brownout(SlidingWindow::default())
}

fn time_window() -> CircuitBreaker {
    brownout(SlidingWindow::Time { duration: Duration::from_secs(60), buckets: 60 })
}

fn time_window_coarse() -> CircuitBreaker {
    let window = SlidingWindow::Time { duration: Duration::from_secs(60), buckets: 60 };
    CircuitBreaker::new("bench", BreakerConfig::default().window(window), CoarseClock::new())
        .expect("bench config is valid")
}

#[inline]
fn brownout_call(b: &CircuitBreaker) -> bool {
    match b.try_acquire() {
        Ok(permit) => {
            permit.record(Outcome::Success, ELAPSED);
            true
        }
        Err(_) => false,
    }
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom().error_rate(0.5).closed_len(100).build()
}

fn failsafe() -> impl failsafe::CircuitBreaker + Sync {
    failsafe::Config::new().build()
}

/// seatbelt 0.11's breaker around `zero()`; the guard keeps its clock's driver alive.
fn seatbelt() -> (impl Service<u64, Response = u64, Error = Injected> + Clone + Send, impl Sized) {
    let (clock, driver) = tick::runtime::InactiveClock::default().activate(Waker::noop().clone());
    let ctx: seatbelt::ResilienceContext<u64, Result<u64, Injected>> =
        seatbelt::ResilienceContext::new(&clock).name("bench");
    let layer = seatbelt::breaker::Breaker::layer("breaker", &ctx)
        .recovery_with(|out: &Result<u64, Injected>, _| match out {
            Ok(_) => seatbelt::RecoveryInfo::never(),
            Err(_) => seatbelt::RecoveryInfo::retry(),
        })
        .rejected_input_error(|_, _| Injected);
    (layer.layer(zero()), (driver, clock))
}

/// tower-resilience-circuitbreaker 0.14 around `zero()`: a window of 100 calls, its default.
fn tower_resilience() -> impl Service<u64, Response = u64> + Clone + Send {
    tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build()
        .expect("valid config")
        .layer(zero())
}

/// One request through a service: `poll_ready`, `call`, poll the future until ready (it is ready at once
/// unless another thread holds a lock inside it).
#[inline(always)]
fn drive<S: Service<u64>>(svc: &mut S, cx: &mut Context<'_>) -> bool {
    loop {
        match svc.poll_ready(cx) {
            Poll::Ready(Ok(())) => break,
            Poll::Ready(Err(_)) => return false,
            Poll::Pending => std::hint::spin_loop(),
        }
    }
    let mut fut = pin!(svc.call(7));
    loop {
        match fut.as_mut().poll(cx) {
            Poll::Ready(r) => return r.is_ok(),
            Poll::Pending => std::hint::spin_loop(),
        }
    }
}

/// Two threads, each making `iters` calls with its own `op`; the slower thread's loop time.
fn two_threads<T: Send>(iters: u64, mut make: impl FnMut() -> T, op: impl Fn(&mut T) -> bool + Sync) -> Duration {
    let barrier = Barrier::new(2);
    let states = [make(), make()];
    std::thread::scope(|s| {
        let handles: Vec<_> = states
            .into_iter()
            .map(|mut state| {
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(op(black_box(&mut state)));
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).max().unwrap_or_default()
    })
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(30).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
}

fn one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker_closed/1_thread");
    configure(&mut g);
    let b = count_window();
    g.bench_function("brownout_count_window", |bench| bench.iter(|| brownout_call(black_box(&b))));
    let b = time_window();
    g.bench_function("brownout_time_window", |bench| bench.iter(|| brownout_call(black_box(&b))));
    let b = time_window_coarse();
    g.bench_function("brownout_time_window_coarse_clock", |bench| bench.iter(|| brownout_call(black_box(&b))));
    let r = recloser();
    g.bench_function("recloser", |bench| bench.iter(|| black_box(&r).call(|| Ok::<(), ()>(())).is_ok()));
    let f = failsafe();
    g.bench_function("failsafe", |bench| bench.iter(|| black_box(&f).call(|| Ok::<(), ()>(())).is_ok()));
    let (mut svc, _guard) = seatbelt();
    let mut cx = Context::from_waker(Waker::noop());
    g.bench_function("seatbelt", |bench| bench.iter(|| drive(black_box(&mut svc), &mut cx)));
    let mut svc = tower_resilience();
    g.bench_function("tower_resilience", |bench| bench.iter(|| drive(black_box(&mut svc), &mut cx)));
    g.finish();
}

fn two(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker_closed/2_threads");
    configure(&mut g);
    let b = count_window();
    g.bench_function("brownout_count_window", |bench| {
        bench.iter_custom(|n| two_threads(n, || &b, |b| brownout_call(b)))
    });
    let b = time_window();
    g.bench_function("brownout_time_window", |bench| {
        bench.iter_custom(|n| two_threads(n, || &b, |b| brownout_call(b)))
    });
    let b = time_window_coarse();
    g.bench_function("brownout_time_window_coarse_clock", |bench| {
        bench.iter_custom(|n| two_threads(n, || &b, |b| brownout_call(b)))
    });
    let r = recloser();
    g.bench_function("recloser", |bench| {
        bench.iter_custom(|n| two_threads(n, || &r, |r| r.call(|| Ok::<(), ()>(())).is_ok()))
    });
    let f = failsafe();
    g.bench_function("failsafe", |bench| {
        bench.iter_custom(|n| two_threads(n, || &f, |f| f.call(|| Ok::<(), ()>(())).is_ok()))
    });
    let (svc, _guard) = seatbelt();
    g.bench_function("seatbelt", |bench| {
        bench.iter_custom(|n| two_threads(n, || svc.clone(), |s| drive(s, &mut Context::from_waker(Waker::noop()))))
    });
    let svc = tower_resilience();
    g.bench_function("tower_resilience", |bench| {
        bench.iter_custom(|n| two_threads(n, || svc.clone(), |s| drive(s, &mut Context::from_waker(Waker::noop()))))
    });
    g.finish();
}

criterion_group!(benches, one_thread, two);
criterion_main!(benches);
