//! The degrade layers: shedding by flag, and fallback on errors, failed responses and flags.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use brownout_degrade::Flags;
use brownout_degrade::flags::FlagKind;
use brownout_tower::{FallbackLayer, HttpChaosLayer, ShedLayer};
use http::{Request, Response, StatusCode};
use tower::{Layer, ServiceExt, service_fn};

fn flags() -> Flags {
    let flags = Flags::new();
    flags.define("api.shed", FlagKind::Bool, "false").unwrap();
    flags.define("quotes.cached_only", FlagKind::Bool, "false").unwrap();
    flags
}

fn req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn shedding_follows_the_flag_and_spares_critical_routes() {
    let flags = flags();
    let layer = ShedLayer::new(flags.bool("api.shed").unwrap())
        .critical("/api/orders/**")
        .retry_after(Duration::from_millis(2500));
    let app = Router::new()
        .route("/api/quotes", get(|| async { "quote" }))
        .route("/api/orders/{id}", get(|| async { "order" }))
        .layer(layer.clone());
    assert_eq!(app.clone().oneshot(req("/api/quotes")).await.unwrap().status(), StatusCode::OK);

    flags.set("api.shed", "true").unwrap();
    let shed = app.clone().oneshot(req("/api/quotes")).await.unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers()["retry-after"], "3", "whole seconds, rounded up");
    assert_eq!(shed.headers()["x-degrade-shed"], "api.shed");
    assert_eq!(app.clone().oneshot(req("/api/orders/7")).await.unwrap().status(), StatusCode::OK, "critical");
    assert_eq!(layer.shed_total(), 1, "the layer counts what its services (each route's, cloned) shed");

    flags.unset("api.shed").unwrap();
    assert_eq!(app.oneshot(req("/api/quotes")).await.unwrap().status(), StatusCode::OK);
    assert_eq!(layer.shed_total(), 1);
}

fn counted<T: Clone + Send + Sync + 'static>(
    calls: &Arc<AtomicUsize>,
    answer: Result<Response<String>, T>,
) -> impl tower::Service<Request<String>, Response = Response<String>, Error = T, Future: Send> + Clone + Send {
    let calls = calls.clone();
    service_fn(move |_: Request<String>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let answer = answer.clone();
        async move { answer }
    })
}

fn ok(text: &str, status: StatusCode) -> Response<String> {
    let mut response = Response::new(text.to_owned());
    *response.status_mut() = status;
    response
}

#[tokio::test]
async fn fallback_on_errors_and_failed_responses() {
    let (primary_calls, fallback_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let cache = counted::<String>(&fallback_calls, Ok(ok("cached", StatusCode::OK)));

    let healthy = FallbackLayer::http(cache.clone()).layer(counted(&primary_calls, Ok(ok("live", StatusCode::OK))));
    assert_eq!(healthy.oneshot(Request::new(String::new())).await.unwrap().body(), "live");
    assert_eq!(fallback_calls.load(Ordering::SeqCst), 0);

    let failing = FallbackLayer::http(cache.clone()).layer(counted::<String>(&primary_calls, Err("down".into())));
    assert_eq!(failing.oneshot(Request::new(String::new())).await.unwrap().body(), "cached");

    let busy = FallbackLayer::http(cache.clone())
        .layer(counted(&primary_calls, Ok(ok("slow down", StatusCode::TOO_MANY_REQUESTS))));
    assert_eq!(busy.oneshot(Request::new(String::new())).await.unwrap().body(), "cached");

    let not_found = FallbackLayer::http(cache).layer(counted(&primary_calls, Ok(ok("none", StatusCode::NOT_FOUND))));
    assert_eq!(not_found.oneshot(Request::new(String::new())).await.unwrap().body(), "none", "a 404 is an answer");
    assert_eq!((primary_calls.load(Ordering::SeqCst), fallback_calls.load(Ordering::SeqCst)), (4, 2));
}

#[tokio::test]
async fn while_the_flag_is_on_the_primary_is_not_called() {
    let flags = flags();
    let (primary_calls, fallback_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let layer = FallbackLayer::http(counted::<String>(&fallback_calls, Ok(ok("cached", StatusCode::OK))))
        .when_flag(flags.bool("quotes.cached_only").unwrap());
    let service = layer.layer(counted(&primary_calls, Ok(ok("live", StatusCode::OK))));
    flags.set("quotes.cached_only", "true").unwrap();
    assert_eq!(service.clone().oneshot(Request::new(String::new())).await.unwrap().body(), "cached");
    assert_eq!(primary_calls.load(Ordering::SeqCst), 0);
    flags.set("quotes.cached_only", "false").unwrap();
    assert_eq!(service.oneshot(Request::new(String::new())).await.unwrap().body(), "live");
}

/// The pattern users copy: chaos answers 429 for the provider, and the fallback serves the cache.
#[tokio::test]
async fn an_injected_429_is_served_from_the_fallback() {
    let chaos = HttpChaosLayer::too_many_requests(Duration::from_secs(1), 1.0).unwrap();
    let provider = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(ok("live", StatusCode::OK)) });
    let cache = service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(Response::new(brownout_tower::ChaosBody::<String>::default()))
    });
    let service = FallbackLayer::http(cache).layer(chaos.layer(provider));
    let answer = service.oneshot(Request::new(String::new())).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "the user sees the fallback, not the 429");
    assert!(answer.headers().get("x-chaos-injected").is_none());
    assert_eq!(chaos.handle().snapshot().rules[0].injected, 1);
}

mod breaker {
    use super::*;
    use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, ManualClock, Rejected, SlidingWindow, State};
    use brownout_tower::CircuitBreakerLayer;
    use brownout_tower::breaker::HttpStatus;
    use tower::BoxError;

    fn breaker() -> Arc<CircuitBreaker> {
        let config = BreakerConfig::default().minimum_calls(2).window(SlidingWindow::Count { calls: 4, buckets: 1 });
        Arc::new(CircuitBreaker::new("dep", config, ManualClock::new()).unwrap())
    }

    #[tokio::test]
    async fn an_open_breaker_rejects_without_calling_the_service() {
        let breaker = breaker();
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = counted::<String>(&calls, Err("down".into()));
        let service = CircuitBreakerLayer::new(breaker.clone()).layer(failing);
        for _ in 0..2 {
            assert!(service.clone().oneshot(Request::new(String::new())).await.is_err());
        }
        assert_eq!(breaker.state(), State::Open);
        let err = service.oneshot(Request::new(String::new())).await.unwrap_err();
        let rejected = err.downcast_ref::<Rejected>().expect("a typed rejection");
        assert!(rejected.retry_after().is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the third call never reached the service");
    }

    /// The layer times each call only for a breaker that judges slow calls: slow successes open it, and one
    /// without `slow_calls` is not told (nor timed).
    #[tokio::test(start_paused = true)]
    async fn slow_calls_open_a_breaker_that_judges_them() {
        let slow = service_fn(|_: u32| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, BoxError>(1u32)
        });
        let judging = BreakerConfig::default()
            .minimum_calls(2)
            .window(SlidingWindow::Count { calls: 4, buckets: 1 })
            .slow_calls(brownout_degrade::breaker::SlowCalls::new(Duration::from_millis(50), 0.5));
        let judging = Arc::new(CircuitBreaker::new("slow", judging, brownout_tower::TokioClock).unwrap());
        assert!(judging.judges_slow_calls() && !breaker().judges_slow_calls());
        let service = CircuitBreakerLayer::new(judging.clone()).layer(slow);
        for _ in 0..2 {
            assert_eq!(service.clone().oneshot(7).await.unwrap(), 1);
        }
        assert_eq!(judging.state(), State::Open, "two slow successes of two");
    }

    #[tokio::test]
    async fn injected_faults_do_not_open_the_breaker_by_default() {
        let breaker = breaker();
        let chaos = brownout_tower::ChaosLayer::error(1.0).unwrap();
        let ok = service_fn(|_: u32| async { Ok::<_, BoxError>(1u32) });
        let service = CircuitBreakerLayer::new(breaker.clone()).layer(chaos.layer(ok));
        for _ in 0..5 {
            let err = service.clone().oneshot(7).await.unwrap_err();
            assert!(err.is::<brownout_tower::InjectedError>());
        }
        assert_eq!(breaker.state(), State::Closed, "injected errors are ignored");
        assert_eq!(breaker.snapshot().calls, 0);
    }

    #[tokio::test]
    async fn http_5xx_counts_but_injected_answers_do_not() {
        let breaker = breaker();
        let calls = Arc::new(AtomicUsize::new(0));
        let five_hundred = counted::<String>(&calls, Ok(ok("boom", StatusCode::BAD_GATEWAY)));
        let service = CircuitBreakerLayer::new(breaker.clone()).classifier(HttpStatus).layer(five_hundred);
        for _ in 0..2 {
            assert_eq!(service.clone().oneshot(Request::new(String::new())).await.unwrap().status(), 502);
        }
        assert_eq!(breaker.state(), State::Open);

        let breaker = super::breaker::breaker();
        let chaos = HttpChaosLayer::error(503, 1.0).unwrap();
        let healthy = service_fn(|_: Request<String>| async { Ok::<_, BoxError>(ok("fine", StatusCode::OK)) });
        let service = CircuitBreakerLayer::new(breaker.clone()).classifier(HttpStatus).layer(chaos.layer(healthy));
        for _ in 0..4 {
            assert_eq!(service.clone().oneshot(Request::new(String::new())).await.unwrap().status(), 503);
        }
        assert_eq!(breaker.state(), State::Closed, "x-chaos-injected answers are ignored");
    }
}

/// "Or hands them to the fallback": a FallbackLayer over the ShedLayer answers shed requests.
#[tokio::test]
async fn shed_requests_can_be_handed_to_a_fallback() {
    let flags = flags();
    let shed = ShedLayer::new(flags.bool("api.shed").unwrap()).critical("/api/orders/**");
    let answer = |from: &'static str| {
        move |_: Request<Body>| async move {
            let mut response = Response::new(Body::empty());
            response.headers_mut().insert("x-from", http::HeaderValue::from_static(from));
            Ok::<_, Infallible>(response)
        }
    };
    let service = FallbackLayer::http(service_fn(answer("fallback"))).layer(shed.layer(service_fn(answer("live"))));
    flags.set("api.shed", "true").unwrap();
    let shed_one = service.clone().oneshot(req("/api/quotes")).await.unwrap();
    assert_eq!(shed_one.status(), StatusCode::OK);
    assert_eq!(shed_one.headers()["x-from"], "fallback");
    let critical = service.oneshot(req("/api/orders/1")).await.unwrap();
    assert_eq!(critical.headers()["x-from"], "live");
}

/// Percent mode: a service whose responses are `200` unless shed, over a `api.shed_percent` number flag.
mod percent {
    use std::future::Ready;

    use brownout_tower::shed::Shed;
    use proptest::prelude::*;
    use tower::Service;

    use super::*;

    type Inner = tower::util::ServiceFn<fn(Request<Body>) -> Ready<Result<Response<Body>, Infallible>>>;

    fn inner() -> Inner {
        service_fn(|_| std::future::ready(Ok(Response::new(Body::empty()))))
    }

    fn percent_flags(p: f64) -> Flags {
        let flags = Flags::new();
        flags.define("api.shed_percent", FlagKind::Number { min: 0.0, max: 100.0 }, "0").unwrap();
        flags.set("api.shed_percent", &p.to_string()).unwrap();
        flags
    }

    fn service(flags: &Flags) -> Shed<Inner> {
        let layer = ShedLayer::percent(flags.number("api.shed_percent").unwrap())
            .critical("/quote/**")
            .retry_after(Duration::from_secs(2));
        layer.layer(inner())
    }

    /// Sends one request; `true` when it was shed (checking the shed response's headers).
    fn shed(service: &mut Shed<Inner>, path: &str) -> bool {
        let future = service.call(Request::get(path).body(Body::empty()).unwrap());
        let response = tokio_test::block_on(future).unwrap();
        match response.status() {
            StatusCode::OK => false,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(response.headers()["retry-after"], "2");
                assert_eq!(response.headers()["x-degrade-shed"], "api.shed_percent");
                true
            }
            other => panic!("unexpected status {other}"),
        }
    }

    #[test]
    fn a_quarter_is_every_fourth_and_critical_routes_never_count() {
        let flags = percent_flags(25.0);
        let mut service = service(&flags);
        let mut shed_reports = Vec::new();
        for i in 0..40 {
            // Interleaved critical requests are never shed and do not move the count.
            assert!(!shed(&mut service, &format!("/quote/SYM{i}")), "critical routes are never shed");
            shed_reports.push(shed(&mut service, "/reports/daily"));
        }
        assert_eq!(shed_reports.iter().filter(|s| **s).count(), 10);
        assert!(shed_reports.chunks(4).all(|c| c.iter().filter(|s| **s).count() == 1), "{shed_reports:?}");
    }

    #[test]
    fn zero_and_hundred_and_a_change_at_run_time() {
        let flags = percent_flags(0.0);
        let mut service = service(&flags);
        assert!((0..100).all(|_| !shed(&mut service, "/recommendations/u1")), "0% sheds nothing");
        flags.set("api.shed_percent", "100").unwrap();
        assert!((0..100).all(|_| shed(&mut service, "/recommendations/u1")), "100% sheds everything");
        assert!(!shed(&mut service, "/quote/ACME"), "even at 100%, critical routes pass");
        flags.set("api.shed_percent", "10").unwrap();
        let n = (0..1000).filter(|_| shed(&mut service, "/reports/r")).count();
        assert!((99..=101).contains(&n), "10% of 1000 after the change: {n}");
    }

    #[test]
    fn clones_share_the_count_across_threads() {
        let flags = percent_flags(30.0);
        let layer = ShedLayer::percent(flags.number("api.shed_percent").unwrap()).retry_after(Duration::from_secs(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let mut service = layer.layer(inner());
                std::thread::spawn(move || (0..5000).filter(|_| shed(&mut service, "/reports/r")).count())
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!((2999..=3001).contains(&total), "30% of 10,000 over two threads: {total}");
    }

    #[test]
    fn shed_requests_are_counted_in_metrics() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let flags = percent_flags(50.0);
            let mut service = service(&flags);
            for _ in 0..10 {
                shed(&mut service, "/reports/r");
                shed(&mut service, "/quote/ACME");
            }
        });
        let shed_total: Vec<(Vec<String>, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Counter(n) if key.key().name() == "degrade_shed_total" => {
                    Some((key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect(), n))
                }
                _ => None,
            })
            .collect();
        assert_eq!(shed_total, vec![(vec!["flag=api.shed_percent".to_owned()], 5)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Over any run of `n` non-critical requests at a constant `p` (after `skip` others at the same `p`,
        /// with critical requests mixed in), the number shed is within ±1 of `n·p/100`.
        #[test]
        fn the_shed_count_is_exact_within_one(
            p in prop_oneof![0.0..=100.0f64, (0u32..=100).prop_map(f64::from)],
            skip in 0usize..300,
            n in 1usize..600,
            critical_every in 2usize..9,
        ) {
            let flags = percent_flags(p);
            let mut service = service(&flags);
            for _ in 0..skip {
                shed(&mut service, "/reports/r");
            }
            let mut count = 0usize;
            for i in 0..n {
                if i % critical_every == 0 {
                    prop_assert!(!shed(&mut service, "/quote/X"));
                }
                count += usize::from(shed(&mut service, "/recommendations/u"));
            }
            let expected = n as f64 * p / 100.0;
            prop_assert!((count as f64 - expected).abs() <= 1.0, "p {p}, n {n}: shed {count}, expected {expected}");
        }
    }
}
