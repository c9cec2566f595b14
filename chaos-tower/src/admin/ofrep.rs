//! The OpenFeature Remote Evaluation Protocol (OFREP) for the degrade flags, so a service in any language reads
//! them with its own OpenFeature SDK's OFREP provider (base URL: the admin API's mount point, e.g.
//! `http://host:8080/admin`, with the admin token as `Authorization: Bearer`).
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}`: `200` with `{"key", "value", "reason", "variant", "metadata"}`;
//!   `404` with `{"key", "errorCode": "FLAG_NOT_FOUND", "errorDetails"}` for an unknown flag.
//! - `POST /ofrep/v1/evaluate/flags`: every flag, `{"flags": [...]}`, with an `ETag`; a request whose
//!   `If-None-Match` names the current one gets `304` and no body.
//!
//! The body is optional; when present it is `{"context": {...}}` (any other field, or a context that is not an
//! object, is `400` `INVALID_CONTEXT`; a body that is not JSON is `400` `PARSE_ERROR`). The context is accepted
//! and not used: degrade flags are per process, not per user. Values and reasons come from
//! [`brownout_degrade::openfeature::resolve`]: a bool flag is a JSON boolean, a strategy a string, a number a JSON
//! float (`50.0`, whole or not, so a typed client reads it as a float every time). Evaluations change nothing:
//! they are neither audited nor counted.

use std::hash::{DefaultHasher, Hasher};

use brownout_degrade::Flags;
use brownout_degrade::openfeature::{Resolution, ResolveError, ResolvedValue, resolve, resolve_all};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AdminBody;
use super::routes::{empty, respond};

/// The request body: an evaluation context, which degrade flags do not use.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluationRequest {
    #[serde(default)]
    context: Option<Value>,
}

/// Answers `POST /ofrep/v1/evaluate/flags[/{key}]`; `rest` is the path below `/ofrep/v1/evaluate/flags`.
pub(super) fn handle(
    flags: Option<&Flags>,
    rest: &[&str],
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<AdminBody> {
    let key = match rest {
        [] => None,
        [key] => Some(*key),
        _ => return error(StatusCode::NOT_FOUND, None, "GENERAL", "no such OFREP endpoint"),
    };
    if method != Method::POST {
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, key, "GENERAL", "use POST");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if let Err((code, details)) = check_request(headers, body) {
        return error(StatusCode::BAD_REQUEST, key, code, &details);
    }
    let Some(flags) = flags else {
        return error(StatusCode::NOT_FOUND, key, "FLAG_NOT_FOUND", "flags are not served by this admin API");
    };
    match key {
        Some(key) => match resolve(flags, key) {
            Ok(resolution) => respond(StatusCode::OK, &evaluation(&resolution)),
            Err(e) => not_found(key, &e),
        },
        None => bulk(flags, headers),
    }
}

/// `Err((error code, details))` for a body OFREP refuses; an empty body is no context.
fn check_request(headers: &HeaderMap, body: &[u8]) -> Result<(), (&'static str, String)> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && !super::routes::is_json(ct)
    {
        return Err(("PARSE_ERROR", "the body must be application/json".to_owned()));
    }
    if body.is_empty() {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| ("PARSE_ERROR", format!("the body: {e}")))?;
    let request: EvaluationRequest =
        serde_json::from_value(value).map_err(|e| ("INVALID_CONTEXT", format!("the body: {e}")))?;
    match request.context {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(("INVALID_CONTEXT", "`context` must be a JSON object".to_owned())),
    }
}

/// A successful evaluation as OFREP spells it.
fn evaluation(r: &Resolution) -> Value {
    let value = match &r.value {
        ResolvedValue::Bool(b) => json!(b),
        ResolvedValue::String(s) => json!(s),
        ResolvedValue::Number(n) => json!(n),
    };
    let metadata: Map<String, Value> = r.metadata().into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect();
    json!({
        "key": r.key,
        "value": value,
        "reason": r.reason.as_str(),
        "variant": r.variant,
        "metadata": metadata,
    })
}

fn not_found(key: &str, e: &ResolveError) -> Response<AdminBody> {
    error(StatusCode::NOT_FOUND, Some(key), e.code.as_str(), &e.details)
}

/// `{"key", "errorCode", "errorDetails"}` (no `key` when the request named none).
fn error(status: StatusCode, key: Option<&str>, code: &str, details: &str) -> Response<AdminBody> {
    let mut body = json!({ "errorCode": code, "errorDetails": details });
    if let Some(key) = key {
        body["key"] = json!(key);
    }
    respond(status, &body)
}

/// Every flag, with an `ETag` over the answer; `304` when the client's `If-None-Match` has it already.
fn bulk(flags: &Flags, headers: &HeaderMap) -> Response<AdminBody> {
    let body = json!({ "flags": resolve_all(flags).iter().map(evaluation).collect::<Vec<_>>() });
    let mut hasher = DefaultHasher::new();
    hasher.write(body.to_string().as_bytes());
    let etag = format!("\"{:016x}\"", hasher.finish());
    let etag_value = HeaderValue::from_str(&etag).expect("hex in quotes is a valid header value");
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = if matches { empty(StatusCode::NOT_MODIFIED) } else { respond(StatusCode::OK, &body) };
    response.headers_mut().insert(header::ETAG, etag_value);
    response
}
