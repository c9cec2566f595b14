//! The demo service: an axum app whose `/quote/{symbol}` route calls a simulated quote provider through
//! Brownout's fallback, circuit breaker and fault layers and a client timeout; the fallback answers with the
//! last good (cached) quote.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, body::Body};
use bytes::Bytes;
use chaos_tower::{ChaosHandle, CircuitBreakerLayer, FallbackLayer, HttpChaosLayer};
use degrade_flags::breaker::{BreakerConfig, CircuitBreaker, Outcome, SlidingWindow, SystemClock};
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};

type Provider = BoxCloneSyncService<http::Request<Body>, http::Response<Bytes>, BoxError>;

/// What the service counts about its dependency.
#[derive(Debug, Default)]
pub struct Counters {
    /// User requests that needed a quote.
    pub requests: AtomicU64,
    /// Calls that reached the provider stack below the breaker (the chaos layer's traffic).
    pub provider_calls: AtomicU64,
    /// Answers served by the fallback (the cache).
    pub fallbacks: AtomicU64,
}

type Cache = Arc<Mutex<HashMap<String, Bytes>>>;

#[derive(Clone)]
struct AppState {
    provider: Provider,
    cache: Cache,
    counters: Arc<Counters>,
}

/// The simulated provider: answers a JSON quote after a millisecond of work.
async fn provider(req: http::Request<Body>) -> Result<http::Response<Full<Bytes>>, BoxError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    let symbol = req.uri().path().trim_start_matches("/quotes/").to_owned();
    let body = format!(r#"{{"symbol":"{symbol}","price":101.25}}"#);
    Ok(http::Response::new(Full::new(Bytes::from(body))))
}

fn symbol_of(req: &http::Request<Body>) -> String {
    req.uri().path().trim_start_matches("/quotes/").to_owned()
}

/// The provider as the service sees it, outermost first: the fallback (the cache), the circuit breaker,
/// a counter of calls that reach the provider, the client timeout, chaos, then the whole body read (a reset or
/// a cut body is an error here, as over a real connection). Good answers fill the cache.
fn provider_client(
    chaos: &ChaosHandle,
    breaker: Arc<CircuitBreaker>,
    timeout: Duration,
    counters: &Arc<Counters>,
    read: Cache,
) -> Provider {
    let fallback_counter = counters.clone();
    let fallback = tower::service_fn(move |req: http::Request<Body>| {
        let cached = read.lock().expect("cache lock").get(&symbol_of(&req)).cloned();
        fallback_counter.fallbacks.fetch_add(1, Ordering::Relaxed);
        async move {
            let mut response = match cached {
                Some(body) => http::Response::new(body),
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
    let calls = counters.clone();
    let stack = ServiceBuilder::new()
        .layer(FallbackLayer::http(fallback))
        .layer(CircuitBreakerLayer::new(breaker).classifier(classify))
        .map_request(move |req: http::Request<Body>| {
            calls.provider_calls.fetch_add(1, Ordering::Relaxed);
            req
        })
        .timeout(timeout)
        .and_then(|response: http::Response<chaos_tower::ChaosBody<Full<Bytes>>>| async move {
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(http::Response::from_parts(parts, bytes))
        })
        .layer(HttpChaosLayer::new(chaos.clone()))
        .service_fn(provider);
    BoxCloneSyncService::new(stack)
}

async fn quote(State(state): State<AppState>, Path(symbol): Path<String>) -> Response {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    let req = http::Request::get(format!("/quotes/{symbol}")).body(Body::empty()).expect("static request");
    match state.provider.clone().oneshot(req).await {
        Ok(response) if response.status().is_success() => {
            let from_cache = response.headers().get("x-served-from").cloned();
            let body = response.into_body();
            if from_cache.is_none() {
                state.cache.lock().expect("cache lock").insert(symbol, body.clone());
            }
            let mut answer = (StatusCode::OK, body).into_response();
            if let Some(v) = from_cache {
                answer.headers_mut().insert("x-served-from", v);
            }
            answer
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "quote provider unavailable").into_response(),
    }
}

/// The demo app, its counters and its breaker.
pub fn app(chaos: &ChaosHandle, timeout: Duration) -> (Router, Arc<Counters>, Arc<CircuitBreaker>) {
    let counters = Arc::new(Counters::default());
    let config = BreakerConfig {
        minimum_calls: 20,
        window: SlidingWindow::Count { calls: 50, buckets: 5 },
        open_duration: Duration::from_secs(1),
        half_open_probes: 3,
        ..BreakerConfig::default()
    };
    let breaker = Arc::new(CircuitBreaker::new("quote-provider", config, SystemClock::new()).expect("valid breaker"));
    let cache = Cache::default();
    let provider = provider_client(chaos, breaker.clone(), timeout, &counters, cache.clone());
    let state = AppState { provider, cache, counters: counters.clone() };
    (Router::new().route("/quote/{symbol}", get(quote)).with_state(state), counters, breaker)
}
