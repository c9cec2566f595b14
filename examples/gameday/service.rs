//! The demo service: an axum app whose `/quote/{symbol}` route calls a simulated quote provider through
//! chaos-tower's fault layer and a client timeout, and falls back to the last good (cached) quote.

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
use chaos_tower::{ChaosHandle, HttpChaosLayer};
use http_body_util::{BodyExt, Full};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};

type Provider = BoxCloneSyncService<http::Request<Body>, http::Response<Bytes>, BoxError>;

/// What the service counts about its dependency.
#[derive(Debug, Default)]
pub struct Counters {
    pub provider_calls: AtomicU64,
    pub provider_failures: AtomicU64,
    pub fallbacks: AtomicU64,
}

#[derive(Clone)]
struct AppState {
    provider: Provider,
    cache: Arc<Mutex<HashMap<String, Bytes>>>,
    counters: Arc<Counters>,
}

/// The simulated provider: answers a JSON quote after a millisecond of work.
async fn provider(req: http::Request<Body>) -> Result<http::Response<Full<Bytes>>, BoxError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    let symbol = req.uri().path().trim_start_matches("/quotes/").to_owned();
    let body = format!(r#"{{"symbol":"{symbol}","price":101.25}}"#);
    Ok(http::Response::new(Full::new(Bytes::from(body))))
}

/// The provider as the service sees it: chaos, then a client timeout, then the whole body read (a reset or a
/// cut body is an error here, as it would be over a real connection).
fn provider_client(chaos: &ChaosHandle, timeout: Duration) -> Provider {
    let stack =
        ServiceBuilder::new().timeout(timeout).layer(HttpChaosLayer::new(chaos.clone())).service_fn(provider).and_then(
            |response: http::Response<chaos_tower::ChaosBody<Full<Bytes>>>| async move {
                let (parts, body) = response.into_parts();
                let bytes = body.collect().await?.to_bytes();
                Ok::<_, BoxError>(http::Response::from_parts(parts, bytes))
            },
        );
    BoxCloneSyncService::new(stack)
}

async fn quote(State(state): State<AppState>, Path(symbol): Path<String>) -> Response {
    state.counters.provider_calls.fetch_add(1, Ordering::Relaxed);
    let req = http::Request::get(format!("/quotes/{symbol}")).body(Body::empty()).expect("static request");
    let answer = state.provider.clone().oneshot(req).await;
    match answer {
        Ok(response) if response.status().is_success() => {
            let body = response.into_body();
            state.cache.lock().expect("cache lock").insert(symbol, body.clone());
            (StatusCode::OK, body).into_response()
        }
        _ => {
            state.counters.provider_failures.fetch_add(1, Ordering::Relaxed);
            let cached = state.cache.lock().expect("cache lock").get(&symbol).cloned();
            match cached {
                Some(body) => {
                    state.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
                    let mut response = (StatusCode::OK, body).into_response();
                    response.headers_mut().insert("x-served-from", HeaderValue::from_static("cache"));
                    response
                }
                None => (StatusCode::SERVICE_UNAVAILABLE, "quote provider unavailable").into_response(),
            }
        }
    }
}

/// The demo app and its counters.
pub fn app(chaos: &ChaosHandle, timeout: Duration) -> (Router, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let state =
        AppState { provider: provider_client(chaos, timeout), cache: Arc::default(), counters: counters.clone() };
    (Router::new().route("/quote/{symbol}", get(quote)).with_state(state), counters)
}
