//! The admin API's OFREP endpoints (OpenFeature Remote Evaluation Protocol) over the degrade flags, mounted
//! under `/admin` in an axum router: single and bulk evaluation, reasons, errors, the ETag, the admin token
//! and hostile bodies.
#![cfg(feature = "admin")]

use axum::Router;
use axum::body::Body;
use brownout_degrade::Flags;
use brownout_degrade::flags::{FlagKind, FlagValue};
use brownout_tower::admin::{AdminApi, TokenSet};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "ofrep-secret-0123456789abcdef";
const SINGLE: &str = "/admin/ofrep/v1/evaluate/flags";

fn fixture() -> (Router, Flags) {
    let flags = Flags::new();
    flags.define("quotes.cached_only", FlagKind::Bool, "false").unwrap();
    flags.define("quotes.source", FlagKind::Strategy(vec!["live".into(), "cached".into()].into()), "live").unwrap();
    flags.define("api.shed_percent", FlagKind::Number { min: 0.0, max: 100.0 }, "0").unwrap();
    let admin =
        AdminApi::builder().tokens(TokenSet::new().with("ops", TOKEN).unwrap()).flags(flags.clone()).build().unwrap();
    (Router::new().nest_service("/admin", admin), flags)
}

struct Answer {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

async fn post(app: &Router, path: &str, token: Option<&str>, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.clone().oneshot(request.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = response.status();
    let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    Answer { status, etag, body }
}

async fn evaluate(app: &Router, key: &str) -> Answer {
    post(app, &format!("{SINGLE}/{key}"), Some(TOKEN), &[], r#"{"context": {"targetingKey": "user-1"}}"#).await
}

#[tokio::test]
async fn a_flag_evaluates_with_its_value_reason_variant_and_source() {
    let (app, flags) = fixture();
    let answer = evaluate(&app, "quotes.cached_only").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        json!({"key": "quotes.cached_only", "value": false, "reason": "DEFAULT", "variant": "false",
               "metadata": {"source": "default"}})
    );

    flags.set("quotes.source", "cached").unwrap();
    let answer = evaluate(&app, "quotes.source").await;
    assert_eq!(
        answer.body,
        json!({"key": "quotes.source", "value": "cached", "reason": "STATIC", "variant": "cached",
               "metadata": {"source": "override"}})
    );
}

#[tokio::test]
async fn a_value_a_trigger_set_is_a_targeting_match_naming_it() {
    let (app, flags) = fixture();
    flags.set_trigger("api.shed_percent", Some(FlagValue::Number(50.0)), "cpu-high").unwrap();
    let answer = evaluate(&app, "api.shed_percent").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["reason"], "TARGETING_MATCH");
    assert_eq!(answer.body["metadata"], json!({"source": "trigger", "trigger": "cpu-high"}));
    // A number is a JSON float, whole or not, so typed clients read one type.
    assert!(answer.body["value"].is_f64(), "{}", answer.body);
    assert_eq!(answer.body["value"].as_f64(), Some(50.0));
    assert_eq!(answer.body["variant"], "50");
}

#[tokio::test]
async fn an_unknown_flag_is_404_flag_not_found() {
    let (app, _) = fixture();
    let answer = evaluate(&app, "no.such.flag").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.body,
        json!({"key": "no.such.flag", "errorCode": "FLAG_NOT_FOUND", "errorDetails": "no flag `no.such.flag`"})
    );
}

#[tokio::test]
async fn bulk_evaluates_every_flag_with_an_etag_that_follows_the_values() {
    let (app, flags) = fixture();
    let first = post(&app, SINGLE, Some(TOKEN), &[], "{}").await;
    assert_eq!(first.status, StatusCode::OK);
    let keys: Vec<&str> = first.body["flags"].as_array().unwrap().iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["api.shed_percent", "quotes.cached_only", "quotes.source"]);
    let etag = first.etag.expect("an ETag");

    let unchanged = post(&app, SINGLE, Some(TOKEN), &[("if-none-match", &etag)], "{}").await;
    assert_eq!((unchanged.status, unchanged.body.clone()), (StatusCode::NOT_MODIFIED, Value::Null));
    assert_eq!(unchanged.etag.as_deref(), Some(etag.as_str()));

    flags.set("quotes.cached_only", "true").unwrap();
    let changed = post(&app, SINGLE, Some(TOKEN), &[("if-none-match", &etag)], "{}").await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.etag.as_deref(), Some(etag.as_str()));
    assert_eq!(changed.body["flags"][1]["value"], true);
}

#[tokio::test]
async fn the_admin_token_guards_ofrep_like_every_endpoint() {
    let (app, _) = fixture();
    for token in [None, Some("wrong-token-0123456789abcdef")] {
        let answer = post(&app, &format!("{SINGLE}/quotes.source"), token, &[], "{}").await;
        assert_eq!((answer.status, answer.body), (StatusCode::UNAUTHORIZED, Value::Null));
        let answer = post(&app, SINGLE, token, &[], "{}").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn bad_bodies_get_ofrep_error_codes() {
    let (app, _) = fixture();
    let key = format!("{SINGLE}/quotes.source");
    let cases = [
        ("not json", "PARSE_ERROR"),
        (r#"{"context": 3}"#, "INVALID_CONTEXT"),
        (r#"{"context": {}, "extra": 1}"#, "INVALID_CONTEXT"),
    ];
    for (body, code) in cases {
        let answer = post(&app, &key, Some(TOKEN), &[], body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.body["errorCode"], code, "{body}");
        assert_eq!(answer.body["key"], "quotes.source");
    }
    // No body at all is no context.
    assert_eq!(post(&app, &key, Some(TOKEN), &[], "").await.status, StatusCode::OK);
}

#[tokio::test]
async fn only_post_is_allowed() {
    let (app, _) = fixture();
    let request = Request::get(format!("{SINGLE}/quotes.source"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
}

proptest! {
    /// Whatever the body, an evaluation answers 200 or a 400 with an OFREP error code, never a panic.
    #[test]
    fn any_body_gets_an_evaluation_or_an_error_code(body in prop_oneof![
        ".*",
        any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "\\{\"context\": (\\{\\}|null|1|\"x\"|\\[\\])\\}",
    ]) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (app, _) = fixture();
        let answer = runtime.block_on(post(&app, &format!("{SINGLE}/quotes.source"), Some(TOKEN), &[], &body));
        match answer.status {
            StatusCode::OK => prop_assert_eq!(&answer.body["value"], "live"),
            StatusCode::BAD_REQUEST => {
                let code = answer.body["errorCode"].as_str().unwrap();
                prop_assert!(code == "PARSE_ERROR" || code == "INVALID_CONTEXT", "{}", code);
            }
            other => prop_assert!(false, "{} for {:?}", other, body),
        }
    }
}
