//! `HttpChaosLayer::same_body`: the layer keeps the service's body type (axum's `Body`, `UnsyncBoxBody`), and
//! every fault still reaches the caller as it does through `ChaosBody`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use brownout_chaos::{ChaosConfig, Environment};
use brownout_tower::{ChaosHandle, HttpChaos, InjectedError, SameBody};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tower::{BoxError, ServiceExt};
use tower_layer::Layer;

fn handle(yaml: &str) -> ChaosHandle {
    let handle = ChaosHandle::for_environment(Environment::Test);
    handle.load(ChaosConfig::from_yaml_str(yaml, None).expect("test config parses")).expect("test config loads");
    handle
}

fn exact(name: &str, fault: &str) -> ChaosHandle {
    handle(&format!("rules: [{{ name: {name}, sample: {{ mode: exact, rate: 1.0 }}, fault: {{ {fault} }} }}]"))
}

fn app(handle: &ChaosHandle) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/big", get(|| async { vec![b'x'; 10 * 1024] }))
        .layer(handle.http_layer().same_body())
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn body_of(response: Response<Body>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

/// The service below the layer answers `Response<Body>`, and so does the layer: no wrapper type.
#[tokio::test]
async fn the_response_type_is_the_inner_one_and_passes_through_untouched() {
    let inner = tower::service_fn(|_req: Request<Body>| async {
        let mut response = Response::new(Body::from("real"));
        response.headers_mut().insert("x-real", "1".parse().unwrap());
        Ok::<_, Infallible>(response)
    });
    let service: HttpChaos<_, SameBody> = handle("rules: []").http_layer().same_body().layer(inner);
    let response: Response<Body> = service.oneshot(get_req("/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-real"], "1");
    assert!(response.headers().get("x-chaos-injected").is_none());
    assert_eq!(body_of(response).await, "real");
}

#[tokio::test]
async fn an_error_fault_is_an_answer_in_the_inner_body_type() {
    let handle = exact("down", "error: { status: 503, body: \"down for chaos\" }");
    let response = app(&handle).oneshot(get_req("/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-chaos-injected"], "down");
    assert_eq!(body_of(response).await, "down for chaos");
}

#[tokio::test]
async fn a_429_carries_retry_after() {
    let handle = exact("limit", "rate_limit: { retry_after: 2s }");
    let response = app(&handle).oneshot(get_req("/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
}

#[tokio::test]
async fn a_reset_fails_the_body_with_the_injected_error() {
    let handle = exact("rst", "reset: {}");
    let response = app(&handle).oneshot(get_req("/health")).await.unwrap();
    assert_eq!(response.headers()["x-chaos-injected"], "rst");
    let err = response.into_body().collect().await.unwrap_err();
    let source = std::error::Error::source(&err).expect("axum wraps the body error");
    assert!(source.is::<InjectedError>(), "{source}");
}

#[tokio::test]
async fn truncate_cuts_the_inner_body() {
    let handle = exact("cut", "truncate: { after_bytes: 100 }");
    let response = app(&handle).oneshot(get_req("/big")).await.unwrap();
    assert_eq!(body_of(response).await.len(), 100);
}

#[tokio::test(start_paused = true)]
async fn throttle_streams_the_inner_body_at_its_rate() {
    let handle = exact("slow", "throttle: { kib_per_sec: 2 }");
    let response = app(&handle).oneshot(get_req("/big")).await.unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(body_of(response).await.len(), 10 * 1024);
    assert!(start.elapsed() >= Duration::from_secs(5), "10 KiB at 2 KiB/s took {:?}", start.elapsed());
}

#[tokio::test]
async fn the_kill_switch_restores_the_real_answer() {
    let handle = exact("down", "error: { status: 503 }");
    let app = app(&handle);
    assert_eq!(app.clone().oneshot(get_req("/health")).await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    handle.disarm();
    let response = app.oneshot(get_req("/health")).await.unwrap();
    assert!(response.headers().get("x-chaos-injected").is_none());
    assert_eq!(body_of(response).await, "ok");
}

/// `http_body_util`'s boxed body works the same way, outside axum.
#[tokio::test]
async fn an_unsync_box_body_service_keeps_its_type() {
    type Boxed = UnsyncBoxBody<Bytes, BoxError>;
    let inner = tower::service_fn(|_req: Request<()>| async {
        let body: Boxed = http_body_util::Full::new(Bytes::from_static(b"real")).map_err(Into::into).boxed_unsync();
        Ok::<_, Infallible>(Response::new(body))
    });
    let handle = exact("down", "error: { status: 500, body: injected }");
    let service = handle.http_layer().same_body().layer(inner);
    let response: Response<Boxed> = service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "injected");
    handle.disarm();
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "real");
}
