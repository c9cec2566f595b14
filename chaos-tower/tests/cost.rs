//! CostLayer: every request becomes a cost-meter job with the layer's labels (adjusted per request), its id
//! from `x-request-id`, and a record even when cancelled; a budget's concurrency limit is obeyed with a 503.

mod common;

use std::convert::Infallible;

use brownout_cost::guardrail::ConcurrencyLimit;
use brownout_cost::{CpuMode, Labels, MemorySink, Meter, Tier};
use brownout_tower::CostLayer;
use brownout_tower::cost::GUARDRAIL_HEADER;
use bytes::Bytes;
use common::Logs;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Service, ServiceExt, service_fn};

type Body = Full<Bytes>;

fn meter() -> (Meter, MemorySink) {
    let sink = MemorySink::new();
    (Meter::builder().sink(sink.clone()).build(), sink)
}

async fn ok(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

#[tokio::test]
async fn each_request_is_a_job_with_labels_from_the_request() {
    let (meter, records) = meter();
    let layer = CostLayer::new(meter, Labels::new("trading", "quotes").env("dev")).label_with(|req, labels| {
        if req.uri.path().starts_with("/backtest") {
            labels.tier = Tier::Batch;
            labels.strategy = "replay".into();
        }
    });
    let mut svc = tower::ServiceBuilder::new().layer(layer).service(service_fn(ok));
    for (path, id) in [("/quote", Some("req-1")), ("/backtest/run", None)] {
        let mut req = Request::builder().uri(path);
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        let response = svc.ready().await.unwrap().call(req.body(Body::default()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let records = records.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].job_id, "req-1");
    assert_eq!((records[0].labels.tier, records[0].labels.strategy.as_str()), (Tier::Interactive, ""));
    assert_eq!(records[1].job_id, "quotes-0", "no request id: the service name and a sequence number");
    assert_eq!((records[1].labels.tier, records[1].labels.strategy.as_str()), (Tier::Batch, "replay"));
    assert!(records.iter().all(|r| r.cpu_mode == CpuMode::Apportioned && r.labels.team == "trading"));
}

/// Workers number requests from blocks of the layer's sequence: the numbers stay unique across threads, past
/// a block's end.
#[test]
fn request_numbers_are_unique_across_threads() {
    let (meter, records) = meter();
    let svc = tower::ServiceBuilder::new()
        .layer(CostLayer::new(meter, Labels::new("trading", "quotes")))
        .service(service_fn(ok));
    const PER_THREAD: usize = 1_500; // past a block of 1,024
    std::thread::scope(|s| {
        for _ in 0..2 {
            let mut svc = svc.clone();
            s.spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                runtime.block_on(async {
                    for _ in 0..PER_THREAD {
                        svc.ready().await.unwrap().call(Request::new(Body::default())).await.unwrap();
                    }
                });
            });
        }
    });
    let numbers: Vec<u64> = records
        .records()
        .iter()
        .map(|r| r.job_id.to_string().strip_prefix("quotes-").expect("a numbered id").parse().expect("a number"))
        .collect();
    let distinct: std::collections::BTreeSet<_> = numbers.iter().collect();
    assert_eq!((numbers.len(), distinct.len()), (2 * PER_THREAD, 2 * PER_THREAD), "no number twice");
}

/// A request that waits (on a slow dependency, an injected delay) uses little CPU meanwhile: the default
/// apportioned CPU charges it that, where the wall estimate charges it the wait. The wait here is 20 ms of CPU
/// burned by other, unmetered work on the same thread, so the comparison is CPU to CPU, without a timer.
#[tokio::test]
async fn a_waiting_request_is_not_charged_its_wait() {
    async fn waited(layer: CostLayer, records: MemorySink) -> brownout_cost::JobRecord {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = std::sync::Mutex::new(Some(released));
        let svc = tower::ServiceBuilder::new().layer(layer).service(service_fn(move |req: Request<Body>| {
            let released = released.lock().unwrap().take().expect("one request");
            async move {
                released.await.expect("released");
                ok(req).await
            }
        }));
        let request = tokio::spawn(svc.oneshot(Request::new(Body::default())));
        tokio::task::yield_now().await; // the request starts and waits
        let start = brownout_cost::thread_cpu_ns();
        while brownout_cost::thread_cpu_ns() - start < 20_000_000 {
            std::hint::black_box(start.wrapping_mul(31));
        }
        release.send(()).unwrap();
        request.await.unwrap().unwrap();
        records.records().remove(0)
    }
    let (m, records) = meter();
    let record = waited(CostLayer::new(m, Labels::new("trading", "quotes")), records).await;
    let (m, records) = meter();
    let wall = waited(CostLayer::new(m, Labels::new("trading", "quotes")).wall_estimate(), records).await;

    assert_eq!(record.cpu_mode, CpuMode::Apportioned);
    assert!(record.cpu_seconds < 0.002, "charged {} s of CPU for a 20 ms wait", record.cpu_seconds);
    assert_eq!(wall.cpu_mode, CpuMode::WallEstimate);
    assert!(wall.cpu_seconds >= 0.02, "the wall estimate charges the wait: {wall:?}");
}

/// A request that computes is charged CPU, in the default (apportioned) mode and reading the thread CPU clock:
/// the layer's polls of the service are the job's.
#[tokio::test]
async fn a_requests_own_cpu_is_charged_in_both_cpu_modes() {
    for (layer, mode) in [
        (CostLayer::new as fn(Meter, Labels) -> CostLayer, CpuMode::Apportioned),
        (|m, l| CostLayer::new(m, l).thread_cpu(), CpuMode::ThreadCpu),
    ] {
        let (meter, records) = meter();
        let layer = layer(meter, Labels::new("trading", "quotes"));
        let svc = tower::ServiceBuilder::new().layer(layer).service(service_fn(|req: Request<Body>| async move {
            let mut x = 0u64;
            for i in 0..200_000u64 {
                x = std::hint::black_box(x.wrapping_add(i * i));
            }
            ok(req).await
        }));
        svc.oneshot(Request::new(Body::default())).await.unwrap();
        let record = &records.records()[0];
        assert_eq!(record.cpu_mode, mode);
        assert!(record.cpu_seconds > 0.0, "{mode:?}: no CPU charged for the request's work");
    }
}

#[tokio::test]
async fn the_concurrency_guardrail_refuses_with_503_and_lets_the_next_one_through() {
    let (meter, records) = meter();
    let limit = ConcurrencyLimit::new(1);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let inner = {
        let calls = calls.clone();
        service_fn(move |req: Request<Body>| {
            let (rx, calls) = (rx.clone(), calls.clone());
            async move {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if let Some(rx) = rx.lock().await.take() {
                    let _ = rx.await; // the first request waits until released
                }
                ok(req).await
            }
        })
    };
    let svc = tower::ServiceBuilder::new()
        .layer(CostLayer::new(meter, Labels::new("trading", "quotes")).limit(limit.clone()))
        .service(inner);

    let first = tokio::spawn(svc.clone().oneshot(Request::new(Body::default())));
    while limit.in_use() == 0 {
        tokio::task::yield_now().await;
    }
    let refused = svc.clone().oneshot(Request::new(Body::default())).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()[http::header::RETRY_AFTER], "1");
    assert_eq!(refused.headers()[&GUARDRAIL_HEADER], "concurrency");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1, "a refused request never reaches the service");

    tx.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(limit.in_use(), 0, "the permit is released when the response is ready");
    let next = svc.oneshot(Request::new(Body::default())).await.unwrap();
    assert_eq!(next.status(), StatusCode::OK);
    assert_eq!(records.records().len(), 2, "refused requests are not jobs");
}

#[tokio::test]
async fn a_cancelled_request_is_still_recorded() {
    let (meter, records) = meter();
    let svc = tower::ServiceBuilder::new()
        .layer(CostLayer::new(meter, Labels::new("trading", "quotes")))
        .service(service_fn(|_req: Request<Body>| std::future::pending::<Result<Response<Body>, Infallible>>()));
    let call = svc.oneshot(Request::new(Body::default()));
    let timed_out = tokio::time::timeout(std::time::Duration::from_millis(1), call).await;
    assert!(timed_out.is_err());
    assert_eq!(records.records().len(), 1);
}

/// What `work` logs through a subscriber at `level`.
fn logged_at(level: tracing::Level, work: impl FnOnce()) -> String {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber =
        tracing_subscriber::fmt().with_ansi(false).with_max_level(level).with_writer(move || writer.clone()).finish();
    tracing::subscriber::with_default(subscriber, work);
    logs.text()
}

/// A service at the default log level (INFO) writes no line per request: `CostLayer`'s jobs, thread-CPU ones
/// included, log their `job_started` / `job_completed` at DEBUG; a long job (not per request) keeps INFO.
#[test]
fn per_request_jobs_log_at_debug_and_long_jobs_at_info() {
    let serve_one = || {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let (meter, _records) = meter();
            let layer = CostLayer::new(meter, Labels::new("trading", "quotes")).thread_cpu();
            let svc = tower::ServiceBuilder::new().layer(layer).service(service_fn(ok));
            svc.oneshot(Request::new(Body::default())).await.unwrap();
        });
    };
    let info = logged_at(tracing::Level::INFO, serve_one);
    assert!(!info.contains("job started") && !info.contains("job completed"), "{info}");
    let debug = logged_at(tracing::Level::DEBUG, serve_one);
    assert!(debug.contains("job started") && debug.contains("job completed"), "{debug}");

    let long_job = || {
        let (meter, _records) = meter();
        meter.start(brownout_cost::JobSpec::new("backtest-1", Labels::new("research", "backtests"))).finish();
    };
    let info = logged_at(tracing::Level::INFO, long_job);
    assert!(info.contains("job started") && info.contains("job completed"), "{info}");
}
