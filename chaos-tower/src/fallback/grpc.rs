//! The gRPC preset of the fallback: [`FallbackLayer::grpc`] and its [`GrpcFailure`].

use super::{Counters, FailedResponse, FallbackLayer, FallbackReason, HttpParts, marked};
use crate::grpc::grpc_failed;

/// gRPC answers that call for the fallback: a `grpc-status` of `UNAVAILABLE`, `DEADLINE_EXCEEDED`,
/// `RESOURCE_EXHAUSTED` or `INTERNAL` in the headers (trailers-only) or in buffered trailers
/// ([`BufferBodyLayer`](crate::BufferBodyLayer)), or, without a gRPC status, a `5xx`, `429` or `408` (the
/// codes and why: [`breaker::grpc`](crate::breaker::grpc)). The reason is [`FallbackReason::Injected`] for an
/// answer marked `x-chaos-injected`, [`FallbackReason::Shed`] for one marked `x-degrade-shed`, else
/// [`FallbackReason::Response`].
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct GrpcFailure;

impl<B> FailedResponse<http::Response<B>> for GrpcFailure {
    fn failed(&self, response: &http::Response<B>) -> bool {
        grpc_failed(response)
    }

    fn reason(&self, response: &http::Response<B>) -> FallbackReason {
        marked(response.headers()).unwrap_or(FallbackReason::Response)
    }
}

impl<F> FallbackLayer<F, HttpParts, GrpcFailure> {
    /// For gRPC: falls back on an error or a failed gRPC status ([`GrpcFailure`]), handing the fallback the
    /// request's method, URI (the gRPC method's path), version and headers (with an empty body).
    pub fn grpc(fallback: F) -> Self {
        Self { fallback, copy: HttpParts, failed: GrpcFailure, flag: None, counters: Counters::new("fallback") }
    }
}
