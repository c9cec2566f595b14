//! A tonic quotes service behind Brownout's fault layer, and what a tonic client sees of each fault.
//!
//! `cargo run -p interop-grpc --example grpc_chaos` (a few seconds).

use std::sync::Arc;
use std::time::{Duration, Instant};

use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, SlidingWindow};
use brownout_tower::{ChaosHandle, CircuitBreakerLayer, FallbackLayer, FallbackReason, TokioClock};
use interop_grpc::{BoxError, Quote, QuoteRequest, QuotesClient, StreamRequest, answer, serve};
use tonic::Request;
use tower::ServiceBuilder;

/// One rule giving every request `fault`; none for an empty `fault`.
fn rules(fault: &str) -> Result<ChaosHandle, BoxError> {
    if fault.is_empty() {
        return Ok(ChaosHandle::for_test("rules: []")?);
    }
    let yaml = format!("rules: [{{ name: demo, sample: {{ mode: exact, rate: 1.0 }}, fault: {fault} }}]");
    Ok(ChaosHandle::for_test(&yaml)?)
}

fn brn() -> QuoteRequest {
    QuoteRequest { symbol: "BRN".into() }
}

fn show(outcome: Result<tonic::Response<Quote>, tonic::Status>, started: Instant) -> String {
    let took = started.elapsed().as_millis();
    match outcome {
        Ok(answer) => {
            let from =
                answer.metadata().get("x-fallback-reason").map(|v| format!(" (fallback: {v:?})")).unwrap_or_default();
            format!("OK {} cents{from} after {took} ms", answer.get_ref().price_cents)
        }
        Err(status) => {
            let injected = status
                .metadata()
                .get("x-chaos-injected")
                .map(|v| format!(", x-chaos-injected: {v:?}"))
                .unwrap_or_default();
            format!("{:?} {:?}{injected} after {took} ms", status.code(), status.message())
        }
    }
}

/// One unary call through a fresh server with `fault`, optionally with a deadline.
async fn unary(label: &str, fault: &str, deadline: Option<Duration>) -> Result<(), BoxError> {
    let served = serve(rules(fault)?).await?;
    let mut quotes = QuotesClient::new(served.channel().await?);
    let mut request = Request::new(brn());
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    let started = Instant::now();
    println!("{label:<44} {}", show(quotes.get_quote(request).await, started));
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    println!("unary GetQuote");
    unary("  no fault", "", None).await?;
    unary("  error { grpc: unavailable }", r#"{ error: { grpc: unavailable, message: "quotes down" } }"#, None).await?;
    unary("  latency 300ms", "{ latency: { fixed: 300ms } }", None).await?;
    unary("  hang { max: 60s }, deadline 500 ms", "{ hang: { max: 60s } }", Some(Duration::from_millis(500))).await?;
    unary("  reset", "{ reset: {} }", None).await?;

    println!("server-streaming StreamQuotes (5 quotes)");
    for (label, fault) in [
        ("  latency 300ms", "{ latency: { fixed: 300ms } }"),
        ("  truncate after 40 bytes", "{ truncate: { after_bytes: 40 } }"),
        ("  reset", "{ reset: {} }"),
    ] {
        let served = serve(rules(fault)?).await?;
        let mut quotes = QuotesClient::new(served.channel().await?);
        let started = Instant::now();
        let mut seen = Vec::new();
        let end = match quotes.stream_quotes(StreamRequest { symbol: "BRN".into(), count: 5 }).await {
            Err(status) => format!("{:?} {:?}", status.code(), status.message()),
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(quote)) => seen.push(quote.seq),
                        Ok(None) => break "OK".to_owned(),
                        Err(status) => break format!("{:?} {:?}", status.code(), status.message()),
                    }
                }
            }
        };
        println!("{label:<44} quotes {seen:?}, then {end} after {} ms", started.elapsed().as_millis());
    }

    println!("breaker (opens after 3 failures of 3) under a fallback, injected UNAVAILABLE counted");
    let served = serve(rules(r#"{ error: { grpc: unavailable, message: "quotes down" } }"#)?).await?;
    let config = BreakerConfig::default().minimum_calls(3).window(SlidingWindow::Count { calls: 3, buckets: 1 });
    let breaker = Arc::new(CircuitBreaker::new("quotes", config, TokioClock)?);
    let cache = tower::service_fn(|req: http::Request<tonic::body::Body>| async move {
        let why = req.extensions().get::<FallbackReason>().map_or("unknown", |r| r.as_str());
        let mut response = answer::ok(&Quote { symbol: "BRN".into(), price_cents: 10_000, seq: 0 });
        response.headers_mut().insert("x-fallback-reason", http::HeaderValue::from_static(why));
        Ok::<_, BoxError>(response)
    });
    let transport = ServiceBuilder::new()
        .layer(FallbackLayer::grpc(cache))
        .layer(CircuitBreakerLayer::grpc(breaker.clone()).count_injected(true))
        .service(served.channel().await?);
    let mut quotes = QuotesClient::new(transport);
    for i in 1..=4 {
        let started = Instant::now();
        let outcome = quotes.get_quote(brn()).await;
        println!("  call {i}: {:<38} breaker {:?}", show(outcome, started), breaker.state());
    }
    Ok(())
}
