//! A circuit breaker as a Tower layer, over `degrade_flags::breaker::CircuitBreaker`.
//!
//! Each call takes a permit from the breaker: when the breaker refuses (open, forced open, or half-open
//! with every probe taken) the call fails at once with [`Rejected`] (boxed; `err.is::<Rejected>()`) without
//! reaching the inner service. Otherwise the call's result is classified (success, failure, ignored) and
//! recorded with its duration, so slow calls count. Pair it with a
//! [`FallbackLayer`](crate::FallbackLayer) to answer while the breaker is open.
//!
//! By default ([`IgnoreInjected`]) a fault injected by Brownout's chaos layers does not count against the
//! dependency: a chaos experiment should not open the breaker it is meant to test around. Use
//! [`ResultClassifier`] to count everything, [`HttpStatus`] for HTTP clients (`5xx` are failures), or any
//! `Fn(&Result<T, BoxError>) -> Outcome`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

/// Counts every `Err` as a failure, injected or not.
pub use degrade_flags::breaker::ResultClassifier;
use degrade_flags::breaker::{CircuitBreaker, Classifier, Outcome, OwnedPermit, Rejected};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;
use crate::chaos::InjectedError;

/// Counts `Ok` as success and `Err` as failure, except an [`InjectedError`], which is ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct IgnoreInjected;

impl<T> Classifier<Result<T, BoxError>> for IgnoreInjected {
    fn classify(&self, output: &Result<T, BoxError>) -> Outcome {
        match output {
            Ok(_) => Outcome::Success,
            Err(e) if e.is::<InjectedError>() => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

/// For HTTP clients: a `5xx` response or an error is a failure; anything injected by chaos (an
/// [`InjectedError`], or a response marked `x-chaos-injected`) is ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpStatus;

impl<B> Classifier<Result<http::Response<B>, BoxError>> for HttpStatus {
    fn classify(&self, output: &Result<http::Response<B>, BoxError>) -> Outcome {
        match output {
            Ok(r) if r.headers().contains_key(chaos_core::INJECTED_HEADER) => Outcome::Ignored,
            Ok(r) if r.status().is_server_error() => Outcome::Failure,
            Ok(_) => Outcome::Success,
            Err(e) if e.is::<InjectedError>() => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

/// Applies a circuit breaker. Holds the shared breaker; cheap to clone.
#[derive(Clone)]
pub struct CircuitBreakerLayer<C = IgnoreInjected> {
    breaker: Arc<CircuitBreaker>,
    classifier: C,
}

impl<C> fmt::Debug for CircuitBreakerLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer").field("breaker", &self.breaker.name()).finish_non_exhaustive()
    }
}

impl CircuitBreakerLayer {
    /// A layer over `breaker`, which every service made from it shares.
    pub fn new(breaker: Arc<CircuitBreaker>) -> Self {
        Self { breaker, classifier: IgnoreInjected }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Chooses how results count ([`ResultClassifier`] counts every error, injected or not).
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
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
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
                    started: Instant::now(),
                },
            },
            Err(rejected) => ResponseFuture { state: State::Rejected { rejected: Some(rejected) } },
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
        Called { #[pin] inner: F, permit: Option<OwnedPermit>, classifier: C, started: Instant },
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
                    permit.record(classifier.classify(&result), started.elapsed());
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
