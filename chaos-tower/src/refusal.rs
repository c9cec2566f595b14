//! The `503 Service Unavailable` with `Retry-After` that degrading layers answer instead of calling their
//! inner service (shedding, cost guardrails), marked with a header that says which layer refused.

use ::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use ::http::{Response, StatusCode};
use bytes::Bytes;

/// A `503` with `body`, `Retry-After: retry_after_secs` (at least 1) and `marker: value`.
pub(crate) fn unavailable<B: From<Bytes>>(
    body: &'static [u8],
    retry_after_secs: u64,
    marker: &HeaderName,
    value: HeaderValue,
) -> Response<B> {
    let mut response = Response::new(B::from(Bytes::from_static(body)));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
    response.headers_mut().insert(marker, value);
    response
}
