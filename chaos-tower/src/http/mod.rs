//! The HTTP flavour: chaos for `http::Request<B>` → `http::Response<ResB>` services, with faults as
//! responses.
//!
//! | fault | the caller sees |
//! |---|---|
//! | latency | the service's answer, later |
//! | error | the configured status, body and headers; with `grpc:` a trailers-only gRPC answer |
//! | rate_limit | `429` with `Retry-After`, `x-ratelimit-limit`, `x-ratelimit-remaining: 0`, `x-ratelimit-reset` |
//! | hang | nothing until the hang's `max`, then `504`; a gRPC caller's deadline (`grpc-timeout`) before `max` ends it with a trailers-only `DEADLINE_EXCEEDED` |
//! | reset | a response head whose body fails at once: hyper drops the connection |
//! | cpu_burn | the service's answer, after the request's thread burned the configured CPU |
//! | throttle | the service's answer, its body at N KiB/s |
//! | truncate | the service's answer cut after N bytes; a declared `Content-Length` stays, so the cut shows |
//!
//! A gRPC call (`content-type: application/grpc…`) gets every outcome as a trailers-only gRPC status: an HTTP
//! status of an `error` fault, a `rate_limit` and a hang at its `max` become the code gRPC maps that status to
//! (`UNAVAILABLE` for 429, 502, 503 and 504), with a readable `grpc-message`.
//!
//! A reset or a cut body fails only once the body is read: under a breaker or a fallback, read it with
//! [`BufferBodyLayer`](crate::BufferBodyLayer), which makes either an error of the call (a response under a
//! `truncate` rule carries the rule's [`InjectedError`](crate::InjectedError) as an extension, so the buffer
//! can tell the cut was injected).
//!
//! Every injected answer carries `x-chaos-injected: <rule>`. The service's error type is unchanged, so the
//! layer fits axum's `Router::layer`.

mod body;
mod deadline;
mod future;
pub mod headers;
mod layer;
mod mode;
mod response;
mod shaped;

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use ::http::header::HeaderName;
use ::http::{Request, Response, StatusCode};
use brownout_chaos::{Decider, Pending, RequestFacts};
use bytes::Bytes;
use tokio::sync::Notify;
use tower_service::Service;

pub use self::body::ChaosBody;
pub use self::future::ResponseFuture;
pub use self::layer::HttpChaosLayer;
pub use self::mode::{BodyMode, FromChaosBody, SameBody, WrapBody};

/// `x-chaos-injected: <rule>` marks every injected answer, so retries, breakers, fallbacks and dashboards can
/// tell it from a real one (also at the crate root, beside [`SHED_HEADER`](crate::SHED_HEADER)).
///
/// ```
/// # fn check(response: &http::Response<()>) -> bool {
/// response.headers().contains_key(&brownout_tower::INJECTED_HEADER)
/// # }
/// ```
pub static INJECTED_HEADER: HeaderName = HeaderName::from_static(brownout_chaos::INJECTED_HEADER);

use self::headers::Asked;
use crate::faulted::Faulted;
use crate::handle::ChaosHandle;

/// Injects the faults of a [`ChaosHandle`]'s rules into an HTTP service.
///
/// `poll_ready` is the inner service's. A request answered by a fault does not call the inner service,
/// whose readiness stays reserved for the next request; a delayed request calls it at once and polls its
/// future after the delay.
///
/// `M` chooses the response body type: [`WrapBody`] (the default, [`ChaosBody<B>`] over any body) or
/// [`SameBody`] (the inner body type, for bodies that can hold any body: see [`FromChaosBody`]).
#[derive(Debug)]
pub struct HttpChaos<S, M = WrapBody> {
    inner: S,
    decider: Decider,
    wake: Arc<Notify>,
    mode: PhantomData<fn() -> M>,
}

impl<S: Clone, M> Clone for HttpChaos<S, M> {
    fn clone(&self) -> Self {
        let (decider, wake) = (self.decider.clone(), self.wake.clone());
        Self { inner: self.inner.clone(), decider, wake, mode: PhantomData }
    }
}

impl<S> HttpChaos<S> {
    /// Wraps `inner` with the rules of `handle`; responses carry [`ChaosBody`].
    pub fn new(inner: S, handle: &ChaosHandle) -> Self {
        Self::with_mode(inner, handle)
    }
}

impl<S, M> HttpChaos<S, M> {
    /// Wraps `inner` with the rules of `handle`, bodies typed by `M`.
    pub fn with_mode(inner: S, handle: &ChaosHandle) -> Self {
        Self { inner, decider: handle.decider(), wake: handle.wake().clone(), mode: PhantomData }
    }

    inner_service_accessors!();
}

impl<S, M, ReqB, ResB> Service<Request<ReqB>> for HttpChaos<S, M>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    M: BodyMode<ResB>,
{
    type Response = Response<M::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB, M>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // Nothing armed: one atomic load and a branch. Armed: the untargeted random rules are decided with
        // one draw, without reading the request; the rules that read it (targeting, a key) decide on its
        // facts in place, out of line, looking only at the rules its method and path could match. Only a rule
        // that chose it, or header faults, take the request itself out of line. On the common path the request
        // moves once, into the inner service, as without the layer.
        if let Some(pending) = self.decider.scan() {
            return self.call_armed(req, pending);
        }
        ResponseFuture::passthrough(self.inner.call(req))
    }
}

impl<S, M> HttpChaos<S, M> {
    /// The rules that read the request decide on its facts, in place.
    #[inline]
    fn call_armed<ReqB, ResB>(&mut self, req: Request<ReqB>, pending: Pending) -> ResponseFuture<S::Future, ResB, M>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
    {
        // Usually no rule reads the headers and the method is a standard one: then the facts hold nothing that
        // points into the request, and the request moves on without being copied first.
        if !self.decider.reads_headers()
            && let Some(facts) = RequestFacts::http_path_method(req.uri().path(), req.method())
        {
            return match self.decider.choose(pending, &facts) {
                Some(chosen) => self.call_pending(req, chosen),
                None => ResponseFuture::passthrough(self.inner.call(req)),
            };
        }
        self.call_general(req, pending)
    }

    /// [`call_armed`](Self::call_armed) with every fact of the request.
    #[inline(never)]
    fn call_general<ReqB, ResB>(&mut self, req: Request<ReqB>, pending: Pending) -> ResponseFuture<S::Future, ResB, M>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
    {
        match self.decider.choose(pending, &RequestFacts::http(&req)) {
            Some(chosen) => self.call_pending(req, chosen),
            None => ResponseFuture::passthrough(self.inner.call(req)),
        }
    }

    /// The rest of the decision, which reads the request, and the faults it chose.
    #[inline(never)]
    fn call_pending<ReqB, ResB>(&mut self, req: Request<ReqB>, pending: Pending) -> ResponseFuture<S::Future, ResB, M>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>>,
    {
        let mut injection = self.decider.decide_pending(pending, &RequestFacts::http(&req));
        if let Some((token, max_delay)) = self.decider.header_faults() {
            match headers::read(req.headers(), token, max_delay) {
                Asked::Nothing => {}
                Asked::Faults { delay, abort } => {
                    injection = self.decider.add_header_faults(injection, delay, abort);
                }
                Asked::Invalid(reason) => return ResponseFuture::respond(bad_request(reason)),
            }
        }
        let Some(injection) = injection else {
            return ResponseFuture::passthrough(self.inner.call(req));
        };
        let (delay, outcome, body) = injection.into_parts();
        crate::trace::faults(delay.as_ref(), outcome.as_ref(), body.as_ref(), true);
        // A hang ends at the caller's gRPC deadline, if it sent one: read before the request moves on.
        let deadline = match outcome.as_ref().map(brownout_chaos::ActiveFault::fault) {
            Some(brownout_chaos::Outcome::Hang { .. }) => deadline::grpc_timeout(req.headers()),
            _ => None,
        };
        // A gRPC caller gets its outcome as a gRPC status (read before the request moves on).
        let grpc = outcome.is_some() && response::is_grpc(req.headers());
        // An outcome after a wait may be called off by the kill switch: the inner future is then made up front
        // (not polled unless the outcome is called off).
        let inner = Faulted::needs_inner(delay.as_ref(), outcome.as_ref()).then(|| self.inner.call(req));
        let mut fault = Faulted::new(delay, outcome, &self.decider, &self.wake);
        if let Some(deadline) = deadline {
            fault.hang_until(deadline, &self.wake);
        }
        ResponseFuture::faulted(inner, fault, body, grpc)
    }
}

fn bad_request<B>(reason: &'static str) -> Response<ChaosBody<B>> {
    let mut response = Response::new(ChaosBody::full(Bytes::from(format!("{reason}\n"))));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(&response::INJECTED, ::http::HeaderValue::from_static("header"));
    response
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Ready;
    use std::mem::size_of;

    use super::*;

    /// The pass-through path moves these on every request: keep them the size of what they wrap, plus at most
    /// a tag and a pointer (measured: `cargo bench -p benches --bench instructions`).
    #[test]
    fn pass_through_types_stay_small() {
        type Inner = Ready<Result<Response<()>, Infallible>>;
        let (future, inner) = (size_of::<ResponseFuture<Inner, ()>>(), size_of::<Inner>());
        let (body, axum) = (size_of::<ChaosBody<()>>(), size_of::<ChaosBody<axum::body::Body>>());
        let full = size_of::<ChaosBody<http_body_util::Full<Bytes>>>();
        println!("future {future} (inner {inner}), ChaosBody<()> {body}, <axum Body> {axum}, <Full> {full}");
        assert_eq!(future, inner, "the pass-through future is the inner one and a niche");
        assert!(body <= 16);
        assert!(axum <= size_of::<axum::body::Body>() + 8);
        assert!(full <= size_of::<http_body_util::Full<Bytes>>() + 8);
    }

    /// With [`SameBody`] the pass-through future is the inner one and a niche, and the response is the inner
    /// response: nothing is wrapped.
    #[test]
    fn same_body_pass_through_is_the_inner_future() {
        type Boxed = http_body_util::combinators::UnsyncBoxBody<Bytes, crate::BoxError>;
        type Inner = Ready<Result<Response<Boxed>, Infallible>>;
        assert_eq!(size_of::<ResponseFuture<Inner, Boxed, SameBody>>(), size_of::<Inner>());
        type AxumInner = Ready<Result<Response<axum::body::Body>, Infallible>>;
        assert_eq!(size_of::<ResponseFuture<AxumInner, axum::body::Body, SameBody>>(), size_of::<AxumInner>());
    }
}
