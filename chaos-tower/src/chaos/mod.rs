//! The generic flavour: chaos for any `Service<Request>`, with faults as a typed [`InjectedError`].
//!
//! Rules with HTTP targeting (route, method, headers) and body faults never match here: a generic request
//! has no such facts. A rate-limit fault is an `InjectedError` whose [`retry_after`](InjectedError::retry_after)
//! is set; a hang waits for its bound (or the kill switch) and then fails.

mod error;
mod future;
mod layer;

use std::task::{Context, Poll};

use brownout_chaos::{Decider, RequestFacts};
use tokio::sync::Notify;
use tower_service::Service;

pub use self::error::InjectedError;
pub use self::future::ResponseFuture;
pub use self::layer::ChaosLayer;
pub(crate) use self::layer::single_rule;

use crate::BoxError;
use crate::faulted::Faulted;
use crate::handle::ChaosHandle;

/// Injects the faults of a [`ChaosHandle`]'s rules into any service.
///
/// `poll_ready` is the inner service's (backpressure passes through, errors are never injected there). A
/// request that gets an error, 429, hang or reset does not call the inner service, whose readiness stays
/// reserved for the next request; a delayed request calls it at once and polls its future after the delay.
#[derive(Debug, Clone)]
pub struct Chaos<S> {
    inner: S,
    decider: Decider,
    wake: std::sync::Arc<Notify>,
}

impl<S> Chaos<S> {
    /// Wraps `inner` with the rules of `handle`.
    pub fn new(inner: S, handle: &ChaosHandle) -> Self {
        Self { inner, decider: handle.decider(), wake: handle.wake().clone() }
    }

    inner_service_accessors!();
}

impl<S, Request> Service<Request> for Chaos<S>
where
    S: Service<Request>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, req: Request) -> Self::Future {
        let Some(injection) = self.decider.decide(&RequestFacts::NONE) else {
            return ResponseFuture::passthrough(self.inner.call(req));
        };
        let (delay, outcome, _body) = injection.into_parts();
        crate::trace::faults(delay.as_ref(), outcome.as_ref(), None, false);
        // An outcome after a wait may be called off by the kill switch: the inner future is then made up front
        // (not polled unless the outcome is called off).
        let inner = Faulted::needs_inner(delay.as_ref(), outcome.as_ref()).then(|| self.inner.call(req));
        ResponseFuture::faulted(inner, Faulted::new(delay, outcome, &self.decider, &self.wake))
    }
}
