//! The gRPC preset: a gRPC answer is HTTP `200` whose status is the `grpc-status` of its headers (a
//! trailers-only answer, as every injected gRPC status is) or of its trailers.
//!
//! **Which codes are failures.** `UNAVAILABLE` (14), `DEADLINE_EXCEEDED` (4), `RESOURCE_EXHAUSTED` (8) and
//! `INTERNAL` (13): the codes that say the *server* (or the path to it) is in trouble, the ones Envoy retries on
//! (`retry-on: unavailable, deadline-exceeded, resource-exhausted, internal`, beside `cancelled`) and that gRPC's
//! HTTP mapping gives to a `5xx`, `429` or a broken stream. The other codes say the *call* was wrong or the
//! caller gave up (`INVALID_ARGUMENT`, `NOT_FOUND`, `PERMISSION_DENIED`, `CANCELLED`, …): a healthy server
//! answers them, so they count as successes. `UNKNOWN` is left out too: servers map application errors to it.
//! Any error of the call (a transport failure, the client's own timeout) is a failure, and so is a non-`200`
//! HTTP answer that [`HttpClassifier::is_failure`](super::HttpClassifier::is_failure) counts.
//!
//! **Trailers.** An answer with its status in trailers (after its messages) shows it only once its body is
//! read: put [`BufferBodyLayer`](crate::BufferBodyLayer) below the breaker (it keeps trailers as a
//! [`Trailers`](crate::body::Trailers) extension, which this preset reads). Unbuffered, such an answer is judged on its head: a
//! success.

use brownout_degrade::breaker::{Classifier, Outcome};

use super::{CircuitBreakerLayer, injected_error};
use crate::BoxError;
use crate::grpc::grpc_failed;

/// The gRPC preset of [`CircuitBreakerLayer::grpc`] (see the [module](self) docs for the codes and why). A
/// fault injected by chaos (an answer marked `x-chaos-injected`, an [`InjectedError`](crate::InjectedError))
/// is ignored unless [`count_injected`](Self::count_injected) is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrpcClassifier {
    count_injected: bool,
}

impl GrpcClassifier {
    /// Ignores injected faults.
    pub const fn new() -> Self {
        Self { count_injected: false }
    }

    /// With `true`, injected faults are judged like real ones (an injected `UNAVAILABLE` is a failure).
    pub const fn count_injected(self, count: bool) -> Self {
        Self { count_injected: count }
    }
}

impl<B> Classifier<Result<http::Response<B>, BoxError>> for GrpcClassifier {
    fn classify(&self, output: &Result<http::Response<B>, BoxError>) -> Outcome {
        match output {
            Ok(r) if !self.count_injected && r.headers().contains_key(&crate::INJECTED_HEADER) => Outcome::Ignored,
            Ok(r) if grpc_failed(r) => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(e) if !self.count_injected && injected_error(e) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

impl CircuitBreakerLayer<GrpcClassifier> {
    /// The gRPC preset ([`GrpcClassifier`]): an error, or an answer whose `grpc-status` (headers, or buffered
    /// trailers) is `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED` or `INTERNAL`, is a failure; an
    /// injected fault is ignored unless [`count_injected`](Self::count_injected).
    pub fn grpc(breaker: std::sync::Arc<brownout_degrade::breaker::CircuitBreaker>) -> Self {
        Self { breaker, classifier: GrpcClassifier::new() }
    }

    /// Judges injected faults like real ones (`true`), or ignores them (`false`, the default).
    pub fn count_injected(self, count: bool) -> Self {
        Self { breaker: self.breaker, classifier: self.classifier.count_injected(count) }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;
    use proptest::prelude::*;

    use super::*;
    use crate::body::Trailers;

    fn answer(status: u16, headers: &[(&str, &str)], trailers: Option<&[(&str, &str)]>) -> http::Response<()> {
        let mut response = http::Response::builder().status(status).body(()).unwrap();
        for (k, v) in headers {
            response.headers_mut().insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        if let Some(trailers) = trailers {
            let map: HeaderMap = trailers
                .iter()
                .map(|(k, v)| (http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap()))
                .collect();
            response.extensions_mut().insert(Trailers(map));
        }
        response
    }

    fn classify(c: GrpcClassifier, r: http::Response<()>) -> Outcome {
        c.classify(&Ok::<_, BoxError>(r))
    }

    #[test]
    fn reads_the_status_from_headers_then_trailers() {
        let c = GrpcClassifier::new();
        assert_eq!(classify(c, answer(200, &[("grpc-status", "14")], None)), Outcome::Failure);
        assert_eq!(classify(c, answer(200, &[], Some(&[("grpc-status", "13")]))), Outcome::Failure);
        assert_eq!(classify(c, answer(200, &[], Some(&[("grpc-status", "0")]))), Outcome::Success);
        assert_eq!(classify(c, answer(200, &[("grpc-status", "5")], None)), Outcome::Success);
        // Headers win: a trailers-only answer has no trailers to disagree.
        assert_eq!(classify(c, answer(200, &[("grpc-status", "0")], Some(&[("grpc-status", "14")]))), Outcome::Success);
        // No gRPC status: the HTTP status decides.
        assert_eq!(classify(c, answer(200, &[], None)), Outcome::Success);
        assert_eq!(classify(c, answer(503, &[], None)), Outcome::Failure);
        assert_eq!(classify(c, answer(200, &[("grpc-status", "x")], None)), Outcome::Success);
    }

    #[test]
    fn injected_answers_are_ignored_unless_counted() {
        let injected = || answer(200, &[("grpc-status", "14"), ("x-chaos-injected", "drill")], None);
        assert_eq!(classify(GrpcClassifier::new(), injected()), Outcome::Ignored);
        assert_eq!(classify(GrpcClassifier::new().count_injected(true), injected()), Outcome::Failure);
    }

    #[test]
    fn errors_are_failures() {
        let err: Result<http::Response<()>, BoxError> = Err("connection refused".into());
        assert_eq!(GrpcClassifier::new().classify(&err), Outcome::Failure);
    }

    proptest! {
        /// Every code 0..=16, in headers or trailers: a failure exactly when it is one of the four.
        #[test]
        fn every_code_is_judged_by_the_set(code in 0i32..=16, in_trailers in any::<bool>()) {
            let value = code.to_string();
            let r = if in_trailers {
                answer(200, &[], Some(&[("grpc-status", value.as_str())]))
            } else {
                answer(200, &[("grpc-status", value.as_str())], None)
            };
            let expected = if [4, 8, 13, 14].contains(&code) { Outcome::Failure } else { Outcome::Success };
            prop_assert_eq!(classify(GrpcClassifier::new(), r), expected);
        }
    }
}
