//! The fault layer in front of a real tonic server, seen by a real tonic client on loopback.

use std::time::Duration;

use brownout_tower::ChaosHandle;
use interop_grpc::{Quote, QuoteRequest, QuotesClient, StreamRequest, serve};
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Request};

/// A handle whose one rule, `name`, gives every request `fault`.
fn rule(name: &str, fault: &str) -> ChaosHandle {
    let yaml = format!("rules: [{{ name: {name}, sample: {{ mode: exact, rate: 1.0 }}, fault: {fault} }}]");
    ChaosHandle::for_test(&yaml).unwrap()
}

fn brn() -> QuoteRequest {
    QuoteRequest { symbol: "BRN".into() }
}

fn stream_of(count: u32) -> StreamRequest {
    StreamRequest { symbol: "BRN".into(), count }
}

async fn client(chaos: ChaosHandle) -> (interop_grpc::Served, QuotesClient<Channel>) {
    let served = serve(chaos).await.unwrap();
    let channel = served.channel().await.unwrap();
    (served, QuotesClient::new(channel))
}

fn injected_by(status: &tonic::Status) -> Option<&str> {
    status.metadata().get("x-chaos-injected").and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn without_a_fault_the_client_gets_its_quotes() {
    let (_served, mut quotes) = client(ChaosHandle::for_test("rules: []").unwrap()).await;
    let quote = quotes.get_quote(brn()).await.unwrap().into_inner();
    assert_eq!(quote, Quote { symbol: "BRN".into(), price_cents: 10_125, seq: 0 });
    let mut stream = quotes.stream_quotes(stream_of(3)).await.unwrap().into_inner();
    let mut seqs = Vec::new();
    while let Some(quote) = stream.message().await.unwrap() {
        seqs.push(quote.seq);
    }
    assert_eq!(seqs, [1, 2, 3]);
}

#[tokio::test]
async fn an_injected_status_reaches_the_client_with_its_code_message_and_marker() {
    let fault = r#"{ error: { grpc: unavailable, message: "quotes down for a drill" } }"#;
    let (_served, mut quotes) = client(rule("quotes-down", fault)).await;

    let status = quotes.get_quote(brn()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "quotes down for a drill");
    assert_eq!(injected_by(&status), Some("quotes-down"));

    let status = quotes.stream_quotes(stream_of(3)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "quotes down for a drill");
    assert_eq!(injected_by(&status), Some("quotes-down"));
}

#[tokio::test]
async fn a_real_status_carries_no_injection_marker() {
    let (_served, mut quotes) = client(ChaosHandle::for_test("rules: []").unwrap()).await;
    let status = quotes.get_quote(QuoteRequest { symbol: "NOPE".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(injected_by(&status), None);
}

/// Paused time: the 10 s latency takes no wall time; the clock moves only when every task waits.
#[tokio::test(start_paused = true)]
async fn latency_delays_a_unary_call() {
    let (_served, mut quotes) = client(rule("slow", "{ latency: { fixed: 10s } }")).await;
    let started = Instant::now();
    let mut call = Box::pin(quotes.get_quote(brn()));
    // A 9 s timer set at the same time fires first: the call is still waiting.
    tokio::select! {
        biased;
        _ = &mut call => panic!("the call answered before the injected latency"),
        () = tokio::time::sleep(Duration::from_secs(9)) => {}
    }
    let quote = call.await.unwrap().into_inner();
    assert_eq!(quote.price_cents, 10_125);
    assert!(started.elapsed() >= Duration::from_secs(10), "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn latency_delays_a_streaming_call() {
    let (_served, mut quotes) = client(rule("slow", "{ latency: { fixed: 10s } }")).await;
    let started = Instant::now();
    let mut call = Box::pin(quotes.stream_quotes(stream_of(2)));
    tokio::select! {
        biased;
        _ = &mut call => panic!("the stream started before the injected latency"),
        () = tokio::time::sleep(Duration::from_secs(9)) => {}
    }
    let mut stream = call.await.unwrap().into_inner();
    assert!(started.elapsed() >= Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(stream.message().await.unwrap().map(|q| q.seq), Some(1));
    assert_eq!(stream.message().await.unwrap().map(|q| q.seq), Some(2));
    assert_eq!(stream.message().await.unwrap(), None);
}

/// A tonic client enforces its own deadline (`Request::set_timeout`, sent as `grpc-timeout`): the call ends at
/// the deadline, not at the hang's `max`, with tonic's local timeout (tonic reports it as `CANCELLED`,
/// "Timeout expired", its `TimeoutExpired` as the source).
#[tokio::test(start_paused = true)]
async fn a_hang_ends_at_the_clients_deadline() {
    let (_served, mut quotes) = client(rule("stuck", "{ hang: { max: 60s } }")).await;
    let started = Instant::now();
    let mut request = Request::new(brn());
    request.set_timeout(Duration::from_secs(2));
    let status = quotes.get_quote(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert!(timed_out(&status), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());

    let started = Instant::now();
    let mut request = Request::new(stream_of(3));
    request.set_timeout(Duration::from_secs(2));
    let status = quotes.stream_quotes(request).await.unwrap_err();
    assert!(timed_out(&status), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
}

/// Is tonic's `TimeoutExpired` in the status's source chain?
fn timed_out(status: &tonic::Status) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = next {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A `GetQuote` request with `grpc-timeout: timeout` through the fault layer (rule `stuck`, `fault`) straight
/// into the tonic service, without a transport.
async fn hang_before_the_server(
    fault: &str,
    timeout: &str,
) -> http::Response<brownout_tower::ChaosBody<tonic::body::Body>> {
    use tower::{Layer, ServiceExt};
    let service = brownout_tower::HttpChaosLayer::new(rule("stuck", fault)).layer(interop_grpc::QuotesServer);
    let request = http::Request::builder()
        .method("POST")
        .uri(interop_grpc::server::GET_QUOTE)
        .header("content-type", "application/grpc")
        .header("grpc-timeout", timeout)
        .body(tonic::body::Body::empty())
        .unwrap();
    service.oneshot(request).await.unwrap()
}

/// The server's side of the deadline: the layer itself ends the hang at the request's `grpc-timeout` with a
/// trailers-only `DEADLINE_EXCEEDED` marked as injected (what a server-side breaker, fallback or log sees, and
/// a client that does not time out on its own). Through the tonic service directly, so no client timer races.
#[tokio::test(start_paused = true)]
async fn the_layer_answers_a_hang_with_deadline_exceeded_at_the_grpc_timeout() {
    let started = Instant::now();
    let response = hang_before_the_server("{ hang: { max: 60s } }", "1500m").await;
    assert_eq!(started.elapsed(), Duration::from_millis(1500));
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(response.headers()["x-chaos-injected"], "stuck");
    let status = tonic::Status::from_header_map(response.headers()).expect("a trailers-only status");
    assert_eq!(status.code(), Code::DeadlineExceeded);
}

/// A deadline past the hang's `max` changes nothing: the hang answers at `max` (`504`).
#[tokio::test(start_paused = true)]
async fn a_deadline_after_the_hangs_max_leaves_the_hang_alone() {
    let started = Instant::now();
    let response = hang_before_the_server("{ hang: { max: 5s } }", "10S").await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    // At its `max` the hang gives up as a gRPC status: UNAVAILABLE, what gRPC maps a 504 to.
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(response.headers()["grpc-status"], "14");
}

/// Without a deadline the hang runs to its `max`; a gRPC caller then gets `UNAVAILABLE` (what gRPC maps the
/// `504` an HTTP caller gets to), with a readable message and the marker in the metadata.
#[tokio::test(start_paused = true)]
async fn a_hang_without_a_deadline_fails_the_call_at_its_max() {
    let (_served, mut quotes) = client(rule("stuck", "{ hang: { max: 30s } }")).await;
    let started = Instant::now();
    let status = quotes.get_quote(brn()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().starts_with("injected hang gave up after 30s"), "{status:?}");
    assert_eq!(injected_by(&status), Some("stuck"));
    assert!(started.elapsed() >= Duration::from_secs(30), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_reset_fails_a_unary_call() {
    let (_served, mut quotes) = client(rule("rst", "{ reset: {} }")).await;
    let status = quotes.get_quote(brn()).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    // The server is still there: the next call without the rule answers.
}

#[tokio::test]
async fn a_reset_fails_a_streaming_call() {
    let (_served, mut quotes) = client(rule("rst", "{ reset: {} }")).await;
    let status = match quotes.stream_quotes(stream_of(3)).await {
        Ok(response) => response.into_inner().message().await.unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::Internal, "{status:?}");
}

/// A cut body mid-stream: each quote is a 15-byte frame (5 bytes of prefix, 10 of message), so a cut after
/// 40 bytes lets two quotes through and breaks the third.
#[tokio::test]
async fn a_body_cut_mid_stream_fails_the_stream_after_the_quotes_before_it() {
    let (_served, mut quotes) = client(rule("cut", "{ truncate: { after_bytes: 40 } }")).await;
    let mut stream = quotes.stream_quotes(stream_of(5)).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().map(|q| q.seq), Some(1));
    assert_eq!(stream.message().await.unwrap().map(|q| q.seq), Some(2));
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
}

/// A unary answer cut inside its one message (a 15-byte frame cut after 10 bytes).
#[tokio::test]
async fn a_body_cut_fails_a_unary_call() {
    let (_served, mut quotes) = client(rule("cut", "{ truncate: { after_bytes: 10 } }")).await;
    let status = quotes.get_quote(brn()).await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
}

/// An `error` fault with an HTTP status, and a `rate_limit`, reach a gRPC client as the status gRPC maps the
/// HTTP status to, readable and marked; an HTTP client of the same rules still gets the HTTP answer.
#[tokio::test]
async fn http_statuses_reach_a_grpc_client_as_grpc_statuses() {
    let (_served, mut quotes) = client(rule("down", "{ error: { status: 503 } }")).await;
    let status = quotes.get_quote(brn()).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unavailable, "injected 503 Service Unavailable"));
    assert_eq!(injected_by(&status), Some("down"));
    let status = quotes.stream_quotes(stream_of(3)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);

    let (_served, mut quotes) = client(rule("denied", "{ error: { status: 403 } }")).await;
    assert_eq!(quotes.get_quote(brn()).await.unwrap_err().code(), Code::PermissionDenied);

    let (_served, mut quotes) = client(rule("limit", "{ rate_limit: { retry_after: 3s } }")).await;
    let status = quotes.get_quote(brn()).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unavailable, "rate limited: retry after 3s"));
    assert_eq!(status.metadata().get("retry-after").and_then(|v| v.to_str().ok()), Some("3"));

    // Not a gRPC call: the HTTP answer, as before.
    use tower::{Layer, ServiceExt};
    let service = brownout_tower::HttpChaosLayer::new(rule("down", "{ error: { status: 503 } }"))
        .layer(interop_grpc::QuotesServer);
    let request = http::Request::get("/anything").body(tonic::body::Body::empty()).unwrap();
    assert_eq!(service.oneshot(request).await.unwrap().status(), http::StatusCode::SERVICE_UNAVAILABLE);
}
