//! The breaker's and the fallback's gRPC presets around a real tonic channel to a real tonic server.

use std::sync::Arc;
use std::time::Duration;

use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, SlidingWindow, State};
use brownout_tower::body::BufferBodyLayer;
use brownout_tower::{ChaosHandle, CircuitBreakerLayer, FallbackLayer, FallbackReason, TokioClock};
use interop_grpc::server::MAX_STREAM;
use interop_grpc::{BoxError, Quote, QuoteRequest, QuotesClient, StreamRequest, answer, serve};
use tonic::Code;
use tonic::transport::Channel;
use tower::ServiceBuilder;

fn rule(name: &str, fault: &str) -> ChaosHandle {
    let yaml = format!("rules: [{{ name: {name}, sample: {{ mode: exact, rate: 1.0 }}, fault: {fault} }}]");
    ChaosHandle::for_test(&yaml).unwrap()
}

fn unavailable() -> ChaosHandle {
    rule("quotes-down", r#"{ error: { grpc: unavailable, message: "drill" } }"#)
}

/// Opens after 4 failures of the last 4 calls; stays open an hour.
fn breaker() -> Arc<CircuitBreaker> {
    let config = BreakerConfig::default()
        .minimum_calls(4)
        .window(SlidingWindow::Count { calls: 4, buckets: 1 })
        .open_duration(Duration::from_secs(3600));
    Arc::new(CircuitBreaker::new("quotes", config, TokioClock).unwrap())
}

fn brn() -> QuoteRequest {
    QuoteRequest { symbol: "BRN".into() }
}

const CACHED: Quote = Quote { symbol: String::new(), price_cents: 9_999, seq: 0 };

/// The fallback: a cached quote, saying why it answered in `x-fallback-reason`.
async fn cache(req: http::Request<tonic::body::Body>) -> Result<http::Response<tonic::body::Body>, BoxError> {
    let why = req.extensions().get::<FallbackReason>().map_or("unknown", |r| r.as_str());
    let mut response = answer::ok(&CACHED);
    response.headers_mut().insert("x-fallback-reason", why.parse().unwrap());
    Ok(response)
}

/// The client's transport that reads whole answers: the breaker judges the buffered answer (trailers
/// included), then the answer is replayed to the client with its trailers.
fn buffered(
    channel: Channel,
    breaker: Arc<CircuitBreaker>,
) -> impl tower::Service<
    http::Request<tonic::body::Body>,
    Response = http::Response<tonic::body::Body>,
    Error = BoxError,
    Future: Send,
> + Clone {
    ServiceBuilder::new()
        .map_response(answer::replay)
        .layer(CircuitBreakerLayer::grpc(breaker))
        .layer(BufferBodyLayer::new(64 * 1024))
        .service(channel)
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_on_injected_unavailable() {
    let served = serve(unavailable()).await.unwrap();
    let breaker = breaker();
    let transport = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::grpc(breaker.clone()).count_injected(true))
        .service(served.channel().await.unwrap());
    let mut quotes = QuotesClient::new(transport);
    for _ in 0..4 {
        assert_eq!(quotes.get_quote(brn()).await.unwrap_err().code(), Code::Unavailable);
    }
    assert_eq!(breaker.state(), State::Open);
    // Open: the next call is refused before it reaches the server.
    let status = quotes.get_quote(brn()).await.unwrap_err();
    assert!(status.metadata().get("x-chaos-injected").is_none(), "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn the_breaker_ignores_injected_unavailable_by_default() {
    let served = serve(unavailable()).await.unwrap();
    let breaker = breaker();
    let transport = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::grpc(breaker.clone()))
        .service(served.channel().await.unwrap());
    let mut quotes = QuotesClient::new(transport);
    for _ in 0..8 {
        assert_eq!(quotes.get_quote(brn()).await.unwrap_err().code(), Code::Unavailable);
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_stays_closed_on_answers_that_are_not_failures() {
    let served = serve(ChaosHandle::for_test("rules: []").unwrap()).await.unwrap();
    let breaker = breaker();
    let transport = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::grpc(breaker.clone()))
        .service(served.channel().await.unwrap());
    let mut quotes = QuotesClient::new(transport);
    for _ in 0..8 {
        // NOT_FOUND: the call was wrong, the server is fine.
        let status = quotes.get_quote(QuoteRequest { symbol: "NOPE".into() }).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    assert_eq!(breaker.state(), State::Closed);
}

/// A real `RESOURCE_EXHAUSTED` in the trailers, after the stream's quotes: seen by the breaker through
/// `BufferBodyLayer` (which keeps the trailers), and replayed to the client with them.
#[tokio::test(start_paused = true)]
async fn the_breaker_reads_a_status_from_buffered_trailers() {
    let served = serve(ChaosHandle::for_test("rules: []").unwrap()).await.unwrap();
    let breaker = breaker();
    let mut quotes = QuotesClient::new(buffered(served.channel().await.unwrap(), breaker.clone()));
    for _ in 0..4 {
        let request = StreamRequest { symbol: "BRN".into(), count: MAX_STREAM + 1 };
        let mut stream = quotes.stream_quotes(request).await.unwrap().into_inner();
        for seq in 1..=MAX_STREAM {
            assert_eq!(stream.message().await.unwrap().map(|q| q.seq), Some(seq));
        }
        assert_eq!(stream.message().await.unwrap_err().code(), Code::ResourceExhausted);
    }
    assert_eq!(breaker.state(), State::Open);
}

/// A whole stream within the cap ends `OK` in its trailers: a success, read and replayed the same way.
#[tokio::test(start_paused = true)]
async fn a_buffered_stream_that_ends_ok_is_a_success() {
    let served = serve(ChaosHandle::for_test("rules: []").unwrap()).await.unwrap();
    let breaker = breaker();
    let mut quotes = QuotesClient::new(buffered(served.channel().await.unwrap(), breaker.clone()));
    for _ in 0..4 {
        let mut stream =
            quotes.stream_quotes(StreamRequest { symbol: "BRN".into(), count: 3 }).await.unwrap().into_inner();
        let mut n = 0;
        while stream.message().await.unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
    }
    assert_eq!(breaker.snapshot().failures, 0);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_fallback_answers_an_injected_unavailable_then_the_open_breaker() {
    let served = serve(unavailable()).await.unwrap();
    let breaker = breaker();
    let transport = ServiceBuilder::new()
        .layer(FallbackLayer::grpc(tower::service_fn(cache)))
        .layer(CircuitBreakerLayer::grpc(breaker.clone()).count_injected(true))
        .service(served.channel().await.unwrap());
    let mut quotes = QuotesClient::new(transport);
    for _ in 0..4 {
        let answer = quotes.get_quote(brn()).await.unwrap();
        assert_eq!(answer.metadata().get("x-fallback-reason").unwrap(), "injected");
        assert_eq!(answer.into_inner(), CACHED);
    }
    assert_eq!(breaker.state(), State::Open);
    let answer = quotes.get_quote(brn()).await.unwrap();
    assert_eq!(answer.metadata().get("x-fallback-reason").unwrap(), "breaker_open");
    assert_eq!(answer.into_inner(), CACHED);
}

#[tokio::test]
async fn the_fallback_leaves_a_healthy_answer_alone() {
    let served = serve(ChaosHandle::for_test("rules: []").unwrap()).await.unwrap();
    let transport = ServiceBuilder::new()
        .layer(FallbackLayer::grpc(tower::service_fn(cache)))
        .map_err(BoxError::from)
        .service(served.channel().await.unwrap());
    let mut quotes = QuotesClient::new(transport);
    let answer = quotes.get_quote(brn()).await.unwrap();
    assert!(answer.metadata().get("x-fallback-reason").is_none());
    assert_eq!(answer.into_inner().price_cents, 10_125);
    // A real NOT_FOUND is the server's answer, not a failure: it reaches the client.
    let status = quotes.get_quote(QuoteRequest { symbol: "NOPE".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}
