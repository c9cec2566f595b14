//! The newcomer's API: the breaker's HTTP preset and injected-fault option, why a fallback was called,
//! `on_response` with a closure, the header constants, and one-call chaos handles for tests.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use brownout_degrade::Flags;
use brownout_degrade::breaker::{
    BreakerConfig, CircuitBreaker, Classifier, ForcedState, ManualClock, Outcome, SlidingWindow, State,
};
use brownout_degrade::flags::FlagKind;
use brownout_tower::breaker::HttpClassifier;
use brownout_tower::{
    ChaosHandle, ChaosLayer, CircuitBreakerLayer, FallbackLayer, FallbackReason, HttpChaosLayer, INJECTED_HEADER,
    InjectedError, SHED_HEADER, ShedLayer,
};
use http::{Request, Response, StatusCode};
use proptest::prelude::*;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

fn breaker(minimum_calls: u32) -> Arc<CircuitBreaker> {
    let config =
        BreakerConfig::default().minimum_calls(minimum_calls).window(SlidingWindow::Count { calls: 10, buckets: 1 });
    Arc::new(CircuitBreaker::new("dep", config, ManualClock::new()).unwrap())
}

fn status(code: u16) -> Response<String> {
    Response::builder().status(code).body(String::new()).unwrap()
}

fn answering(code: u16) -> impl tower::Service<Request<String>, Response = Response<String>, Error = BoxError> + Clone {
    service_fn(move |_: Request<String>| async move { Ok::<_, BoxError>(status(code)) })
}

// ---- 1. A breaker that counts HTTP failures ----

#[tokio::test]
async fn the_http_preset_opens_on_5xx_429_and_timeouts() {
    for code in [500, 502, 503, 429, 408] {
        let b = breaker(5);
        let service = CircuitBreakerLayer::http(b.clone()).layer(answering(code));
        for _ in 0..5 {
            let _ = service.clone().oneshot(Request::new(String::new())).await;
        }
        assert_eq!(b.state(), State::Open, "five {code}s of five calls open it");
    }
    for code in [200, 204, 404, 400] {
        let b = breaker(5);
        let service = CircuitBreakerLayer::http(b.clone()).layer(answering(code));
        for _ in 0..20 {
            let _ = service.clone().oneshot(Request::new(String::new())).await;
        }
        assert_eq!(b.state(), State::Closed, "{code} is no failure");
    }
    // 50 real 503s leave the old `new` preset closed (it counts only errors) but open the HTTP preset.
    let b = breaker(5);
    let service = CircuitBreakerLayer::new(b.clone()).layer(answering(503));
    for _ in 0..50 {
        let _ = service.clone().oneshot(Request::new(String::new())).await;
    }
    assert_eq!(b.state(), State::Closed, "`new` judges errors only");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_a_failure_to_the_http_preset() {
    let b = breaker(3);
    let slow = service_fn(|_: Request<String>| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, BoxError>(status(200))
    });
    let service = CircuitBreakerLayer::http(b.clone())
        .layer(tower::timeout::TimeoutLayer::new(Duration::from_millis(250)).layer(slow));
    for _ in 0..3 {
        let err = service.clone().oneshot(Request::new(String::new())).await.unwrap_err();
        assert!(err.is::<tower::timeout::error::Elapsed>());
    }
    assert_eq!(b.state(), State::Open);
}

#[tokio::test]
async fn injected_faults_count_only_when_asked() {
    // HTTP: injected 503s are ignored by default, counted with count_injected(true).
    for (count, expected) in [(false, State::Closed), (true, State::Open)] {
        let b = breaker(5);
        let chaos = HttpChaosLayer::error(503, 1.0).unwrap();
        let service = CircuitBreakerLayer::http(b.clone()).count_injected(count).layer(chaos.layer(answering(200)));
        for _ in 0..10 {
            let answer = service.clone().oneshot(Request::new(String::new())).await;
            if let Ok(answer) = answer {
                assert!(answer.headers().contains_key(&INJECTED_HEADER));
            }
        }
        assert_eq!(b.state(), expected, "http, count_injected({count})");
    }
    // Generic: an InjectedError likewise.
    for (count, expected) in [(false, State::Closed), (true, State::Open)] {
        let b = breaker(5);
        let chaos = ChaosLayer::error(1.0).unwrap();
        let ok = service_fn(|_: u32| async { Ok::<_, BoxError>(1u32) });
        let service = CircuitBreakerLayer::new(b.clone()).count_injected(count).layer(chaos.layer(ok));
        for _ in 0..10 {
            let _ = service.clone().oneshot(7).await;
        }
        assert_eq!(b.state(), expected, "generic, count_injected({count})");
    }
}

#[tokio::test]
async fn new_with_a_closure_classifier_still_works() {
    let b = breaker(2);
    let classify = |r: &Result<Response<String>, BoxError>| match r {
        Ok(r) if r.status() == StatusCode::NOT_FOUND => Outcome::Failure,
        _ => Outcome::Success,
    };
    let service = CircuitBreakerLayer::new(b.clone()).classifier(classify).layer(answering(404));
    for _ in 0..2 {
        let _ = service.clone().oneshot(Request::new(String::new())).await;
    }
    assert_eq!(b.state(), State::Open);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The HTTP preset against its definition, for any status, marked injected or not, either option.
    #[test]
    fn the_http_classifier_follows_its_table(code in 100u16..600, injected in any::<bool>(), count in any::<bool>()) {
        let mut response = status(code);
        if injected {
            response.headers_mut().insert(&INJECTED_HEADER, http::HeaderValue::from_static("rule"));
        }
        let classifier = HttpClassifier::new().count_injected(count);
        let expected = if injected && !count {
            Outcome::Ignored
        } else if code >= 500 || code == 429 || code == 408 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        prop_assert_eq!(classifier.classify(&Ok(response)), expected);
        let err: BoxError = if injected { Box::new(injected_error()) } else { "down".into() };
        let expected = if injected && !count { Outcome::Ignored } else { Outcome::Failure };
        prop_assert_eq!(classifier.classify(&Err::<Response<String>, _>(err)), expected);
    }
}

fn injected_error() -> InjectedError {
    // The only way to get one is from a chaos layer: take it from a service that always fails.
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let chaos = ChaosLayer::error(1.0).unwrap();
        let ok = service_fn(|_: u32| async { Ok::<_, BoxError>(1u32) });
        let err = chaos.layer(ok).oneshot(1).await.unwrap_err();
        *err.downcast::<InjectedError>().unwrap()
    })
}

// ---- 3. The fallback knows why ----

/// A fallback that answers 200 with `x-fallback-reason` set from the request's extension.
fn telling_cache<B: Default + Send + 'static>()
-> impl tower::Service<Request<String>, Response = Response<B>, Error = BoxError> + Clone {
    service_fn(|req: Request<String>| async move {
        let reason = *req.extensions().get::<FallbackReason>().expect("a reason");
        let mut answer = Response::new(B::default());
        answer.headers_mut().insert("x-fallback-reason", reason.to_string().parse().unwrap());
        Ok::<_, BoxError>(answer)
    })
}

async fn reason_of<S, B>(service: S) -> String
where
    S: tower::Service<Request<String>, Response = Response<B>, Error = BoxError>,
{
    let answer = service.oneshot(Request::new(String::new())).await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.headers()["x-fallback-reason"].to_str().unwrap().to_owned()
}

#[tokio::test(start_paused = true)]
async fn the_fallback_is_told_why() {
    let fallback = FallbackLayer::http(telling_cache::<String>());

    let b = breaker(1);
    b.force(ForcedState::ForcedOpen);
    assert_eq!(reason_of(fallback.layer(CircuitBreakerLayer::http(b).layer(answering(200)))).await, "breaker_open");

    let chaos = ChaosHandle::for_test("rules: [{ name: e, sample: { mode: exact, rate: 1.0 }, fault: { error: {} } }]");
    let injected_err = chaos.unwrap().layer().layer(answering(200));
    assert_eq!(reason_of(fallback.layer(injected_err)).await, "injected");

    let injected_503 = HttpChaosLayer::error(503, 1.0).unwrap().layer(answering(200));
    let chaos_body = FallbackLayer::http(telling_cache::<brownout_tower::ChaosBody<String>>());
    assert_eq!(reason_of(chaos_body.layer(injected_503)).await, "injected");

    let slow = service_fn(|_: Request<String>| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, BoxError>(status(200))
    });
    let timed = tower::timeout::TimeoutLayer::new(Duration::from_millis(100)).layer(slow);
    assert_eq!(reason_of(fallback.layer(timed)).await, "timeout");

    let failing =
        service_fn(|_: Request<String>| async { Err::<Response<String>, BoxError>("connection refused".into()) });
    assert_eq!(reason_of(fallback.layer(failing)).await, "error");

    assert_eq!(reason_of(fallback.layer(answering(502))).await, "status 502");
    assert_eq!(reason_of(fallback.layer(answering(429))).await, "status 429");

    let flags = Flags::new();
    flags.define("shed", FlagKind::Bool, "true").unwrap();
    flags.define("cached_only", FlagKind::Bool, "false").unwrap();
    let bytes_ok = service_fn(|_: Request<String>| async { Ok::<_, BoxError>(Response::new(bytes::Bytes::new())) });
    let shed = ShedLayer::new(flags.bool("shed").unwrap()).layer(bytes_ok);
    let bytes_body = FallbackLayer::http(telling_cache::<bytes::Bytes>());
    assert_eq!(reason_of(bytes_body.layer(shed)).await, "shed");

    let degraded = fallback.clone().when_flag(flags.bool("cached_only").unwrap());
    flags.set("cached_only", "true").unwrap();
    assert_eq!(reason_of(degraded.layer(answering(200))).await, "flag");

    let picky = fallback.clone().on_response(|r: &Response<String>| r.status() == StatusCode::NOT_FOUND);
    assert_eq!(reason_of(picky.layer(answering(404))).await, "response");
}

#[test]
fn reasons_of_errors_look_through_boxes_and_sources() {
    #[derive(Debug)]
    struct Wrapped(BoxError);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.0)
        }
    }
    let elapsed: BoxError = Box::new(tower::timeout::error::Elapsed::new());
    assert_eq!(FallbackReason::of_error(&elapsed), FallbackReason::Timeout);
    let wrapped: BoxError = Box::new(Wrapped(Box::new(injected_error())));
    assert_eq!(FallbackReason::of_error(&wrapped), FallbackReason::Injected);
    assert_eq!(FallbackReason::of_error(&injected_error()), FallbackReason::Injected, "unboxed");
    let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out");
    assert_eq!(FallbackReason::of_error(&io), FallbackReason::Timeout);
    assert_eq!(FallbackReason::of_error(&"x".parse::<u32>().unwrap_err()), FallbackReason::Error);
}

// ---- 4. on_response with a closure ----

#[tokio::test]
async fn on_response_takes_a_closure() {
    let cache = service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new("cached".to_owned())) });
    let provider = service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(Response::builder().status(404).body("gone".to_owned()).unwrap())
    });
    let service = FallbackLayer::http(cache).on_response(|r: &Response<String>| r.status() == 404).layer(provider);
    assert_eq!(service.oneshot(Request::new(String::new())).await.unwrap().body(), "cached");
}

// ---- 5. Header names, one way ----

#[tokio::test]
async fn header_names_are_header_names() {
    let injected: &http::HeaderName = &INJECTED_HEADER;
    let shed: &http::HeaderName = &SHED_HEADER;
    assert_eq!((injected.as_str(), shed.as_str()), ("x-chaos-injected", "x-degrade-shed"));
    let answer = HttpChaosLayer::error(503, 1.0).unwrap().layer(answering(200));
    let answer = answer.oneshot(Request::new(String::new())).await.unwrap();
    assert!(answer.headers().contains_key(&INJECTED_HEADER));
}

// ---- 6. Chaos handles for tests ----

const FAIL_ALL: &str = "rules: [{ name: fail-all, sample: { mode: exact, rate: 1.0 }, fault: { error: {} } }]";

#[tokio::test]
async fn for_test_is_armed_and_refuses_a_bad_config() {
    let chaos = ChaosHandle::for_test(FAIL_ALL).unwrap();
    assert!(chaos.is_armed());
    let ok = service_fn(|_: u32| async { Ok::<_, BoxError>(1u32) });
    assert!(chaos.layer().layer(ok).oneshot(1).await.unwrap_err().is::<InjectedError>());
    let err = ChaosHandle::for_test("rules: [{ name: x, sample: { mode: exact, rate: 2.0 }, fault: { error: {} } }]");
    assert!(err.unwrap_err().to_string().contains("rate"));
}

#[tokio::test]
async fn disarmed_for_test_stays_disarmed_until_armed() {
    let chaos = ChaosHandle::disarmed_for_test();
    assert!(!chaos.is_armed());
    chaos.load(brownout_chaos::ChaosConfig::from_yaml_str(FAIL_ALL, None).unwrap()).unwrap();
    assert!(!chaos.is_armed(), "the kill switch latches through a load");
    let ok = service_fn(|_: u32| async { Ok::<_, BoxError>(1u32) });
    let service = chaos.layer().layer(ok);
    assert_eq!(service.clone().oneshot(1).await.unwrap(), 1);
    chaos.arm().unwrap();
    assert!(service.oneshot(1).await.unwrap_err().is::<InjectedError>());
}

/// `without_headers`: the fallback gets the method, URI and reason, and none of the caller's headers;
/// `http` hands it the headers too.
#[tokio::test]
async fn without_headers_copies_method_and_uri_only() {
    let seen = service_fn(|req: Request<String>| async move {
        let reason = *req.extensions().get::<FallbackReason>().expect("a reason");
        let mut answer = Response::new(String::new());
        let described =
            format!("{} {} {:?} {} headers={}", req.method(), req.uri(), req.version(), reason, req.headers().len());
        answer.headers_mut().insert("x-seen", described.parse().unwrap());
        Ok::<_, BoxError>(answer)
    });
    let request = || {
        let req = Request::post("/api/quotes/ACME?x=1").version(http::Version::HTTP_2).header("x-user-id", "7");
        req.body("payload".to_owned()).unwrap()
    };
    let lean = FallbackLayer::http(seen).without_headers().layer(answering(503));
    let answer = lean.oneshot(request()).await.unwrap();
    assert_eq!(answer.headers()["x-seen"], "POST /api/quotes/ACME?x=1 HTTP/2.0 status 503 headers=0");
    let full = FallbackLayer::http(seen).layer(answering(503));
    let answer = full.oneshot(request()).await.unwrap();
    assert_eq!(answer.headers()["x-seen"], "POST /api/quotes/ACME?x=1 HTTP/2.0 status 503 headers=1");
}

/// A fallback service counting its clones.
struct CountedClones(Arc<std::sync::atomic::AtomicUsize>);

impl CountedClones {
    fn clones(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Clone for CountedClones {
    fn clone(&self) -> Self {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(self.0.clone())
    }
}

impl Service<Request<String>> for CountedClones {
    type Response = Response<String>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<String>, BoxError>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<String>) -> Self::Future {
        std::future::ready(Ok(Response::new("cached".to_owned())))
    }
}

/// The fallback service is cloned for a request only when it answers it: a request the primary answers costs
/// one reference count, not a clone of the fallback (whose clone may copy a whole client stack).
#[tokio::test]
async fn the_fallback_is_cloned_only_when_it_runs() {
    let counted = CountedClones(Arc::default());
    let layer = FallbackLayer::http(counted.clone()).without_headers();
    let (mut ok, mut failing) = (layer.layer(answering(200)), layer.layer(answering(503)));
    let built = counted.clones();
    for _ in 0..10 {
        assert_eq!(ok.ready().await.unwrap().call(Request::new(String::new())).await.unwrap().status(), 200);
    }
    assert_eq!(counted.clones(), built, "the primary answered: no clone of the fallback");
    for _ in 0..3 {
        let answer = failing.ready().await.unwrap().call(Request::new(String::new())).await.unwrap();
        assert_eq!(answer.body(), "cached");
    }
    assert_eq!(counted.clones(), built + 3, "one clone per fallback answer");
}

/// Every service of the crate hands back the service it wraps, the same three ways.
#[test]
fn every_service_exposes_its_inner_service() {
    #[derive(Debug, PartialEq)]
    struct Inner(u32);
    macro_rules! check {
        ($layer:expr) => {{
            let mut service = $layer.layer(Inner(7));
            assert_eq!(service.get_ref(), &Inner(7));
            service.get_mut().0 = 8;
            assert_eq!(service.into_inner(), Inner(8));
        }};
    }
    let handle = ChaosHandle::for_test("rules: []").unwrap();
    let flags = Flags::new();
    flags.define("shed", FlagKind::Bool, "false").unwrap();
    let cached = service_fn(|_: Request<String>| async { Ok::<_, BoxError>(Response::new(String::new())) });
    check!(handle.http_layer());
    check!(handle.http_layer().same_body());
    check!(handle.layer());
    check!(brownout_tower::BufferBodyLayer::new(1024));
    check!(CircuitBreakerLayer::http(breaker(1)));
    check!(FallbackLayer::http(cached));
    check!(ShedLayer::new(flags.bool("shed").unwrap()));
    let meter = brownout_cost::Meter::builder().build();
    check!(brownout_tower::CostLayer::new(meter, brownout_cost::Labels::new("team", "service")));
    let window = brownout_tower::degrade::LatencyWindow::new(Duration::from_secs(10));
    check!(brownout_tower::degrade::LatencyWindowLayer::new(window));
}
