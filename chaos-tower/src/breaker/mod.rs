//! A circuit breaker as a Tower layer, over `brownout_degrade::breaker::CircuitBreaker`.
//!
//! Each call takes a permit from the breaker: when the breaker refuses (open, forced open, or half-open
//! with every probe taken) the call fails at once with [`Rejected`] (boxed; `err.is::<Rejected>()`) without
//! reaching the inner service. Otherwise the call's result is classified (success, failure, ignored) and
//! recorded with its duration, so slow calls count. Pair it with a
//! [`FallbackLayer`](crate::FallbackLayer) to answer while the breaker is open.
//!
//! **Which clock.** A breaker behind this layer runs inside tokio: build it on
//! [`TokioClock`](crate::TokioClock) (`CircuitBreaker::new(name, config, TokioClock)`), the clock of the rules,
//! triggers and latency windows, so a paused-time test's `tokio::time::advance` ends its open duration too. On
//! `SystemClock` it would stay open however far paused time moves. `ManualClock` moves it by hand.
//!
//! Pick the preset for your service:
//!
//! | Constructor | Failures | Injected faults |
//! |---|---|---|
//! | [`CircuitBreakerLayer::http`] ([`HttpClassifier`]) | every error (a timeout included), `5xx`, `429`, `408` | ignored; counted with `.count_injected(true)` |
//! | [`CircuitBreakerLayer::grpc`] ([`GrpcClassifier`]) | every error, a `grpc-status` of `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED` or `INTERNAL` (headers, or trailers under [`BufferBodyLayer`](crate::BufferBodyLayer)) | ignored; counted with `.count_injected(true)` |
//! | [`CircuitBreakerLayer::new`] ([`ErrorClassifier`]) | every error | ignored; counted with `.count_injected(true)` |
//! | `.classifier(f)` | whatever `f: Fn(&Result<T, BoxError>) -> Outcome` says | your choice |
//!
//! An injected fault is an [`InjectedError`] or a response marked `x-chaos-injected`
//! ([`INJECTED_HEADER`](crate::INJECTED_HEADER)). Ignored by default, so a chaos experiment does not open the
//! breaker it is meant to test around; count them (`.count_injected(true)`) to rehearse the breaker itself:
//!
//! ```
//! use std::{convert::Infallible, sync::Arc};
//! use brownout_tower::CircuitBreakerLayer;
//! use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, ManualClock, SlidingWindow, State};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let config = BreakerConfig::default().minimum_calls(5).window(SlidingWindow::Count { calls: 10, buckets: 1 });
//! let breaker = Arc::new(CircuitBreaker::new("quotes", config, ManualClock::new()).unwrap());
//! let layer = CircuitBreakerLayer::http(breaker.clone()).count_injected(true);
//! let down = service_fn(|_: http::Request<()>| async {
//!     Ok::<_, Infallible>(http::Response::builder().status(503).body(()).unwrap())
//! });
//! let service = layer.layer(down);
//! for _ in 0..5 {
//!     let _ = service.clone().oneshot(http::Request::new(())).await;
//! }
//! assert_eq!(breaker.state(), State::Open); // five 503s of five calls
//! # }
//! ```
//!
//! [`IgnoreInjected`] and [`HttpStatus`] are the earlier, narrower presets (the second misses `429`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// Counts every `Err` as a failure, injected or not.
pub use brownout_degrade::breaker::ResultClassifier;
use brownout_degrade::breaker::{CircuitBreaker, Classifier, Outcome, OwnedPermit, Rejected};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;
use crate::chaos::InjectedError;

pub mod grpc;
pub use grpc::GrpcClassifier;

/// Counts `Ok` as success and `Err` as failure, except an [`InjectedError`], which is ignored. The same as
/// [`ErrorClassifier::new`].
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct IgnoreInjected;

/// Is `error`, or an error in its `source()` chain, an [`InjectedError`]? (A
/// [`BodyError`](crate::body::BodyError) wraps the reset that failed a body.)
fn injected_error(error: &BoxError) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&**error);
    while let Some(e) = next {
        if e.is::<InjectedError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// The preset of [`CircuitBreakerLayer::new`]: `Ok` is a success, any `Err` a failure. An
/// [`InjectedError`] is ignored unless [`count_injected`](Self::count_injected) is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorClassifier {
    count_injected: bool,
}

impl ErrorClassifier {
    /// Ignores injected errors.
    pub const fn new() -> Self {
        Self { count_injected: false }
    }

    /// With `true`, an [`InjectedError`] counts as a failure like any other error (for a chaos rehearsal
    /// meant to open the breaker).
    pub const fn count_injected(self, count: bool) -> Self {
        Self { count_injected: count }
    }
}

impl<T> Classifier<Result<T, BoxError>> for ErrorClassifier {
    fn classify(&self, output: &Result<T, BoxError>) -> Outcome {
        match output {
            Ok(_) => Outcome::Success,
            Err(e) if !self.count_injected && injected_error(e) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

/// The HTTP preset of [`CircuitBreakerLayer::http`], as seatbelt's: an error (a timeout such as tower's
/// `Elapsed` included), a `5xx`, a `429 Too Many Requests` or a `408 Request Timeout` is a failure; any other
/// response is a success. A fault injected by chaos (an [`InjectedError`], or a response carrying
/// `x-chaos-injected`) is ignored unless [`count_injected`](Self::count_injected) is on; then it is judged
/// like a real one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpClassifier {
    count_injected: bool,
}

impl HttpClassifier {
    /// Ignores injected faults.
    pub const fn new() -> Self {
        Self { count_injected: false }
    }

    /// With `true`, injected faults are judged like real ones (an injected `503` or `429` is a failure).
    pub const fn count_injected(self, count: bool) -> Self {
        Self { count_injected: count }
    }

    /// Is `status` a failure to this preset? `5xx`, `429` and `408`.
    pub fn is_failure(status: http::StatusCode) -> bool {
        crate::grpc::http_failed(status)
    }
}

impl<B> Classifier<Result<http::Response<B>, BoxError>> for HttpClassifier {
    fn classify(&self, output: &Result<http::Response<B>, BoxError>) -> Outcome {
        match output {
            Ok(r) if !self.count_injected && r.headers().contains_key(&crate::INJECTED_HEADER) => Outcome::Ignored,
            Ok(r) if Self::is_failure(r.status()) => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(e) if !self.count_injected && injected_error(e) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

impl<T> Classifier<Result<T, BoxError>> for IgnoreInjected {
    fn classify(&self, output: &Result<T, BoxError>) -> Outcome {
        match output {
            Ok(_) => Outcome::Success,
            Err(e) if injected_error(e) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

/// For HTTP clients: a `5xx` response or an error is a failure; anything injected by chaos (an
/// [`InjectedError`], or a response marked `x-chaos-injected`) is ignored. [`HttpClassifier`] also counts
/// `429` and `408`, and can count injected faults.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct HttpStatus;

impl<B> Classifier<Result<http::Response<B>, BoxError>> for HttpStatus {
    fn classify(&self, output: &Result<http::Response<B>, BoxError>) -> Outcome {
        match output {
            Ok(r) if r.headers().contains_key(brownout_chaos::INJECTED_HEADER) => Outcome::Ignored,
            Ok(r) if r.status().is_server_error() => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(e) if injected_error(e) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

/// Applies a circuit breaker. Holds the shared breaker; cheap to clone.
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = ErrorClassifier> {
    breaker: Arc<CircuitBreaker>,
    classifier: C,
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer").field("breaker", &self.breaker.name()).finish_non_exhaustive()
    }
}

impl CircuitBreakerLayer {
    /// A layer over `breaker`, which every service made from it shares: any error is a failure, an injected
    /// one is ignored ([`ErrorClassifier`]). For HTTP services use [`http`](CircuitBreakerLayer::http).
    pub fn new(breaker: Arc<CircuitBreaker>) -> Self {
        Self { breaker, classifier: ErrorClassifier::new() }
    }

    /// Counts injected errors ([`InjectedError`]) as failures too (`true`), or ignores them (`false`, the
    /// default).
    pub fn count_injected(self, count: bool) -> Self {
        Self { breaker: self.breaker, classifier: self.classifier.count_injected(count) }
    }
}

impl CircuitBreakerLayer<HttpClassifier> {
    /// The HTTP preset ([`HttpClassifier`]): an error (a timeout included), a `5xx`, a `429` or a `408` is a
    /// failure; an injected fault is ignored unless [`count_injected`](Self::count_injected).
    pub fn http(breaker: Arc<CircuitBreaker>) -> Self {
        Self { breaker, classifier: HttpClassifier::new() }
    }

    /// Judges injected faults (a response marked `x-chaos-injected`, an [`InjectedError`]) like real ones
    /// (`true`), or ignores them (`false`, the default).
    pub fn count_injected(self, count: bool) -> Self {
        Self { breaker: self.breaker, classifier: self.classifier.count_injected(count) }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Chooses how results count: any `Fn(&Result<T, BoxError>) -> Outcome`, or a preset
    /// ([`ResultClassifier`] counts every error, injected or not).
    pub fn classifier<D>(self, classifier: D) -> CircuitBreakerLayer<D> {
        CircuitBreakerLayer { breaker: self.breaker, classifier }
    }

    /// The shared breaker (for its state, snapshot and forced states).
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService { inner, breaker: self.breaker.clone(), classifier: self.classifier.clone() }
    }
}

/// The service of [`CircuitBreakerLayer`].
#[derive(Clone)]
pub struct CircuitBreakerService<S, C> {
    inner: S,
    breaker: Arc<CircuitBreaker>,
    classifier: C,
}

impl<S, C> fmt::Debug for CircuitBreakerService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerService").field("breaker", &self.breaker.name()).finish_non_exhaustive()
    }
}

impl<S, C> CircuitBreakerService<S, C> {
    inner_service_accessors!();
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classifier<Result<S::Response, BoxError>> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => ResponseFuture {
                state: State::Called {
                    inner: self.inner.call(req),
                    permit: Some(permit),
                    classifier: self.classifier.clone(),
                    // Only a breaker that judges slow calls reads their time: no clock read otherwise.
                    started: self.breaker.judges_slow_calls().then(Instant::now),
                },
            },
            Err(rejected) => {
                crate::trace::breaker_rejected(self.breaker.name(), rejected.status().label());
                ResponseFuture { state: State::Rejected { rejected: Some(rejected) } }
            }
        }
    }
}

pin_project! {
    /// Response future of [`CircuitBreakerService`].
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Called { #[pin] inner: F, permit: Option<OwnedPermit>, classifier: C, started: Option<Instant> },
        Rejected { rejected: Option<Rejected> },
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rejected = matches!(self.state, State::Rejected { .. });
        f.debug_struct("ResponseFuture").field("rejected", &rejected).finish()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classifier<Result<T, BoxError>>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { inner, permit, classifier, started } => {
                let result = ready!(inner.poll(cx)).map_err(Into::into);
                if let Some(permit) = permit.take() {
                    permit.record(classifier.classify(&result), started.map_or(Duration::ZERO, |s| s.elapsed()));
                }
                Poll::Ready(result)
            }
            StateProj::Rejected { rejected } => {
                let rejected = rejected.take().expect("rejected future polled after completion");
                Poll::Ready(Err(rejected.into()))
            }
        }
    }
}
