//! The demo app's time per request in process, on one thread and on each of two threads at once: `GET
//! /quote/ACME` through the bare router and through the app with every Brownout layer armed but not firing
//! (`configs/chaos/armed-not-firing.yaml`), as `app_instructions` serves them. Two threads serve through clones of
//! one router, each on its own current-thread runtime, as two workers of one server do: what the app's shared
//! state (the reference counts its services' clones take, the counters its requests add to) costs when they
//! contend for it, which one thread's instruction count cannot show.
//!
//! The two-thread figure is the slower thread's time per request. Run: `cargo bench -p benches --bench app`.

#[global_allocator]
static GLOBAL: brownout_cost::CostAllocator = brownout_cost::CostAllocator::system();

use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use tower::util::Either;

type Bare = axum::Router;
type Armed = examples::demo::App;

/// Serves `n` requests on this thread's own runtime (after warm-up requests), after `barrier`.
fn serve(app: &Either<Bare, Armed>, n: u64, barrier: Option<&Barrier>) -> Duration {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let one = || async {
            let req = http::Request::get("/quote/ACME").body(axum::body::Body::empty()).expect("a request");
            let response = app.clone().oneshot(req).await.expect("infallible");
            assert_eq!(response.status(), 200);
            http_body_util::BodyExt::collect(response.into_body()).await.expect("the body");
        };
        for _ in 0..benches::WARM_UP {
            one().await;
        }
        if let Some(barrier) = barrier {
            barrier.wait();
        }
        let start = Instant::now();
        for _ in 0..n {
            one().await;
        }
        start.elapsed()
    })
}

/// `n` requests on one thread, or on each of two threads at once (the slower thread's time).
fn timed(app: &Either<Bare, Armed>, n: u64, threads: usize) -> Duration {
    if threads == 1 {
        return serve(app, n, None);
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| serve(app, n, Some(&barrier)))).collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).max().unwrap_or_default()
    })
}

fn app(c: &mut Criterion) {
    let _ = metrics::set_global_recorder(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder());
    let chaos = brownout_tower::ChaosHandle::for_environment(brownout_chaos::Environment::Test);
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/chaos/armed-not-firing.yaml");
    chaos.load(brownout_chaos::ChaosConfig::from_path(rules).expect("the rules")).expect("valid rules");
    // Built inside a runtime: the app's layers may start tasks.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let (bare, armed) = runtime.block_on(async {
        let bare: Either<Bare, Armed> =
            Either::Left(examples::demo::bare_router(Duration::from_millis(250), Duration::ZERO));
        let options = examples::demo::Options::default();
        let armed: Either<Bare, Armed> = Either::Right(examples::demo::app_with(&chaos, &options, Duration::ZERO).app);
        (bare, armed)
    });
    for (group, threads) in [("app/1_thread", 1), ("app/2_threads", 2)] {
        let mut g = c.benchmark_group(group);
        g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(20);
        g.bench_function("bare", |b| b.iter_custom(|n| timed(&bare, n, threads)));
        g.bench_function("armed", |b| b.iter_custom(|n| timed(&armed, n, threads)));
        g.finish();
    }
}

criterion_group!(benches, app);
criterion_main!(benches);
