//! The simulated quote provider and the client stack the service calls it through: the fallback (the quote
//! cache), the circuit breaker, a counter of calls, the client timeout and the chaos layer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use brownout_degrade::breaker::{CircuitBreaker, Outcome};
use brownout_tower::{BufferBodyLayer, ChaosHandle, CircuitBreakerLayer, FallbackLayer, HttpChaosLayer};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tower::util::{BoxCloneSyncService, Either};
use tower::{BoxError, ServiceBuilder};

use super::quotes::{FetchedAt, QuoteCache};
use super::{Counters, Options};

/// The provider as the service calls it: a request for `/api/quotes/{symbol}`, a whole-body answer.
pub(crate) type Provider = BoxCloneSyncService<http::Request<Body>, http::Response<Bytes>, BoxError>;

/// The simulated provider: answers a JSON quote after `latency` (at once when it is zero).
async fn provider(latency: Duration, req: http::Request<Body>) -> Result<http::Response<Full<Bytes>>, BoxError> {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let symbol = symbol_of(&req);
    let body = format!(r#"{{"symbol":"{symbol}","price":101.25}}"#);
    Ok(http::Response::new(Full::new(Bytes::from(body))))
}

/// The largest provider answer the client reads (a quote is a few dozen bytes): a longer body is an error of
/// the call, a failure to the breaker.
const BODY_LIMIT: usize = 64 * 1024;

/// The route of the provider's quote API: what chaos rules match (`/api/quotes/**`).
const PROVIDER_ROUTE: &str = "/api/quotes/";

/// User headers passed on to the provider, so chaos rules can target users, tenants and canaries.
const FORWARDED: [&str; 3] = ["x-user-id", "x-tenant", "x-canary"];
/// Headers starting with this are passed on too: the header-driven faults (`x-chaos-token`,
/// `x-chaos-delay-ms`, `x-chaos-abort-status`), read by the chaos layer on the provider call.
const FORWARDED_PREFIX: &str = "x-chaos-";

fn symbol_of(req: &http::Request<Body>) -> String {
    req.uri().path().trim_start_matches(PROVIDER_ROUTE).to_owned()
}

/// The provider as the service sees it, outermost first: the fallback (the cache, unless
/// [`Options::fallback`] is off), the circuit breaker, a counter of calls that reach the provider, the client
/// timeout, the whole body read ([`BufferBodyLayer`]: a reset, a cut or an oversized body is an error here, as
/// over a real connection, so the breaker counts it and the fallback answers), then chaos. The quote route
/// fills the cache with good answers; the fallback's answers carry `x-served-from: cache` and the cached
/// quote's fetch time ([`FetchedAt`]).
pub(crate) fn client(
    chaos: &ChaosHandle,
    breaker: Arc<CircuitBreaker>,
    options: &Options,
    counters: &Arc<Counters>,
    read: QuoteCache,
    latency: Duration,
) -> Provider {
    let fallback_counter = counters.clone();
    let fallback = tower::service_fn(move |req: http::Request<Body>| {
        let cached = read.get(&symbol_of(&req));
        fallback_counter.fallbacks.fetch_add(1, Ordering::Relaxed);
        async move {
            let mut response = match cached {
                Some((body, fetched)) => {
                    let mut r = http::Response::new(body);
                    r.extensions_mut().insert(FetchedAt(fetched));
                    r
                }
                None => {
                    let mut r = http::Response::new(Bytes::from_static(b"no cached quote"));
                    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    r
                }
            };
            response.headers_mut().insert("x-served-from", HeaderValue::from_static("cache"));
            Ok::<_, BoxError>(response)
        }
    });
    // In a GameDay the injected faults stand for real ones: they count toward the breaker.
    let classify = |r: &Result<http::Response<Bytes>, BoxError>| match r {
        Ok(response) if response.status().is_success() => Outcome::Success,
        _ => Outcome::Failure,
    };
    // The calls that reach the fault layer, also as a Prometheus counter: what a GameDay run against this
    // service from outside (`--target`, `--calls-metric demo_provider_calls_total`) divides by. Registered
    // once: each call is one atomic add. Both behind one reference count: the stack is cloned per request.
    metrics::describe_counter!(
        "demo_provider_calls_total",
        "Calls to the quote provider that reached its fault layer (past the breaker)."
    );
    let calls = Arc::new((counters.clone(), metrics::counter!("demo_provider_calls_total")));
    let guarded = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker).classifier(classify))
        .map_request(move |req: http::Request<Body>| {
            let (counters, metric) = &*calls;
            counters.provider_calls.fetch_add(1, Ordering::Relaxed);
            metric.increment(1);
            req
        })
        .timeout(options.timeout)
        .layer(BufferBodyLayer::new(BODY_LIMIT).name("provider"))
        .layer(HttpChaosLayer::new(chaos.clone()))
        .service_fn(move |req| provider(latency, req));
    // One box for either shape: boxing the guarded stack inside the fallback too would cost a second boxed
    // clone and a second boxed future per request.
    let provider = if options.fallback {
        // The fallback reads only the URI (the symbol): no copy of the header map per request.
        Either::Left(ServiceBuilder::new().layer(FallbackLayer::http(fallback).without_headers()).service(guarded))
    } else {
        Either::Right(guarded)
    };
    BoxCloneSyncService::new(provider)
}

/// The provider without any of Brownout's layers: the client timeout and the whole body read only (for
/// [`bare_router`](super::bare_router)).
pub(crate) fn bare_client(timeout: Duration, latency: Duration) -> Provider {
    let client = ServiceBuilder::new()
        .timeout(timeout)
        .and_then(|response: http::Response<Full<Bytes>>| async move {
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(http::Response::from_parts(parts, bytes))
        })
        .service_fn(move |req| provider(latency, req));
    BoxCloneSyncService::new(client)
}

/// The provider's request for `symbol`, with the user's forwarded headers; `None` when the symbol makes no
/// valid URI.
pub(crate) fn request(symbol: &str, headers: &http::HeaderMap) -> Option<http::Request<Body>> {
    let mut req = http::Request::get(format!("{PROVIDER_ROUTE}{symbol}"));
    for name in FORWARDED {
        if let Some(value) = headers.get(name) {
            req = req.header(name, value);
        }
    }
    for (name, value) in headers {
        if name.as_str().starts_with(FORWARDED_PREFIX) {
            req = req.header(name, value);
        }
    }
    req.body(Body::empty()).ok()
}
