//! The gRPC status of an answer, for the breaker's and the fallback's gRPC presets
//! ([`breaker::grpc`](crate::breaker::grpc), `FallbackLayer::grpc`).
//!
//! A gRPC answer is HTTP `200` whose status is the `grpc-status` of its headers (a trailers-only answer, as
//! every injected gRPC status is) or of its trailers (after its messages, so seen only once the body is read:
//! [`BufferBodyLayer`](crate::BufferBodyLayer) keeps them as a [`Trailers`] extension).

use crate::body::Trailers;

/// The gRPC codes `GrpcClassifier` and `GrpcFailure` count as failures:
/// `DEADLINE_EXCEEDED` (4), `RESOURCE_EXHAUSTED` (8), `INTERNAL` (13), `UNAVAILABLE` (14).
pub const GRPC_FAILURE_CODES: [i32; 4] = [4, 8, 13, 14];

/// Is gRPC `code` a failure ([`GRPC_FAILURE_CODES`])?
pub fn is_grpc_failure(code: i32) -> bool {
    GRPC_FAILURE_CODES.contains(&code)
}

/// The gRPC status code of an answer: `grpc-status` from its headers (trailers-only), else from its buffered
/// [`Trailers`]; `None` when neither holds one (a streaming answer not read yet, or not gRPC).
pub fn grpc_status<B>(response: &http::Response<B>) -> Option<i32> {
    let value = match response.headers().get("grpc-status") {
        Some(value) => value,
        None => response.extensions().get::<Trailers>()?.0.get("grpc-status")?,
    };
    value.to_str().ok()?.trim().parse().ok()
}

/// Is this answer a failure to the gRPC preset? A failure code ([`GRPC_FAILURE_CODES`]) in its headers or
/// buffered trailers, or, without a gRPC status, a failed HTTP status (`5xx`, `429`, `408`).
pub fn grpc_failed<B>(response: &http::Response<B>) -> bool {
    match grpc_status(response) {
        Some(code) => is_grpc_failure(code),
        None => http_failed(response.status()),
    }
}

/// A failed HTTP status for answers without a gRPC status: `5xx`, `429` and `408` (what
/// [`HttpClassifier`](crate::breaker::HttpClassifier) counts).
pub fn http_failed(status: http::StatusCode) -> bool {
    status.is_server_error()
        || status == http::StatusCode::TOO_MANY_REQUESTS
        || status == http::StatusCode::REQUEST_TIMEOUT
}
