//! The load harness against in-process services (paused time) and a real server on loopback.
#![cfg(feature = "load")]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use brownout_tower::load::{self, LoadPlan, Outcome, Slo};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{ServiceBuilder, service_fn};

fn ok<T>(r: Result<&T, &Infallible>) -> Outcome {
    Outcome::from_ok(r.is_ok())
}

/// A server that handles one request at a time (concurrency limit 1, so it pushes back through
/// `poll_ready`): 1 ms per request, except the `stall_at`-th, which takes 1 s.
fn stalling_server(
    stall_at: u64,
) -> impl tower::Service<u64, Response = u64, Error = Infallible, Future: Send> + Clone {
    ServiceBuilder::new().concurrency_limit(1).service(service_fn(move |i: u64| async move {
        let work = if i == stall_at { Duration::from_secs(1) } else { Duration::from_millis(1) };
        tokio::time::sleep(work).await;
        Ok::<_, Infallible>(i)
    }))
}

#[tokio::test(start_paused = true)]
async fn open_loop_counts_the_queueing_behind_a_stall() {
    // 100 req/s for 5 s against a server that stalls for 1 s once: the ~100 requests whose slots fall in the
    // stall wait for it. Measured from the intended send time they show it (up to 1 s); measured from the
    // actual send, as a closed loop would, all but one would look like 1 ms: coordinated omission.
    let plan = LoadPlan::open(100.0).duration(Duration::from_secs(5));
    let r = load::run(&plan, stalling_server(100), |i| i, ok).await.unwrap();
    assert_eq!(r.requests, 500, "{r}");
    assert_eq!(r.errors, 0);
    let l = r.latency_ms;
    assert!(l.p50 < 5.0, "most requests are fast: {l:?}");
    assert!(l.max >= 1000.0 && l.max < 1010.0, "the stalled request: {l:?}");
    // ~100 of 500 requests (20%) queued behind the stall, waiting between 1 s and ~0 s: p90 ≈ 0.5 s.
    assert!(l.p99 >= 900.0, "p99 includes the queueing delay: {l:?}");
    assert!(l.p90 >= 400.0 && l.p90 <= 600.0, "p90 includes the queueing delay: {l:?}");
    assert!(r.missed_sends >= 90, "the sends during the stall were late: {r}");
    // The slot after the stalled request waited for it: ~990 ms (the stalled one went out up to a timer tick
    // early, so it ended up to a tick sooner).
    assert!(r.max_send_lag_ms >= 985.0, "{r}");
}

#[tokio::test(start_paused = true)]
async fn closed_loop_hides_the_stall_the_open_loop_shows() {
    // The same server driven by one closed-loop client: only the stalled request is slow (the client waits
    // and sends nothing meanwhile), which is exactly why the open loop exists.
    let plan = LoadPlan::closed(1).requests(500);
    let r = load::run(&plan, stalling_server(100), |i| i, ok).await.unwrap();
    assert_eq!(r.requests, 500);
    assert!(r.latency_ms.p99 < 5.0 && r.latency_ms.max >= 1000.0, "{:?}", r.latency_ms);
}

#[tokio::test(start_paused = true)]
async fn closed_loop_sends_exactly_the_requests_asked_and_counts_every_answer() {
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let svc = service_fn(move |i: u64| {
        let served = counter.clone();
        async move {
            tokio::time::sleep(Duration::from_micros(200 + (i % 7) * 100)).await;
            served.fetch_add(1, Ordering::Relaxed);
            // Every 50th answer is a 503.
            Ok::<_, Infallible>(if i % 50 == 49 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK })
        }
    });
    let plan = LoadPlan::closed(7).requests(1_000);
    let r =
        load::run(&plan, svc, |i| i, |r: Result<&StatusCode, &Infallible>| Outcome::http(*r.unwrap())).await.unwrap();
    assert_eq!(r.requests, 1_000);
    assert_eq!(served.load(Ordering::Relaxed), 1_000, "requests = responses");
    assert_eq!((r.errors, r.status_counts["200"], r.status_counts["503"]), (20, 980, 20));
    assert_eq!(r.error_rate, 0.02);
    assert_eq!(r.plan.clients, Some(7));
}

#[tokio::test(start_paused = true)]
async fn warmup_is_sent_but_not_measured_and_duration_stops_the_run() {
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let svc = service_fn(move |_: u64| {
        let served = counter.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            served.fetch_add(1, Ordering::Relaxed);
            Ok::<_, Infallible>(())
        }
    });
    // 2 clients × 10 ms per request: 200 per second; 1 s of warm-up, 2 s measured.
    let plan = LoadPlan::closed(2).duration(Duration::from_secs(2)).warmup(Duration::from_secs(1));
    let r = load::run(&plan, svc, |i| i, ok).await.unwrap();
    assert_eq!(r.requests, 400, "{r}");
    assert_eq!(served.load(Ordering::Relaxed), 600);
    assert!((r.throughput_rps - 200.0).abs() < 1.0, "{r}");
    assert!((r.duration_seconds - 2.0).abs() < 0.02, "{r}");
}

#[tokio::test(start_paused = true)]
async fn a_plan_without_a_stop_is_refused() {
    let svc = service_fn(|_: u64| async { Ok::<_, Infallible>(()) });
    let e = load::run(&LoadPlan::closed(2), svc, |i| i, ok).await.unwrap_err();
    assert!(e.to_string().contains("stop condition"), "{e}");
    let e = load::run(&LoadPlan::open(0.0).requests(1), svc, |i| i, ok).await.unwrap_err();
    assert!(e.to_string().contains("rate"), "{e}");
    let e = load::run(&LoadPlan::open(1e-300).requests(1), svc, |i| i, ok).await.unwrap_err();
    assert!(e.to_string().contains("within [0.001, 1000000000]"), "{e}");
    let e = load::run(&LoadPlan::closed(1).duration(Duration::MAX), svc, |i| i, ok).await.unwrap_err();
    assert!(e.to_string().contains("within a century"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_a_real_hyper_server_on_loopback() {
    let app =
        Router::new()
            .route(
                "/orders",
                post(|body: Bytes| async move {
                    if body.is_empty() { StatusCode::BAD_REQUEST } else { StatusCode::CREATED }
                }),
            )
            .route("/busy", post(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let order = |i: u64, uri: &http::Uri| {
        Request::post(uri.clone()).body(Full::new(Bytes::from(format!(r#"{{"id":{i},"qty":1}}"#)))).unwrap()
    };
    let url = format!("http://{addr}/orders");
    let r = load::run_url(&LoadPlan::closed(8).requests(400), &url, order).await.unwrap();
    assert_eq!((r.requests, r.errors, r.status_counts["201"]), (400, 0, 400), "{r}");
    assert_eq!(r.plan.target.as_deref(), Some(url.as_str()));
    assert!("errors<0.5%,p50<1s".parse::<Slo>().unwrap().check(&r).passed());

    // 429s are errors; a closed port is a transport error, not a hang or a panic.
    let r = load::run_url(&LoadPlan::open(500.0).requests(50), &format!("http://{addr}/busy"), order).await.unwrap();
    assert_eq!((r.requests, r.errors, r.status_counts["429"]), (50, 50, 50), "{r}");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let r = load::run_url(&LoadPlan::closed(2).requests(10), &format!("http://{closed}/x"), order).await.unwrap();
    assert_eq!((r.errors, r.status_counts["transport"]), (10, 10), "{r}");
    assert!(load::run_url(&LoadPlan::closed(1).requests(1), "ftp://x/", order).await.is_err());
}

/// Serves `GET /x` on loopback and records the client port of every request: one port per connection.
async fn port_recording_server(close_each: bool) -> (String, Arc<std::sync::Mutex<Vec<u16>>>) {
    use axum::extract::ConnectInfo;
    let ports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = ports.clone();
    let app = Router::new().route(
        "/x",
        axum::routing::get(move |ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>| {
            seen.lock().unwrap().push(peer.port());
            async move {
                let mut response = http::Response::new(axum::body::Body::from("ok"));
                if close_each {
                    response.headers_mut().insert(http::header::CONNECTION, "close".parse().unwrap());
                }
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    (format!("http://{addr}/x"), ports)
}

fn get(_: u64, uri: &http::Uri) -> Request<Full<Bytes>> {
    Request::get(uri.clone()).body(Full::new(Bytes::new())).unwrap()
}

/// Each closed-loop client keeps its connection alive: 4 clients, 200 requests, at most 4 connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_clients_keep_their_connections() {
    let (url, ports) = port_recording_server(false).await;
    let r = load::run_url(&LoadPlan::closed(4).requests(200), &url, get).await.unwrap();
    assert_eq!((r.requests, r.errors), (200, 0), "{r}");
    let mut distinct = ports.lock().unwrap().clone();
    assert_eq!(distinct.len(), 200);
    distinct.sort_unstable();
    distinct.dedup();
    assert!(!distinct.is_empty() && distinct.len() <= 4, "{} connections for 4 clients", distinct.len());
}

/// A server that closes every connection after its answer: each request opens a new one, none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_is_reopened() {
    let (url, ports) = port_recording_server(true).await;
    let r = load::run_url(&LoadPlan::closed(2).requests(40), &url, get).await.unwrap();
    assert_eq!((r.requests, r.errors), (40, 0), "{r}");
    let mut distinct = ports.lock().unwrap().clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 40, "a connection per request");
}

/// The open loop drives one clone with overlapping requests: the busy connection's overflow goes through
/// the pool, and every request is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_requests_of_one_clone_all_complete() {
    let (url, ports) = port_recording_server(false).await;
    let r = load::run_url(&LoadPlan::open(2_000.0).requests(300), &url, get).await.unwrap();
    assert_eq!((r.requests, r.errors), (300, 0), "{r}");
    assert_eq!(ports.lock().unwrap().len(), 300);
}

/// Slots between the timer's millisecond ticks: a service that answers at once shows no latency, because the
/// open loop does not count its own timer's rounding (up to a tick) as the service's.
#[tokio::test(start_paused = true)]
async fn the_open_loop_does_not_count_its_timer_lag() {
    let instant = service_fn(|i: u64| async move { Ok::<_, Infallible>(i) });
    let r = load::run(&LoadPlan::open(300.0).requests(300), instant, |i| i, ok).await.unwrap();
    assert_eq!((r.requests, r.missed_sends), (300, 0), "{r}");
    assert!(r.latency_ms.max < 0.1, "an instant answer measured as {:?}", r.latency_ms);
    assert!((r.throughput_rps - 300.0).abs() < 3.0, "the rate holds: {r}");
}
