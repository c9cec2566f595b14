//! Injected faults as HTTP responses.

use ::http::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use ::http::{Response, StatusCode};
use brownout_chaos::{ActiveFault, Outcome};
use bytes::Bytes;

use super::ChaosBody;

static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
static TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// `x-chaos-injected`.
pub(crate) use super::INJECTED_HEADER as INJECTED;

fn text<B>(status: StatusCode, body: String) -> Response<ChaosBody<B>> {
    let mut response = Response::new(ChaosBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, TEXT.clone());
    response
}

/// `DEADLINE_EXCEEDED`, gRPC's code 4.
const GRPC_DEADLINE_EXCEEDED: u16 = 4;

/// The answer to a hang cut short at the caller's gRPC deadline (`grpc-timeout`): a trailers-only
/// `DEADLINE_EXCEEDED`, marked with `x-chaos-injected: <rule>`, as the caller's own deadline would end it.
pub(crate) fn deadline_response<B>(fault: ActiveFault<Outcome>) -> Response<ChaosBody<B>> {
    let mut response = Response::new(ChaosBody::full(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(&GRPC_STATUS, HeaderValue::from(GRPC_DEADLINE_EXCEEDED));
    headers.insert(&GRPC_MESSAGE, HeaderValue::from_static("injected hang reached the caller's deadline"));
    headers.insert(&INJECTED, fault.header_value().clone());
    response
}

/// Whether the request is a gRPC call (`content-type: application/grpc`, `application/grpc+proto`, …).
pub(crate) fn is_grpc(headers: &::http::HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The gRPC code a client gives an HTTP status it got instead of a gRPC answer, as gRPC's "HTTP to gRPC status
/// code mapping" defines it (`UNAVAILABLE` for 429, 502, 503 and 504; `UNKNOWN` for what it does not list).
pub(crate) fn grpc_code_of(status: StatusCode) -> u16 {
    match status.as_u16() {
        400 => 13,                   // INTERNAL
        401 => 16,                   // UNAUTHENTICATED
        403 => 7,                    // PERMISSION_DENIED
        404 => 12,                   // UNIMPLEMENTED
        429 | 502 | 503 | 504 => 14, // UNAVAILABLE
        _ => 2,                      // UNKNOWN
    }
}

/// The answer to a gRPC call for an outcome fault: a trailers-only gRPC status, so the client sees a status
/// with a readable message rather than an HTTP answer it cannot decode (tonic would report `INTERNAL`). An
/// `error` fault with `grpc:` keeps its code; one with an HTTP status, a `rate_limit` and a hang at its `max`
/// get the code gRPC maps their HTTP status to ([`grpc_code_of`]); a reset stays a body that fails.
pub(crate) fn grpc_outcome_response<B>(fault: ActiveFault<Outcome>) -> Response<ChaosBody<B>> {
    let (code, message) = match fault.fault() {
        Outcome::Error(e) if e.grpc.is_some() => return outcome_response(fault),
        Outcome::Reset => return outcome_response(fault),
        Outcome::Error(e) if !e.message.is_empty() => (grpc_code_of(e.status), e.message.to_string()),
        Outcome::Error(e) => (grpc_code_of(e.status), format!("injected HTTP {}", e.status)),
        Outcome::RateLimit(r) => {
            (grpc_code_of(StatusCode::TOO_MANY_REQUESTS), format!("rate limited: retry after {}s", r.retry_after_secs))
        }
        Outcome::Hang { max } => {
            (grpc_code_of(StatusCode::GATEWAY_TIMEOUT), format!("injected hang gave up after {max:?}"))
        }
    };
    let mut response = Response::new(ChaosBody::full(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(&GRPC_STATUS, HeaderValue::from(code));
    if let Ok(message) = HeaderValue::from_str(&message) {
        headers.insert(&GRPC_MESSAGE, message);
    }
    if let Outcome::RateLimit(r) = fault.fault() {
        headers.insert(RETRY_AFTER, HeaderValue::from(r.retry_after_secs));
    }
    headers.insert(&INJECTED, fault.header_value().clone());
    response
}

/// The response for an outcome fault, marked with `x-chaos-injected: <rule>`.
///
/// A reset is a response whose body fails at once: hyper then drops the connection, which is what the
/// caller of a reset sees.
pub(crate) fn outcome_response<B>(fault: ActiveFault<Outcome>) -> Response<ChaosBody<B>> {
    let rule = fault.header_value().clone();
    let mut response = match fault.fault() {
        Outcome::Error(e) => {
            let mut response = Response::new(ChaosBody::full(e.body.clone()));
            *response.status_mut() = e.status;
            let headers = response.headers_mut();
            if let Some(code) = e.grpc {
                // A trailers-only gRPC answer: HTTP 200, the status in the headers.
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
                headers.insert(&GRPC_STATUS, HeaderValue::from(code as u16));
                if let Ok(message) = HeaderValue::from_str(&e.message) {
                    headers.insert(&GRPC_MESSAGE, message);
                }
            } else if !e.body.is_empty() {
                headers.insert(CONTENT_TYPE, TEXT.clone());
            }
            // The config's own headers come last, so they may override the content type.
            for (name, value) in &e.headers {
                headers.insert(name, value.clone());
            }
            response
        }
        Outcome::RateLimit(r) => {
            let secs = r.retry_after_secs;
            let mut response = text(StatusCode::TOO_MANY_REQUESTS, format!("rate limited: retry after {secs}s\n"));
            let headers = response.headers_mut();
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
            headers.insert(&X_RATELIMIT_LIMIT, HeaderValue::from(r.limit));
            headers.insert(&X_RATELIMIT_REMAINING, HeaderValue::from_static("0"));
            headers.insert(&X_RATELIMIT_RESET, HeaderValue::from(secs));
            response
        }
        Outcome::Hang { max } => text(StatusCode::GATEWAY_TIMEOUT, format!("injected hang gave up after {max:?}\n")),
        Outcome::Reset => Response::new(ChaosBody::reset(fault.rule_shared())),
    };
    response.headers_mut().insert(&INJECTED, rule);
    response
}
