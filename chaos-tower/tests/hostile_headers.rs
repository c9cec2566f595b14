//! `x-chaos-*` header faults tried with hostile values: huge, negative, garbage and over-long numbers, with
//! and without the token. Without the token the headers are ignored; with it a malformed value gets a `400`
//! naming the header; a huge delay is clamped. Neither changes the rule set nor counts a fault.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use brownout_chaos::{ChaosConfig, Environment};
use brownout_tower::ChaosHandle;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const TOKEN: &str = "a-hostile-test-token-0123456789";

fn handle() -> ChaosHandle {
    // One file per call: the tests of this binary run on parallel threads, and a shared file could be read
    // while another test is rewriting it (it was: an empty token failed CI once).
    static FILES: AtomicUsize = AtomicUsize::new(0);
    let n = FILES.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("brownout-hostile-header-token-{}-{n}", std::process::id()));
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    let yaml =
        format!("header_faults: {{ enabled: true, token_file: '{}', max_delay: 2s }}\nrules: []", path.display());
    let handle = ChaosHandle::for_environment(Environment::Test);
    handle.load(ChaosConfig::from_yaml_str(&yaml, None).unwrap()).unwrap();
    handle
}

fn app(handle: &ChaosHandle) -> Router {
    Router::new().route("/health", get(|| async { "ok" })).layer(handle.http_layer())
}

fn req(header: &str, value: &[u8], token: Option<&str>) -> Request<Body> {
    let mut r = Request::get("/health").body(Body::empty()).unwrap();
    r.headers_mut()
        .insert(http::HeaderName::from_bytes(header.as_bytes()).unwrap(), HeaderValue::from_bytes(value).unwrap());
    if let Some(t) = token {
        r.headers_mut().insert("x-chaos-token", HeaderValue::from_str(t).unwrap());
    }
    r
}

fn hostile() -> Vec<Vec<u8>> {
    let mut values: Vec<Vec<u8>> =
        ["-1", "-0", "+5", "1e3", "0x10", "1.5", "soon", " ", "9 9", "١٢", "NaN", "-99999999999999999999"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
    values.push(vec![0xff, 0xfe]);
    values.push("9".repeat(8 * 1024).into_bytes());
    values.push("-".repeat(8 * 1024).into_bytes());
    values
}

#[tokio::test(start_paused = true)]
async fn without_the_token_hostile_values_are_ignored_and_count_nothing() {
    let chaos = handle();
    let app = app(&chaos);
    let before = chaos.snapshot();
    for header in ["x-chaos-delay-ms", "x-chaos-abort-status"] {
        for value in hostile() {
            for token in [None, Some("wrong-token-wrong-token-0000")] {
                let start = tokio::time::Instant::now();
                let response = app.clone().oneshot(req(header, &value, token)).await.unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::OK,
                    "{header}: {:?}",
                    String::from_utf8_lossy(&value[..value.len().min(20)])
                );
                assert_eq!(start.elapsed(), Duration::ZERO, "no delay without the token");
            }
        }
    }
    assert_eq!(chaos.snapshot(), before);
    assert!(chaos.is_armed());
}

#[tokio::test(start_paused = true)]
async fn with_the_token_malformed_values_get_a_400_naming_the_header_and_count_nothing() {
    let chaos = handle();
    let app = app(&chaos);
    let before = chaos.snapshot();
    for header in ["x-chaos-delay-ms", "x-chaos-abort-status"] {
        for value in hostile() {
            if header == "x-chaos-delay-ms" && value.iter().all(u8::is_ascii_digit) {
                continue; // a huge delay is clamped, not refused: see below
            }
            let response = app.clone().oneshot(req(header, &value, Some(TOKEN))).await.unwrap();
            let shown = String::from_utf8_lossy(&value[..value.len().min(20)]).into_owned();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{header}: {shown}");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(String::from_utf8_lossy(&body).contains(header), "{header}: {shown}: the 400 names the header");
        }
    }
    assert_eq!(chaos.snapshot(), before, "a refused request injects nothing");
}

#[tokio::test(start_paused = true)]
async fn huge_delays_are_clamped_and_out_of_range_statuses_refused() {
    let chaos = handle();
    let app = app(&chaos);
    for value in ["99999999999999999999999999", "18446744073709551616", &"9".repeat(8 * 1024)] {
        let start = tokio::time::Instant::now();
        let response = app.clone().oneshot(req("x-chaos-delay-ms", value.as_bytes(), Some(TOKEN))).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(start.elapsed(), Duration::from_secs(2), "clamped to max_delay");
    }
    for value in ["0", "99", "600", "65536", "4294967296", "99999999999999999999"] {
        let response = app.clone().oneshot(req("x-chaos-abort-status", value.as_bytes(), Some(TOKEN))).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{value}");
    }
    assert!(chaos.is_armed(), "hostile headers never disarm nor replace the rules");
    assert_eq!(chaos.controller().config().rules, vec![]);
}
