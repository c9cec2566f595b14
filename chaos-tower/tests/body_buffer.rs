//! `BufferBodyLayer`: a body that fails, is cut or is too long becomes an error of the service, which the
//! breaker counts and the fallback answers; a good body passes whole, with its head.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, ManualClock, SlidingWindow, State};
use brownout_tower::body::{BodyErrorKind, BufferBodyLayer, DEFAULT_LIMIT, Trailers};
use brownout_tower::{BodyError, ChaosHandle, CircuitBreakerLayer, FallbackLayer, FallbackReason, HttpChaosLayer};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// A body of scripted frames, with the size hint it claims.
struct Scripted {
    frames: VecDeque<Result<Frame<Bytes>, BoxError>>,
    hint: SizeHint,
}

impl Scripted {
    fn data(chunks: &[&'static str]) -> Self {
        let frames = chunks.iter().map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes())))).collect();
        Self { frames, hint: SizeHint::default() }
    }

    fn then_fail(mut self, message: &'static str) -> Self {
        self.frames.push_back(Err(message.into()));
        self
    }

    fn hint(mut self, hint: SizeHint) -> Self {
        self.hint = hint;
        self
    }
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.frames.pop_front())
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

fn breaker() -> Arc<CircuitBreaker> {
    let config = BreakerConfig::default().minimum_calls(3).window(SlidingWindow::Count { calls: 10, buckets: 1 });
    Arc::new(CircuitBreaker::new("provider", config, ManualClock::new()).unwrap())
}

fn provider() -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = BoxError> + Clone {
    service_fn(|_: Request<()>| async {
        let body = Bytes::from(r#"{"symbol":"ACME","price":101.25}"#);
        Ok::<_, BoxError>(Response::builder().header("x-provider", "live").body(Full::new(body)).unwrap())
    })
}

/// The fallback: the cache, which says why it was asked.
fn cache() -> impl Service<Request<()>, Response = Response<Bytes>, Error = BoxError> + Clone {
    service_fn(|req: Request<()>| async move {
        let why = req.extensions().get::<FallbackReason>().map_or("unknown", |r| r.as_str());
        let response = Response::builder().header("x-served-from", "cache").header("x-fallback-reason", why);
        Ok::<_, BoxError>(response.body(Bytes::from_static(b"cached")).unwrap())
    })
}

fn rule(name: &str, fault: &str) -> ChaosHandle {
    ChaosHandle::for_test(&format!("rules: [{{ name: {name}, sample: {{ mode: exact, rate: 1.0 }}, fault: {fault} }}]"))
        .unwrap()
}

/// The README's order: fallback → breaker → buffer → chaos → provider.
fn stack(
    chaos: &ChaosHandle,
    breaker: Arc<CircuitBreaker>,
    count_injected: bool,
) -> impl Service<Request<()>, Response = Response<Bytes>, Error = BoxError> + Clone {
    ServiceBuilder::new()
        .layer(FallbackLayer::http(cache()))
        .layer(CircuitBreakerLayer::http(breaker).count_injected(count_injected))
        .layer(BufferBodyLayer::new(1024))
        .layer(HttpChaosLayer::new(chaos.clone()))
        .service(provider())
}

async fn buffered<B>(limit: usize, response: Response<B>) -> Result<Response<Bytes>, BoxError>
where
    B: Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    buffered_for(limit, Request::new(()), response).await
}

async fn buffered_for<B>(limit: usize, req: Request<()>, response: Response<B>) -> Result<Response<Bytes>, BoxError>
where
    B: Body + Send + 'static,
    B::Error: Into<BoxError>,
{
    let response = std::sync::Mutex::new(Some(response));
    let inner = service_fn(move |_: Request<()>| {
        let r = response.lock().unwrap().take().unwrap();
        async move { Ok::<_, BoxError>(r) }
    });
    BufferBodyLayer::new(limit).layer(inner).oneshot(req).await
}

fn body_error(error: &BoxError) -> &BodyError {
    error.downcast_ref::<BodyError>().unwrap_or_else(|| panic!("a BodyError, not {error}"))
}

// ---- A reset reaches the fallback, and the breaker counts it ----

#[tokio::test]
async fn a_reset_body_reaches_the_fallback_and_the_breaker_counts_it() {
    let chaos = rule("rst", "{ reset: {} }");
    let b = breaker();
    let service = stack(&chaos, b.clone(), true);
    for call in 1..=3 {
        let answer = service.clone().oneshot(Request::new(())).await.unwrap();
        assert_eq!(answer.body(), "cached", "the caller gets the fallback's answer, not a broken 200");
        assert_eq!(answer.headers()["x-served-from"], "cache");
        assert_eq!(answer.headers()["x-fallback-reason"], "injected");
        if call < 3 {
            let snapshot = b.snapshot();
            assert_eq!((snapshot.calls, snapshot.failures), (call, call), "each reset body is a failure");
        }
    }
    assert_eq!(b.state(), State::Open, "three failures of three calls (the minimum) open it");
    // Open: the next call does not reach the provider; the fallback says why.
    let answer = service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(answer.headers()["x-fallback-reason"], "breaker_open");
}

#[tokio::test]
async fn an_injected_reset_is_ignored_by_the_breaker_by_default_but_still_falls_back() {
    let chaos = rule("rst", "{ reset: {} }");
    let b = breaker();
    let service = stack(&chaos, b.clone(), false);
    for _ in 0..5 {
        let answer = service.clone().oneshot(Request::new(())).await.unwrap();
        assert_eq!(answer.headers()["x-fallback-reason"], "injected");
    }
    assert_eq!(b.snapshot().failures, 0, "an injected reset is ignored unless count_injected");
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test]
async fn the_reset_error_names_the_rule() {
    let chaos = rule("rst", "{ reset: {} }");
    let service = BufferBodyLayer::default().layer(HttpChaosLayer::new(chaos).layer(provider()));
    let error = service.oneshot(Request::new(())).await.unwrap_err();
    let error = body_error(&error);
    assert_eq!(error.kind(), BodyErrorKind::Failed { received: 0 });
    assert_eq!(error.injected().map(|e| e.rule()), Some("rst"));
    assert_eq!(FallbackReason::of_dyn_error(error), FallbackReason::Injected);
}

#[tokio::test]
async fn a_real_body_failure_is_a_failure_and_an_error_to_the_fallback() {
    let b = breaker();
    let failing = service_fn(|_: Request<()>| async {
        Ok::<_, BoxError>(Response::new(Scripted::data(&["{\"sym"]).then_fail("connection reset by peer")))
    });
    let service = ServiceBuilder::new()
        .layer(FallbackLayer::http(cache()))
        .layer(CircuitBreakerLayer::http(b.clone()))
        .layer(BufferBodyLayer::new(1024))
        .service(failing);
    let answer = service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(answer.headers()["x-fallback-reason"], "error");
    assert_eq!(b.snapshot().failures, 1, "a real body failure counts without count_injected");

    let error = buffered(1024, Response::new(Scripted::data(&["abc"]).then_fail("boom"))).await.unwrap_err();
    let error = body_error(&error);
    assert_eq!(error.kind(), BodyErrorKind::Failed { received: 3 });
    assert!(error.injected().is_none());
    assert_eq!(std::error::Error::source(error).unwrap().to_string(), "boom");
}

// ---- A cut body ----

#[tokio::test]
async fn a_truncated_body_is_incomplete_and_injected() {
    let chaos = rule("cut", "{ truncate: { after_bytes: 10 } }");
    let service = BufferBodyLayer::new(1024).layer(HttpChaosLayer::new(chaos.clone()).layer(provider()));
    let error = service.oneshot(Request::new(())).await.unwrap_err();
    let error = body_error(&error);
    assert_eq!(error.kind(), BodyErrorKind::Incomplete { expected: 32, received: 10 });
    assert_eq!(error.injected().map(|e| e.rule()), Some("cut"));
    assert_eq!(error.to_string(), "the response body ended after 10 of its 32 bytes");

    // Through the whole stack: the fallback answers, and the breaker counts it when asked to.
    let b = breaker();
    let answer = stack(&chaos, b.clone(), true).oneshot(Request::new(())).await.unwrap();
    assert_eq!(answer.body(), "cached");
    assert_eq!(answer.headers()["x-fallback-reason"], "injected");
    assert_eq!(b.snapshot().failures, 1);
}

#[tokio::test]
async fn a_cut_short_of_its_content_length_is_incomplete() {
    let response = Response::builder().header("content-length", "10").body(Scripted::data(&["abc"])).unwrap();
    let error = buffered(1024, response).await.unwrap_err();
    assert_eq!(body_error(&error).kind(), BodyErrorKind::Incomplete { expected: 10, received: 3 });
    assert!(body_error(&error).injected().is_none());

    // A body short of its own size hint, too.
    let error =
        buffered(1024, Response::new(Scripted::data(&["abc"]).hint(SizeHint::with_exact(5)))).await.unwrap_err();
    assert_eq!(body_error(&error).kind(), BodyErrorKind::Incomplete { expected: 5, received: 3 });
}

#[tokio::test]
async fn a_truncate_rule_that_cuts_nothing_passes() {
    let chaos = rule("cut", "{ truncate: { after_bytes: 4096 } }");
    let service = BufferBodyLayer::new(1024).layer(HttpChaosLayer::new(chaos).layer(provider()));
    let answer = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(answer.body().len(), 32);
}

#[tokio::test]
async fn an_answer_to_head_or_a_204_may_declare_a_length_it_does_not_send() {
    let response = Response::builder().header("content-length", "500").body(Scripted::data(&[])).unwrap();
    let head = Request::head("/").body(()).unwrap();
    let answer = buffered_for(1024, head, response).await.unwrap();
    assert_eq!(answer.headers()["content-length"], "500");
    assert!(answer.body().is_empty());

    let response = Response::builder().status(204).header("content-length", "500").body(Scripted::data(&[])).unwrap();
    assert_eq!(buffered(1024, response).await.unwrap().status(), StatusCode::NO_CONTENT);
}

// ---- The limit ----

#[tokio::test]
async fn a_body_over_the_limit_is_refused_naming_the_limit() {
    // Streamed without a hint: refused at the chunk that crosses the limit.
    let error = buffered(8, Response::new(Scripted::data(&["abcd", "efgh", "i", "never read"]))).await.unwrap_err();
    assert_eq!(body_error(&error).kind(), BodyErrorKind::TooLarge { limit: 8 });
    assert_eq!(error.to_string(), "the response body exceeds the buffer limit of 8 bytes");

    // Exactly the limit passes.
    let answer = buffered(8, Response::new(Scripted::data(&["abcd", "efgh"]))).await.unwrap();
    assert_eq!(answer.body(), "abcdefgh");

    // Declared too long (Content-Length or the size hint): refused before a byte is read.
    let response = Response::builder().header("content-length", "9").body(Scripted::data(&[])).unwrap();
    assert_eq!(body_error(&buffered(8, response).await.unwrap_err()).kind(), BodyErrorKind::TooLarge { limit: 8 });
    let hinted = Scripted { frames: VecDeque::from([Err("polled".into())]), hint: SizeHint::with_exact(9) };
    let error = buffered(8, Response::new(hinted)).await.unwrap_err();
    assert_eq!(body_error(&error).kind(), BodyErrorKind::TooLarge { limit: 8 }, "the body is not polled");

    // Through the stack the refusal is a failure to the breaker and an error to the fallback.
    let b = breaker();
    let big = service_fn(|_: Request<()>| async {
        Ok::<_, BoxError>(Response::new(Full::new(Bytes::from(vec![b'x'; 2048]))))
    });
    let service = ServiceBuilder::new()
        .layer(FallbackLayer::http(cache()))
        .layer(CircuitBreakerLayer::http(b.clone()))
        .layer(BufferBodyLayer::new(1024))
        .service(big);
    let answer = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(answer.headers()["x-fallback-reason"], "error");
    assert_eq!(b.snapshot().failures, 1);
}

#[test]
fn the_default_limit_is_two_mib() {
    assert_eq!(BufferBodyLayer::default().limit(), DEFAULT_LIMIT);
    assert_eq!(DEFAULT_LIMIT, 2 * 1024 * 1024);
}

// ---- A good body ----

#[tokio::test]
async fn a_good_body_passes_unchanged_with_its_head() {
    let chaos = ChaosHandle::disarmed_for_test();
    let b = breaker();
    let answer = stack(&chaos, b.clone(), true).oneshot(Request::new(())).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["x-provider"], "live");
    assert!(!answer.headers().contains_key("x-served-from"));
    assert_eq!(answer.body(), r#"{"symbol":"ACME","price":101.25}"#);
    assert_eq!(b.snapshot().failures, 0);

    // Several chunks, a status, headers, an extension and trailers.
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    let mut body = Scripted::data(&["one ", "two ", "three"]);
    body.frames.push_back(Ok(Frame::trailers(trailers.clone())));
    let mut response = Response::builder().status(201).header("etag", "\"v1\"").body(body).unwrap();
    response.extensions_mut().insert(7u32);
    let answer = buffered(1024, response).await.unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    assert_eq!(answer.headers()["etag"], "\"v1\"");
    assert_eq!(answer.extensions().get::<u32>(), Some(&7));
    assert_eq!(answer.extensions().get::<Trailers>(), Some(&Trailers(trailers)));
    assert_eq!(answer.body(), "one two three");
}

// ---- A slow body under the client timeout ----

/// The timeout sits above the buffer, so it bounds the body's read too: a throttled body times out and the
/// fallback answers with `timeout`.
#[tokio::test(start_paused = true)]
async fn a_throttled_body_times_out_above_the_buffer() {
    let chaos = rule("slow", "{ throttle: { kib_per_sec: 1 } }");
    let service = ServiceBuilder::new()
        .layer(FallbackLayer::http(cache()))
        .layer(CircuitBreakerLayer::http(breaker()))
        .timeout(std::time::Duration::from_millis(10))
        .layer(BufferBodyLayer::new(1024))
        .layer(HttpChaosLayer::new(chaos.clone()))
        .service(provider());
    let start = tokio::time::Instant::now();
    let answer = service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(start.elapsed(), std::time::Duration::from_millis(10));
    assert_eq!(answer.headers()["x-fallback-reason"], "timeout");

    // Without the timeout the slow body arrives whole: 32 bytes at 1 KiB/s end after 31.25 ms.
    let start = tokio::time::Instant::now();
    let service = BufferBodyLayer::new(1024).layer(HttpChaosLayer::new(chaos).layer(provider()));
    let answer = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(answer.body().len(), 32);
    assert!(start.elapsed() >= std::time::Duration::from_millis(31), "{:?}", start.elapsed());
}
