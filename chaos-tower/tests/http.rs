//! The HTTP flavour through axum routers, and once through a real server on loopback.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use brownout_chaos::{ChaosConfig, Environment};
use brownout_tower::{ChaosHandle, HttpChaosLayer, InjectedError};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn handle(yaml: &str) -> ChaosHandle {
    let handle = ChaosHandle::for_environment(Environment::Test);
    handle.load(ChaosConfig::from_yaml_str(yaml, None).expect("test config parses")).expect("test config loads");
    handle
}

fn app(layer: HttpChaosLayer) -> Router {
    Router::new()
        .route("/api/quotes", get(|| async { "quote" }).post(|| async { "posted" }))
        .route("/health", get(|| async { "ok" }))
        .route("/big", get(|| async { vec![b'x'; 10 * 1024] }))
        .layer(layer)
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn body_of(response: http::Response<Body>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn a_429_is_a_response_with_retry_after_and_consistent_rate_limit_headers() {
    let layer = HttpChaosLayer::too_many_requests(Duration::from_secs(2), 1.0).unwrap();
    let response = app(layer).oneshot(get_req("/api/quotes")).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = response.headers();
    assert_eq!(h["retry-after"], "2");
    assert_eq!(h["x-ratelimit-limit"], "100");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert_eq!(h["x-ratelimit-reset"], "2");
    assert_eq!(h["x-chaos-injected"], "rate-limit");
}

#[tokio::test]
async fn the_kill_switch_restores_the_real_answer() {
    let layer = HttpChaosLayer::error(503, 1.0).unwrap();
    let app = app(layer.clone());
    assert_eq!(app.clone().oneshot(get_req("/health")).await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    layer.handle().disarm();
    let response = app.oneshot(get_req("/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("x-chaos-injected").is_none());
    assert_eq!(body_of(response).await, "ok");
}

#[tokio::test]
async fn error_faults_carry_status_body_and_headers() {
    let handle = handle(
        r#"
rules:
  - name: down
    sample: { mode: exact, rate: 1.0 }
    fault:
      error: { status: 503, body: "provider down", headers: { x-upstream: quotes } }
"#,
    );
    let response = app(handle.http_layer()).oneshot(get_req("/api/quotes")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-upstream"], "quotes");
    assert_eq!(response.headers()["x-chaos-injected"], "down");
    assert_eq!(body_of(response).await, "provider down");
}

#[tokio::test]
async fn grpc_faults_are_trailers_only_answers() {
    let handle = handle(
        "rules: [{ name: g, sample: { mode: exact, rate: 1.0 }, fault: { error: { grpc: unavailable, message: try later } } }]",
    );
    let response = app(handle.http_layer()).oneshot(get_req("/api/quotes")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "14");
    assert_eq!(response.headers()["grpc-message"], "try later");
}

#[tokio::test]
async fn route_and_method_targeting_compose() {
    let handle = handle(
        r#"
rules:
  - name: get-quotes
    match: { route: "/api/**", method: GET }
    sample: { mode: exact, rate: 1.0 }
    fault: { error: { status: 500 } }
"#,
    );
    let app = app(handle.http_layer());
    let hit = app.clone().oneshot(get_req("/api/quotes")).await.unwrap();
    assert_eq!(hit.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let post = Request::post("/api/quotes").body(Body::empty()).unwrap();
    assert_eq!(app.clone().oneshot(post).await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.oneshot(get_req("/health")).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn header_conditions_select_requests() {
    let handle = handle(
        r#"
rules:
  - name: canary-only
    match: { headers: { x-tenant: acme }, header_present: [x-canary] }
    sample: { mode: exact, rate: 1.0 }
    fault: { error: { status: 502 } }
"#,
    );
    let app = app(handle.http_layer());
    let both = Request::get("/health").header("x-tenant", "acme").header("x-canary", "1").body(Body::empty());
    assert_eq!(app.clone().oneshot(both.unwrap()).await.unwrap().status(), StatusCode::BAD_GATEWAY);
    let other = Request::get("/health").header("x-tenant", "other").header("x-canary", "1").body(Body::empty());
    assert_eq!(app.clone().oneshot(other.unwrap()).await.unwrap().status(), StatusCode::OK);
    let no_canary = Request::get("/health").header("x-tenant", "acme").body(Body::empty());
    assert_eq!(app.oneshot(no_canary.unwrap()).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn latency_delays_the_answer_in_paused_time() {
    let layer = HttpChaosLayer::latency(Duration::from_millis(750), 1.0).unwrap();
    let start = tokio::time::Instant::now();
    let response = app(layer).oneshot(get_req("/health")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(750));
    assert_eq!(body_of(response).await, "ok");
}

#[tokio::test(start_paused = true)]
async fn throttle_streams_the_body_at_its_rate() {
    let handle = handle(
        "rules: [{ name: slow-body, sample: { mode: exact, rate: 1.0 }, fault: { throttle: { kib_per_sec: 2 } } }]",
    );
    let response = app(handle.http_layer()).oneshot(get_req("/big")).await.unwrap();
    assert_eq!(handle.snapshot().rules[0].active, 1, "the body holds the slot while it streams");
    let start = tokio::time::Instant::now();
    let body = body_of(response).await;
    assert_eq!(body.len(), 10 * 1024);
    // 10 KiB at 2 KiB/s: the body ends when its last byte is due, 5 s after the first (the timer rounds
    // each deadline up to its millisecond).
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(5) && took <= Duration::from_millis(5002), "took {took:?}");
    assert_eq!(handle.snapshot().rules[0].active, 0);
}

#[tokio::test]
async fn truncate_cuts_the_body() {
    let handle =
        handle("rules: [{ name: cut, sample: { mode: exact, rate: 1.0 }, fault: { truncate: { after_bytes: 100 } } }]");
    let response = app(handle.http_layer()).oneshot(get_req("/big")).await.unwrap();
    assert_eq!(body_of(response).await.len(), 100);
}

#[tokio::test]
async fn a_reset_fails_the_body_with_a_typed_error() {
    let handle = handle("rules: [{ name: rst, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]");
    let response = app(handle.http_layer()).oneshot(get_req("/health")).await.unwrap();
    assert_eq!(response.headers()["x-chaos-injected"], "rst");
    let err = response.into_body().collect().await.unwrap_err();
    let source = std::error::Error::source(&err).expect("axum wraps the body error");
    assert!(source.is::<InjectedError>(), "{source}");
}

#[tokio::test(start_paused = true)]
async fn a_hang_answers_504_at_its_bound() {
    let handle = handle("rules: [{ name: h, sample: { mode: exact, rate: 1.0 }, fault: { hang: { max: 45s } } }]");
    let start = tokio::time::Instant::now();
    let response = app(handle.http_layer()).oneshot(get_req("/health")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(45));
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(response.headers()["x-chaos-injected"], "h");
}

/// The kill switch wins over faults already drawn: a request waiting in an injected delay before an injected
/// error, or in a hang, goes to the real service when the switch is thrown, not to the injected answer.
#[tokio::test(start_paused = true)]
async fn faults_in_flight_obey_the_kill_switch() {
    let handle = handle(
        r#"
rules:
  - name: slow
    sample: { mode: exact, rate: 1.0 }
    match: { route: /api/quotes }
    fault: { latency: { fixed: 10s } }
  - name: down
    sample: { mode: exact, rate: 1.0 }
    match: { route: /api/quotes }
    fault: { error: { status: 503 } }
  - name: stuck
    sample: { mode: exact, rate: 1.0 }
    match: { route: /health }
    fault: { hang: { max: 1h } }
"#,
    );
    let app = app(handle.http_layer());
    let delayed = tokio::spawn(app.clone().oneshot(get_req("/api/quotes")));
    let hung = tokio::spawn(app.clone().oneshot(get_req("/health")));
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.disarm();
    for (request, answer) in [(delayed, "quote"), (hung, "ok")] {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK, "the real answer, not the injected one");
        assert!(response.headers().get("x-chaos-injected").is_none());
        assert_eq!(body_of(response).await, answer);
    }
    // Armed again, the same request gets its injected error after the delay.
    handle.arm().unwrap();
    let start = tokio::time::Instant::now();
    let response = app.oneshot(get_req("/api/quotes")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-chaos-injected"], "down");
}

mod header_faults {
    use super::*;

    const TOKEN: &str = "a-test-token-of-decent-length";

    fn handle() -> ChaosHandle {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("brownout-header-token-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        super::handle(&format!(
            "header_faults: {{ enabled: true, token_file: '{}', max_delay: 2s }}\nrules: []",
            path.display()
        ))
    }

    fn req(pairs: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::get("/health");
        for (n, v) in pairs {
            builder = builder.header(*n, *v);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn abort_status_needs_the_token() {
        let app = app(handle().http_layer());
        let denied = app.clone().oneshot(req(&[("x-chaos-abort-status", "503")])).await.unwrap();
        assert_eq!(denied.status(), StatusCode::OK, "no token: headers ignored");
        let wrong = req(&[("x-chaos-abort-status", "503"), ("x-chaos-token", "nope")]);
        assert_eq!(app.clone().oneshot(wrong).await.unwrap().status(), StatusCode::OK);
        let ok = req(&[("x-chaos-abort-status", "503"), ("x-chaos-token", TOKEN)]);
        let response = app.oneshot(ok).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["x-chaos-injected"], "header");
    }

    #[tokio::test(start_paused = true)]
    async fn delay_is_clamped_to_the_maximum() {
        let app = app(handle().http_layer());
        let start = tokio::time::Instant::now();
        let asked = req(&[("x-chaos-delay-ms", "3600000"), ("x-chaos-token", TOKEN)]);
        assert_eq!(app.oneshot(asked).await.unwrap().status(), StatusCode::OK);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn malformed_values_get_a_400() {
        let app = app(handle().http_layer());
        for bad in ["-1", "1e3", "soon"] {
            let asked = req(&[("x-chaos-delay-ms", bad), ("x-chaos-token", TOKEN)]);
            let response = app.clone().oneshot(asked).await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
            assert!(String::from_utf8(body_of(response).await.to_vec()).unwrap().contains("x-chaos-delay-ms"));
        }
    }
}

/// Through a real hyper server on loopback: the 429 arrives as a response, a reset as a broken connection.
#[tokio::test]
async fn over_a_real_connection() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let handle = handle(
        r#"
rules:
  - name: rl
    match: { route: /api/quotes }
    sample: { mode: exact, rate: 1.0 }
    fault: { rate_limit: { retry_after: 3s, limit: 50 } }
  - name: rst
    match: { route: /health }
    sample: { mode: exact, rate: 1.0 }
    fault: { reset: {} }
"#,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, app(handle.http_layer())).into_future());
    let client = Client::builder(TokioExecutor::new()).build_http::<http_body_util::Empty<Bytes>>();

    let response = client.get(format!("http://{addr}/api/quotes").parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(response.headers()["x-ratelimit-limit"], "50");
    assert_eq!(response.headers()["x-chaos-injected"], "rl");

    let reset = async {
        let response = client.get(format!("http://{addr}/health").parse().unwrap()).await?;
        response.into_body().collect().await.map(|_| ()).map_err(Into::into)
    };
    let result: Result<(), Box<dyn std::error::Error + Send + Sync>> = reset.await;
    assert!(result.is_err(), "a reset must not look like a complete answer");
    server.abort();
}
