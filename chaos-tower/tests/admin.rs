//! The admin API mounted under `/admin` in an axum router: every endpoint, the token, hostile input, the
//! failure slowdown (paused time) and the audit log.
#![cfg(feature = "admin")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use brownout_chaos::{ChaosConfig, Environment};
use brownout_cost::budget::{Budget, BudgetMonitor, BudgetSet};
use brownout_degrade::breaker::{BreakerConfig, SystemClock};
use brownout_degrade::flags::FlagKind;
use brownout_degrade::{CircuitBreaker, Flags};
use brownout_tower::ChaosHandle;
use brownout_tower::admin::{AdminApi, AdminApiBuilder, AuditLog, Throttle, TokenSet};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "alice-secret-0123456789abcdef";
const OTHER: &str = "bob-secret-fedcba9876543210";

const RULES: &str = "
experiment: admin-test
rules:
  - name: slow
    sample: { mode: random, rate: 0.5 }
    fault: { latency: { fixed: 10ms } }
";

fn temp_path(what: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("brownout-admin-{what}-{}-{n}", std::process::id()))
}

struct Fixture {
    app: Router,
    chaos: ChaosHandle,
    flags: Flags,
    breaker: Arc<CircuitBreaker>,
    audit: PathBuf,
}

fn fixture_with(throttle: Throttle) -> Fixture {
    let chaos = ChaosHandle::for_environment(Environment::Test);
    chaos.load(ChaosConfig::from_yaml_str(RULES, None).unwrap()).unwrap();
    let flags = Flags::new();
    flags.define("quotes.cached_only", FlagKind::Bool, "false").unwrap();
    flags.define("quotes.source", FlagKind::Strategy(vec!["live".into(), "cached".into()].into()), "live").unwrap();
    flags.define("quotes.percent", FlagKind::Number { min: 0.0, max: 100.0 }, "100").unwrap();
    let breaker = Arc::new(CircuitBreaker::new("provider", BreakerConfig::default(), SystemClock::new()).unwrap());
    let budget = Budget::parse(
        "name: research\nowner: ops@example.com\nmonthly_cpu_hours: 100\nalert_thresholds: { warn: 0.8, critical: 0.95 }\n",
        None,
    )
    .unwrap();
    let monitor = BudgetMonitor::new(Arc::new(BudgetSet::new(vec![budget]).unwrap()), SystemTime::now());
    let audit = temp_path("audit");
    let tokens = TokenSet::new().with("alice", TOKEN).unwrap().with("bob", OTHER).unwrap();
    let admin = AdminApi::builder()
        .tokens(tokens)
        .chaos(chaos.clone())
        .flags(flags.clone())
        .breaker(breaker.clone())
        .budgets(Arc::new(Mutex::new(monitor)))
        .audit_log(AuditLog::open(&audit).unwrap())
        .throttle(throttle)
        .build()
        .unwrap();
    Fixture { app: Router::new().nest_service("/admin", admin), chaos, flags, breaker, audit }
}

fn fixture() -> Fixture {
    fixture_with(Throttle::default().free(u32::MAX))
}

fn req(method: &str, path: &str, token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(body.into()).unwrap()
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn call(app: &Router, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, text) = send(app, req(method, path, Some(TOKEN), body.to_owned())).await;
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
    (status, value)
}

/// Everything an admin request could change, read through the API.
async fn state(f: &Fixture) -> Value {
    let chaos = call(&f.app, "GET", "/admin/chaos", "").await.1;
    let flags = call(&f.app, "GET", "/admin/flags", "").await.1;
    let breakers = call(&f.app, "GET", "/admin/breakers", "").await.1;
    json!({ "armed": chaos["armed"], "config": chaos["config"], "flags": flags, "breakers": breakers })
}

fn audit_lines(f: &Fixture) -> Vec<Value> {
    let text = std::fs::read_to_string(&f.audit).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_builder_refuses_to_start_without_a_token() {
    let err = AdminApi::builder().chaos(ChaosHandle::for_environment(Environment::Test)).build().unwrap_err();
    assert!(err.to_string().contains("no token"), "{err}");
}

#[tokio::test]
async fn a_disabled_api_answers_404_to_everything() {
    let app = Router::new().nest_service("/admin", AdminApi::disabled());
    for (method, path) in [("GET", "/admin/chaos"), ("POST", "/admin/chaos/disarm"), ("GET", "/admin/flags")] {
        let (status, _, body) = send(&app, req(method, path, Some(TOKEN), Body::empty())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.is_empty());
    }
}

#[tokio::test]
async fn chaos_endpoints_show_replace_disarm_and_arm() {
    let f = fixture();
    let (status, view) = call(&f.app, "GET", "/admin/chaos", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["armed"], true);
    assert_eq!(view["config"]["rules"][0]["name"], "slow");
    assert_eq!(view["counters"]["rules"][0]["name"], "slow");

    let new_rules = json!({ "experiment": "v2", "rules": [
        { "name": "fail", "sample": { "mode": "random", "rate": 0.1 }, "fault": { "error": { "status": 503 } } }
    ]});
    let (status, view) = call(&f.app, "PUT", "/admin/chaos", &new_rules.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["config"]["rules"][0]["name"], "fail");
    assert_eq!(f.chaos.controller().config().experiment.as_deref(), Some("v2"));

    let (status, view) = call(&f.app, "POST", "/admin/chaos/disarm", "").await;
    assert_eq!((status, view), (StatusCode::OK, json!({ "armed": false })));
    assert!(!f.chaos.is_armed());
    let (status, view) = call(&f.app, "POST", "/admin/chaos/arm", "").await;
    assert_eq!((status, view), (StatusCode::OK, json!({ "armed": true })));
    assert!(f.chaos.is_armed());
}

#[tokio::test]
async fn flag_endpoints_list_set_and_unset() {
    let f = fixture();
    let (status, list) = call(&f.app, "GET", "/admin/flags", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["flags"].as_array().unwrap().len(), 3);

    let (status, row) = call(&f.app, "PUT", "/admin/flags/quotes.source", r#"{"value":"cached"}"#).await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!((row["value"].as_str(), row["source"].as_str()), (Some("cached"), Some("override")));
    assert_eq!(f.flags.get("quotes.source").unwrap().0, "cached");

    let (status, row) = call(&f.app, "PUT", "/admin/flags/quotes.cached_only", r#"{"value":true}"#).await;
    assert_eq!((status, row["value"].as_str()), (StatusCode::OK, Some("true")));
    let (status, row) = call(&f.app, "PUT", "/admin/flags/quotes.percent", r#"{"value":12.5}"#).await;
    assert_eq!((status, row["value"].as_str()), (StatusCode::OK, Some("12.5")));

    let (status, row) = call(&f.app, "DELETE", "/admin/flags/quotes.source", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((row["value"].as_str(), row["source"].as_str()), (Some("live"), Some("default")));
    let (status, row) = call(&f.app, "GET", "/admin/flags/quotes.percent", "").await;
    assert_eq!((status, row["value"].as_str()), (StatusCode::OK, Some("12.5")));
}

#[tokio::test]
async fn breaker_endpoints_force_and_reset() {
    let f = fixture();
    let (status, list) = call(&f.app, "GET", "/admin/breakers", "").await;
    assert_eq!((status, list["breakers"][0]["name"].as_str()), (StatusCode::OK, Some("provider")));
    let (status, snap) = call(&f.app, "POST", "/admin/breakers/provider/open", "").await;
    assert_eq!((status, snap["forced"].as_str()), (StatusCode::OK, Some("forced_open")));
    assert!(f.breaker.try_acquire().is_err(), "forced open rejects calls");
    let (_, snap) = call(&f.app, "POST", "/admin/breakers/provider/close", "").await;
    assert_eq!(snap["forced"], "forced_closed");
    let (_, snap) = call(&f.app, "POST", "/admin/breakers/provider/reset", "").await;
    assert_eq!((snap["forced"].as_str(), snap["state"].as_str()), (Some("none"), Some("closed")));
    assert!(f.breaker.try_acquire().is_ok());
}

#[tokio::test]
async fn budgets_show_utilisation_and_level() {
    let f = fixture();
    let (status, view) = call(&f.app, "GET", "/admin/budgets", "").await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let budget = &view["budgets"][0];
    assert_eq!(budget["name"], "research");
    assert_eq!(budget["level"], "ok");
    assert_eq!(budget["utilization"]["cpu"], 0.0);
    assert!(view["month"].as_str().unwrap().len() == 7);
}

#[tokio::test]
async fn parts_not_configured_answer_404() {
    let tokens = TokenSet::new().with("alice", TOKEN).unwrap();
    let admin = AdminApi::builder().tokens(tokens).build().unwrap();
    let app = Router::new().nest_service("/admin", admin);
    for path in ["/admin/chaos", "/admin/flags", "/admin/breakers", "/admin/budgets"] {
        assert_eq!(call(&app, "GET", path, "").await.0, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn missing_wrong_or_garbled_tokens_get_an_empty_401_and_change_nothing() {
    let f = fixture();
    let before = state(&f).await;
    let headers: [Option<&str>; 8] = [
        None,
        Some("Bearer wrong-token-0123456789"),
        Some("Bearer "),
        Some("Basic YWxpY2U6c2VjcmV0"),
        Some("Bearer alice-secret-0123456789abcdeX"),
        Some("Bearer alice-secret-0123456789abcdef extra"),
        Some("alice-secret-0123456789abcdef"),
        Some("Bearer\talice-secret-0123456789abcdef"),
    ];
    let requests = [
        ("POST", "/admin/chaos/disarm", ""),
        ("PUT", "/admin/chaos", r#"{"rules":[]}"#),
        ("PUT", "/admin/flags/quotes.source", r#"{"value":"cached"}"#),
        ("DELETE", "/admin/flags/quotes.source", ""),
        ("POST", "/admin/breakers/provider/open", ""),
        ("GET", "/admin/chaos", ""),
        ("GET", "/admin/no/such/path", ""),
    ];
    for header in headers {
        for (method, path, body) in requests {
            let mut builder = Request::builder().method(method).uri(path);
            if let Some(h) = header {
                builder = builder.header("authorization", h);
            }
            let (status, headers, text) = send(&f.app, builder.body(Body::from(body)).unwrap()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{header:?} {method} {path}");
            assert_eq!(headers["www-authenticate"], "Bearer");
            assert!(text.is_empty(), "no detail in a 401: {text}");
        }
    }
    assert_eq!(state(&f).await, before);
    assert!(audit_lines(&f).is_empty(), "nothing was changed, nothing audited");
}

/// A one-rule config with this sampler rate and error status.
fn rule(rate: &str, status: &str) -> String {
    format!(
        r#"{{"rules":[{{"name":"x","sample":{{"mode":"random",{rate}}},"fault":{{"error":{{"status":{status}}}}}}}]}}"#
    )
}

#[tokio::test]
async fn hostile_input_gets_a_clear_4xx_and_changes_nothing() {
    let f = fixture();
    let before = state(&f).await;
    let huge = format!(r#"{{"value":"{}"}}"#, "x".repeat(70 * 1024));
    let cases: Vec<(&str, &str, String, StatusCode, &str)> = vec![
        // flags: wrong types, out-of-range and absurd numbers, unknown fields and flags, broken JSON
        ("PUT", "/admin/flags/quotes.percent", r#"{"value":-5}"#.into(), StatusCode::BAD_REQUEST, "value"),
        ("PUT", "/admin/flags/quotes.percent", r#"{"value":1e308}"#.into(), StatusCode::BAD_REQUEST, "value"),
        ("PUT", "/admin/flags/quotes.percent", r#"{"value":1e999}"#.into(), StatusCode::BAD_REQUEST, "body"),
        (
            "PUT",
            "/admin/flags/quotes.percent",
            r#"{"value":123456789012345678901234567890}"#.into(),
            StatusCode::BAD_REQUEST,
            "value",
        ),
        ("PUT", "/admin/flags/quotes.percent", r#"{"value":"NaN"}"#.into(), StatusCode::BAD_REQUEST, "value"),
        ("PUT", "/admin/flags/quotes.percent", r#"{"value":true}"#.into(), StatusCode::BAD_REQUEST, "value"),
        ("PUT", "/admin/flags/quotes.cached_only", r#"{"value":1}"#.into(), StatusCode::BAD_REQUEST, "value"),
        ("PUT", "/admin/flags/quotes.cached_only", r#"{"value":null}"#.into(), StatusCode::BAD_REQUEST, "value"),
        ("PUT", "/admin/flags/quotes.source", r#"{"value":["live"]}"#.into(), StatusCode::BAD_REQUEST, "value"),
        ("PUT", "/admin/flags/quotes.source", r#"{"value":"sideways"}"#.into(), StatusCode::BAD_REQUEST, "value"),
        ("PUT", "/admin/flags/quotes.source", r#"{"value":"live","x":1}"#.into(), StatusCode::BAD_REQUEST, "body"),
        ("PUT", "/admin/flags/quotes.source", r#"{"valu":"live"}"#.into(), StatusCode::BAD_REQUEST, "body"),
        ("PUT", "/admin/flags/quotes.source", r#"{"value":"live""#.into(), StatusCode::BAD_REQUEST, "body"),
        ("PUT", "/admin/flags/quotes.source", "".into(), StatusCode::BAD_REQUEST, "body"),
        ("PUT", "/admin/flags/quotes.source", huge, StatusCode::PAYLOAD_TOO_LARGE, "body"),
        ("PUT", "/admin/flags/no.such.flag", r#"{"value":"x"}"#.into(), StatusCode::NOT_FOUND, "name"),
        ("DELETE", "/admin/flags/no.such.flag", "".into(), StatusCode::NOT_FOUND, "name"),
        // breakers
        ("POST", "/admin/breakers/provider/explode", "".into(), StatusCode::BAD_REQUEST, "action"),
        ("POST", "/admin/breakers/nobody/open", "".into(), StatusCode::NOT_FOUND, "name"),
        ("GET", "/admin/breakers/provider/open", "".into(), StatusCode::METHOD_NOT_ALLOWED, "method"),
        // chaos: invalid rule sets
        ("PUT", "/admin/chaos", r#"{"rules":[{"name":"x","bogus":1}]}"#.into(), StatusCode::BAD_REQUEST, "rules[0]"),
        ("PUT", "/admin/chaos", r#"{"seed":-1}"#.into(), StatusCode::BAD_REQUEST, "seed"),
        ("PUT", "/admin/chaos", r#"{"seed":1e400}"#.into(), StatusCode::BAD_REQUEST, ""),
        ("PUT", "/admin/chaos", r#"{"max_active_faults":99999999999}"#.into(), StatusCode::BAD_REQUEST, "max_active"),
        ("PUT", "/admin/chaos", r#"{"ttl":"forever"}"#.into(), StatusCode::BAD_REQUEST, "ttl"),
        ("PUT", "/admin/chaos", r#"{"blast_radius":"all"}"#.into(), StatusCode::BAD_REQUEST, "blast_radius"),
        ("PUT", "/admin/chaos", rule(r#""rate":-0.5"#, "503"), StatusCode::BAD_REQUEST, "rules[0].sample.rate"),
        ("PUT", "/admin/chaos", rule(r#""rate":1e308"#, "503"), StatusCode::BAD_REQUEST, "rules[0].sample.rate"),
        ("PUT", "/admin/chaos", rule(r#""rate":"half""#, "503"), StatusCode::BAD_REQUEST, "rules[0].sample"),
        ("PUT", "/admin/chaos", rule(r#""rate":0.5"#, "99999"), StatusCode::BAD_REQUEST, "rules[0].fault"),
        ("PUT", "/admin/chaos", rule(r#""rate":0.5"#, "-503"), StatusCode::BAD_REQUEST, "rules[0].fault"),
        ("PUT", "/admin/chaos", r#"{"ttl":"99999999999999999999h"}"#.into(), StatusCode::BAD_REQUEST, "ttl"),
        ("PUT", "/admin/chaos", r#"{"ttl":"-5s"}"#.into(), StatusCode::BAD_REQUEST, "ttl"),
        ("PUT", "/admin/chaos", r#"{"blast_radius":-1}"#.into(), StatusCode::BAD_REQUEST, "blast_radius"),
        ("PUT", "/admin/chaos", "[1,2,3]".into(), StatusCode::BAD_REQUEST, ""),
        ("PUT", "/admin/chaos", "not json".into(), StatusCode::BAD_REQUEST, ""),
        ("PUT", "/admin/chaos", "".into(), StatusCode::BAD_REQUEST, "body"),
        ("DELETE", "/admin/chaos", "".into(), StatusCode::METHOD_NOT_ALLOWED, "method"),
        ("GET", "/admin/../../etc/passwd", "".into(), StatusCode::NOT_FOUND, "path"),
    ];
    for (method, path, body, want, field) in cases {
        let (status, value) = call(&f.app, method, path, &body).await;
        assert_eq!(status, want, "{method} {path} {}: {value}", &body[..body.len().min(80)]);
        let got = value["field"].as_str().unwrap_or_else(|| panic!("{method} {path}: no field in {value}"));
        assert!(got.starts_with(field), "{method} {path}: field `{got}`, expected `{field}…`");
        assert!(!value["reason"].as_str().unwrap().is_empty(), "{method} {path}: a reason");
    }
    assert_eq!(state(&f).await, before);
    assert!(audit_lines(&f).is_empty());
}

#[tokio::test]
async fn a_bad_rule_set_keeps_the_last_good_rules() {
    let f = fixture();
    let before = call(&f.app, "GET", "/admin/chaos", "").await.1;
    let bad = json!({ "rules": [
        { "name": "ok", "sample": { "mode": "random", "rate": 0.1 }, "fault": { "error": { "status": 503 } } },
        { "name": "bad", "sample": { "mode": "random", "rate": 1.5 }, "fault": { "error": { "status": 503 } } }
    ]});
    let (status, error) = call(&f.app, "PUT", "/admin/chaos", &bad.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["field"], "rules[1].sample.rate");
    assert!(error["reason"].as_str().unwrap().contains("1.5"), "{error}");
    assert!(!error.to_string().contains(".yaml") && !error.to_string().contains("/tmp"), "file-free: {error}");
    let after = call(&f.app, "GET", "/admin/chaos", "").await.1;
    assert_eq!(after["config"], before["config"]);
    assert_eq!(after["armed"], true);
}

#[tokio::test]
async fn a_non_json_content_type_gets_415() {
    let f = fixture();
    let request = Request::put("/admin/flags/quotes.source")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(r#"{"value":"cached"}"#))
        .unwrap();
    assert_eq!(send(&f.app, request).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(f.flags.get("quotes.source").unwrap().0, "live");
}

#[tokio::test(start_paused = true)]
async fn repeated_failures_are_slowed_down_but_the_right_token_is_not() {
    let throttle = Throttle::default()
        .free(3)
        .window(Duration::from_secs(60))
        .base(Duration::from_millis(100))
        .cap(Duration::from_secs(1));
    let f = fixture_with(throttle);
    let wrong = || req("GET", "/admin/chaos", Some("wrong-token-0123456789"), Body::empty());
    let timed = |request: Request<Body>| {
        let app = f.app.clone();
        async move {
            let start = tokio::time::Instant::now();
            let response = app.oneshot(request).await.unwrap();
            (response.status(), start.elapsed())
        }
    };
    for _ in 0..3 {
        assert_eq!(timed(wrong()).await, (StatusCode::UNAUTHORIZED, Duration::ZERO));
    }
    // Failures 4, 5, 6, 7, 8: 100 ms doubling, capped at 1 s.
    for ms in [100, 200, 400, 800, 1000] {
        assert_eq!(timed(wrong()).await, (StatusCode::UNAUTHORIZED, Duration::from_millis(ms)));
    }
    // The right token is answered at once.
    let right = req("GET", "/admin/chaos", Some(TOKEN), Body::empty());
    assert_eq!(timed(right).await, (StatusCode::OK, Duration::ZERO));
    // A minute after the window started, and nothing waiting, failures are free again.
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(timed(wrong()).await, (StatusCode::UNAUTHORIZED, Duration::ZERO));
}

/// Concurrency buys a guesser nothing: 50 wrong guesses sent at once are answered one per delay, in turn,
/// never early and never with an instant refusal; a valid token meanwhile is answered at once.
#[tokio::test(start_paused = true)]
async fn concurrent_wrong_guesses_are_answered_one_per_delay_overall() {
    let throttle = Throttle::default()
        .free(2)
        .window(Duration::from_secs(60))
        .base(Duration::from_secs(1))
        .cap(Duration::from_secs(1));
    let f = fixture_with(throttle);
    let start = tokio::time::Instant::now();
    let guesses: Vec<_> = (0..52)
        .map(|i| {
            let app = f.app.clone();
            let guess = req("GET", "/admin/chaos", Some(&format!("wrong-token-{i:016}")), Body::empty());
            tokio::spawn(async move {
                let status = app.oneshot(guess).await.unwrap().status();
                (status, start.elapsed())
            })
        })
        .collect();
    tokio::task::yield_now().await;
    let right = f.app.clone().oneshot(req("GET", "/admin/chaos", Some(TOKEN), Body::empty())).await.unwrap();
    assert_eq!((right.status(), start.elapsed()), (StatusCode::OK, Duration::ZERO));
    let mut answered = Vec::new();
    for guess in guesses {
        let (status, at) = guess.await.unwrap();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "every wrong guess gets its 401, none an early 429");
        answered.push(at);
    }
    answered.sort();
    // Two free, then one a second: the k-th delayed answer comes k seconds after the start, not before.
    assert_eq!(&answered[..2], &[Duration::ZERO, Duration::ZERO]);
    for (k, at) in answered[2..].iter().enumerate() {
        assert_eq!(*at, Duration::from_secs(k as u64 + 1), "answer {k} of the delayed ones");
    }
}

#[tokio::test]
async fn changes_are_audited_with_the_token_id_and_never_the_token() {
    let f = fixture();
    let mut responses = String::new();
    for (method, path, body, token) in [
        ("PUT", "/admin/flags/quotes.source", r#"{"value":"cached"}"#, TOKEN),
        ("DELETE", "/admin/flags/quotes.source", "", OTHER),
        ("POST", "/admin/chaos/disarm", "", TOKEN),
        ("POST", "/admin/chaos/arm", "", TOKEN),
        ("PUT", "/admin/chaos", r#"{"rules":[]}"#, TOKEN),
        ("POST", "/admin/breakers/provider/open", "", OTHER),
        ("GET", "/admin/chaos", "", TOKEN),
        ("PUT", "/admin/flags/quotes.source", r#"{"value":"nope"}"#, TOKEN),
    ] {
        let (_, headers, text) = send(&f.app, req(method, path, Some(token), body.to_owned())).await;
        responses.push_str(&text);
        responses.push_str(&format!("{headers:?}"));
    }
    let lines = audit_lines(&f);
    let summary: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| (l["action"].as_str().unwrap(), l["token_id"].as_str().unwrap(), l["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("flag.set", "alice", "quotes.source"),
            ("flag.unset", "bob", "quotes.source"),
            ("chaos.disarm", "alice", "chaos"),
            ("chaos.arm", "alice", "chaos"),
            ("chaos.replace", "alice", "chaos"),
            ("breaker.open", "bob", "provider"),
        ]
    );
    assert_eq!(
        (lines[0]["before"]["value"].as_str(), lines[0]["after"]["value"].as_str()),
        (Some("live"), Some("cached"))
    );
    assert_eq!(
        (lines[2]["before"]["armed"].as_bool(), lines[2]["after"]["armed"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(lines[4]["before"]["config"]["rules"][0]["name"], "slow");
    assert_eq!(lines[4]["after"]["config"]["rules"], json!([]));
    let time = lines[0]["time"].as_str().unwrap();
    assert!(time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "RFC 3339: {time}");
    let file = std::fs::read_to_string(&f.audit).unwrap();
    for secret in [TOKEN, OTHER] {
        assert!(!file.contains(secret), "the audit log holds a token");
        assert!(!responses.contains(secret), "a response holds a token");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&f.audit).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "PATCH"])
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop::sample::select(vec![
        "chaos",
        "arm",
        "disarm",
        "flags",
        "quotes.source",
        "quotes.percent",
        "breakers",
        "provider",
        "open",
        "reset",
        "budgets",
        "%00",
        "..",
        "x",
    ]);
    prop::collection::vec(segment, 0..4).prop_map(|s| format!("/admin/{}", s.join("/")))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        "[ -~]{0,64}".prop_map(String::into_bytes),
        Just(br#"{"value":"cached"}"#.to_vec()),
        Just(br#"{"rules":[]}"#.to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Without a valid token nothing is ever changed and the answer is always an empty 401; with one, random
    /// requests never panic nor get a 5xx, and those refused with a 4xx change nothing.
    #[test]
    fn random_requests_never_panic_nor_change_state_without_the_token(
        method in method(), path in path(), body in body(),
        token in prop_oneof![Just(None), "[ -~]{0,40}".prop_map(Some), Just(Some(TOKEN.to_owned()))],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let f = fixture();
            let before = state(&f).await;
            let mut builder = Request::builder().method(method).uri(path.as_str());
            if let Some(t) = &token {
                builder = builder.header("authorization", format!("Bearer {t}"));
            }
            let (status, _, text) = send(&f.app, builder.body(Body::from(body)).unwrap()).await;
            if token.as_deref() == Some(TOKEN) {
                prop_assert!(!status.is_server_error(), "{status} {text}");
                if status.is_client_error() {
                    prop_assert_eq!(state(&f).await, before, "a refused request changed something: {}", text);
                }
            } else {
                prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
                prop_assert!(text.is_empty());
                prop_assert_eq!(state(&f).await, before);
            }
            Ok(())
        })?;
    }
}

#[test]
fn failures_and_changes_are_counted_in_metrics() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let f = fixture();
            send(&f.app, req("POST", "/admin/chaos/disarm", Some("wrong-token-0123456789"), Body::empty())).await;
            send(&f.app, req("POST", "/admin/chaos/disarm", None, Body::empty())).await;
            assert_eq!(call(&f.app, "POST", "/admin/chaos/disarm", "").await.0, StatusCode::OK);
        });
    });
    let counters: Vec<(String, Vec<String>, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) if key.key().name().starts_with("chaos_admin_") => Some((
                key.key().name().to_owned(),
                key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect(),
                n,
            )),
            _ => None,
        })
        .collect();
    assert!(counters.contains(&("chaos_admin_auth_failures_total".into(), vec![], 2)), "{counters:?}");
    assert!(
        counters.contains(&("chaos_admin_changes_total".into(), vec!["action=chaos.disarm".into()], 1)),
        "{counters:?}"
    );
}

/// An admin API over `chaos` (already loaded) with `adjust` applied to its builder.
fn api_over(chaos: &ChaosHandle, adjust: impl FnOnce(AdminApiBuilder) -> AdminApiBuilder) -> Router {
    let builder = AdminApi::builder().tokens(TokenSet::new().with("alice", TOKEN).unwrap()).chaos(chaos.clone());
    Router::new().nest_service("/admin", adjust(builder).build().unwrap())
}

#[tokio::test]
async fn a_ttl_above_the_api_maximum_is_refused_with_the_field_and_the_limit() {
    let f = fixture();
    let before = state(&f).await;
    for ttl in ["18446744073709551615s", "24h 1s", "30d"] {
        let (status, error) = call(&f.app, "PUT", "/admin/chaos", &json!({ "ttl": ttl }).to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{ttl}: {error}");
        assert_eq!(error["field"], "ttl");
        assert!(error["reason"].as_str().unwrap().contains("at most 24h"), "{error}");
    }
    assert_eq!(state(&f).await, before);
    let (status, view) = call(&f.app, "PUT", "/admin/chaos", r#"{"ttl":"24h"}"#).await;
    assert_eq!(status, StatusCode::OK, "the limit itself is allowed: {view}");

    // A tighter limit from the builder.
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let app = api_over(&chaos, |b| b.max_ttl(Duration::from_secs(3600)));
    let (status, error) = call(&app, "PUT", "/admin/chaos", r#"{"ttl":"2h"}"#).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("ttl")));
    assert!(error["reason"].as_str().unwrap().contains("is 2h; the admin API accepts at most 1h"), "{error}");
}

#[tokio::test]
async fn arming_rules_whose_ttl_exceeds_the_api_maximum_is_refused() {
    // Rules from a file may run longer than the admin API allows; it will not arm them again.
    let chaos = ChaosHandle::for_environment(Environment::Test);
    chaos.load(ChaosConfig::from_yaml_str("ttl: 48h\nrules: []\n", None).unwrap()).unwrap();
    let app = api_over(&chaos, |b| b);
    assert_eq!(call(&app, "POST", "/admin/chaos/disarm", "").await.0, StatusCode::OK);
    let (status, error) = call(&app, "POST", "/admin/chaos/arm", "").await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::CONFLICT, Some("ttl")), "{error}");
    assert!(error["reason"].as_str().unwrap().contains("48h"), "{error}");
    assert!(!chaos.is_armed());
}

#[tokio::test]
async fn an_admin_request_cannot_choose_the_header_fault_token_source() {
    let dir = temp_path("header-token");
    std::fs::create_dir_all(&dir).unwrap();
    let (ours, other) = (dir.join("token"), dir.join("other"));
    std::fs::write(&ours, "header-token-0123456789abcdef\n").unwrap();
    std::fs::write(&other, "another-file-0123456789abcdef\n").unwrap();
    let with_file = |path: &std::path::Path| json!({ "header_faults": { "enabled": true, "token_file": path.display().to_string() }, "rules": [] });
    // The service started with header faults whose token is in `ours`.
    let chaos = ChaosHandle::for_environment(Environment::Test);
    chaos.load(ChaosConfig::from_json_str(&with_file(&ours).to_string(), None).unwrap()).unwrap();
    let app = api_over(&chaos, |b| b);
    let refused = [
        (with_file(&other), "header_faults.token_file"),
        (with_file(Path::new("/etc/hostname")), "header_faults.token_file"),
        (json!({ "header_faults": { "enabled": true, "token_env": "HOME" } }), "header_faults.token_env"),
        (json!({ "header_faults": { "enabled": false, "token_env": "PATH" } }), "header_faults.token_env"),
    ];
    for (config, field) in refused {
        let (status, error) = call(&app, "PUT", "/admin/chaos", &config.to_string()).await;
        assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{config}: {error}");
        assert!(!error.to_string().contains("/etc") && !error.to_string().contains(&*dir.to_string_lossy()));
    }
    assert_eq!(chaos.controller().config(), ChaosConfig::from_json_str(&with_file(&ours).to_string(), None).unwrap());
    // The service's own source, or none, is fine; and the startup source stays allowed after that.
    for config in [with_file(&ours), json!({ "rules": [] }), with_file(&ours)] {
        let (status, view) = call(&app, "PUT", "/admin/chaos", &config.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{config}: {view}");
    }

    // A service started without header faults: no admin request can name a token source.
    let plain = ChaosHandle::for_environment(Environment::Test);
    let app = api_over(&plain, |b| b);
    let (status, error) = call(&app, "PUT", "/admin/chaos", &with_file(&ours).to_string()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("header_faults.token_file")));
    let _ = std::fs::remove_dir_all(&dir);
}
