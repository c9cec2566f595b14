//! Fallback: answer from a second service when the first fails, answers a failure, is cut off by an open
//! breaker, or while a degrade flag says so.
//!
//! ```
//! use std::convert::Infallible;
//! use chaos_tower::FallbackLayer;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # async fn demo() {
//! let provider = service_fn(|_: http::Request<String>| async { Ok::<_, Infallible>(http::Response::new("live".to_owned())) });
//! let cache = service_fn(|_: http::Request<String>| async { Ok::<_, Infallible>(http::Response::new("cached".to_owned())) });
//! // For HTTP: on an error, a 5xx or a 429, ask the cache with the request's method, URI and headers.
//! let quotes = FallbackLayer::http(cache).layer(provider);
//! let answer = quotes.oneshot(http::Request::new(String::new())).await.unwrap();
//! assert_eq!(answer.body(), "live");
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use degrade_flags::BoolFlag;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// How the layer keeps a copy of a request for the fallback (the primary consumes the original).
pub trait CopyRequest<Req> {
    /// A copy of `req` for the fallback.
    fn copy(&self, req: &Req) -> Req;
}

/// Copies requests with `Clone`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneRequest;

impl<Req: Clone> CopyRequest<Req> for CloneRequest {
    fn copy(&self, req: &Req) -> Req {
        req.clone()
    }
}

/// Copies an HTTP request's method, URI, version and headers, with an empty (default) body: enough for a
/// fallback that answers from a cache.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpParts;

impl<B: Default> CopyRequest<http::Request<B>> for HttpParts {
    fn copy(&self, req: &http::Request<B>) -> http::Request<B> {
        let mut copy = http::Request::new(B::default());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        copy
    }
}

/// Which successful responses still count as failures, to be answered by the fallback.
pub trait FailedResponse<Resp> {
    /// Does `response` call for the fallback?
    fn failed(&self, response: &Resp) -> bool;
}

/// No response calls for the fallback: only errors do.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnlyErrors;

impl<Resp> FailedResponse<Resp> for OnlyErrors {
    fn failed(&self, _: &Resp) -> bool {
        false
    }
}

/// HTTP `5xx` and `429` call for the fallback.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFailure;

impl<B> FailedResponse<http::Response<B>> for HttpFailure {
    fn failed(&self, response: &http::Response<B>) -> bool {
        response.status().is_server_error() || response.status() == http::StatusCode::TOO_MANY_REQUESTS
    }
}

#[derive(Debug)]
struct Counters {
    error: metrics::Counter,
    response: metrics::Counter,
    flag: metrics::Counter,
}

impl Counters {
    fn new(name: &str) -> Arc<Self> {
        metrics::describe_counter!("degrade_fallbacks_total", "Answers served by a fallback, per fallback and reason.");
        let c = |reason: &'static str| metrics::counter!("degrade_fallbacks_total", "fallback" => name.to_owned(), "reason" => reason);
        Arc::new(Self { error: c("error"), response: c("response"), flag: c("flag") })
    }
}

/// Wraps a service with a fallback. Cheap to clone.
#[derive(Clone)]
pub struct FallbackLayer<F, C, P> {
    fallback: F,
    copy: C,
    failed: P,
    flag: Option<BoolFlag>,
    counters: Arc<Counters>,
}

impl<F, C, P> fmt::Debug for FallbackLayer<F, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer").field("flag", &self.flag).finish_non_exhaustive()
    }
}

impl<F> FallbackLayer<F, CloneRequest, OnlyErrors> {
    /// Falls back to `fallback` when the service returns an error; requests are kept with `Clone`.
    pub fn new(fallback: F) -> Self {
        Self { fallback, copy: CloneRequest, failed: OnlyErrors, flag: None, counters: Counters::new("fallback") }
    }
}

impl<F> FallbackLayer<F, HttpParts, HttpFailure> {
    /// For HTTP: falls back on an error, a `5xx` or a `429`, handing the fallback the request's method, URI,
    /// version and headers (with an empty body).
    pub fn http(fallback: F) -> Self {
        Self { fallback, copy: HttpParts, failed: HttpFailure, flag: None, counters: Counters::new("fallback") }
    }
}

impl<F, C, P> FallbackLayer<F, C, P> {
    /// While `flag` is on, every request goes straight to the fallback (the degrade mode).
    pub fn when_flag(mut self, flag: BoolFlag) -> Self {
        self.flag = Some(flag);
        self
    }

    /// Which successful responses also call for the fallback.
    pub fn on_response<Q>(self, failed: Q) -> FallbackLayer<F, C, Q> {
        FallbackLayer { fallback: self.fallback, copy: self.copy, failed, flag: self.flag, counters: self.counters }
    }

    /// Names the layer in `degrade_fallbacks_total{fallback,reason}` (default `fallback`).
    pub fn name(mut self, name: &str) -> Self {
        self.counters = Counters::new(name);
        self
    }
}

impl<S, F: Clone, C: Clone, P: Clone> Layer<S> for FallbackLayer<F, C, P> {
    type Service = Fallback<S, F, C, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback {
            inner,
            fallback: self.fallback.clone(),
            copy: self.copy.clone(),
            failed: self.failed.clone(),
            flag: self.flag.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// The service of [`FallbackLayer`].
#[derive(Clone)]
pub struct Fallback<S, F, C, P> {
    inner: S,
    fallback: F,
    copy: C,
    failed: P,
    flag: Option<BoolFlag>,
    counters: Arc<Counters>,
}

impl<S, F, C, P> fmt::Debug for Fallback<S, F, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback").field("flag", &self.flag).finish_non_exhaustive()
    }
}

impl<S, F, C, P, Req> Service<Req> for Fallback<S, F, C, P>
where
    S: Service<Req>,
    F: Service<Req, Response = S::Response, Error = S::Error> + Clone,
    C: CopyRequest<Req>,
    P: FailedResponse<S::Response> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, F, Req, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let counters = self.counters.clone();
        if self.flag.as_ref().is_some_and(BoolFlag::get) {
            counters.flag.increment(1);
            let state = State::Ready { fallback: Some((self.fallback.clone(), req)) };
            return ResponseFuture { state, failed: self.failed.clone(), counters };
        }
        let copy = self.copy.copy(&req);
        let state = State::Primary { inner: self.inner.call(req), spare: Some((self.fallback.clone(), copy)) };
        ResponseFuture { state, failed: self.failed.clone(), counters }
    }
}

pin_project! {
    /// Response future of [`Fallback`].
    pub struct ResponseFuture<SF, F: Service<Req>, Req, P> {
        #[pin]
        state: State<SF, F, Req>,
        failed: P,
        counters: Arc<Counters>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<SF, F: Service<Req>, Req> {
        Primary { #[pin] inner: SF, spare: Option<(F, Req)> },
        Ready { fallback: Option<(F, Req)> },
        Calling { #[pin] future: F::Future },
    }
}

impl<SF, F: Service<Req>, Req, P> fmt::Debug for ResponseFuture<SF, F, Req, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.state {
            State::Primary { .. } => "primary",
            State::Ready { .. } | State::Calling { .. } => "fallback",
        };
        f.debug_struct("ResponseFuture").field("phase", &phase).finish()
    }
}

impl<SF, F, Req, P, T, E> Future for ResponseFuture<SF, F, Req, P>
where
    SF: Future<Output = Result<T, E>>,
    F: Service<Req, Response = T, Error = E>,
    P: FailedResponse<T>,
{
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            match this.state.project() {
                StateProj::Primary { inner, spare } => {
                    let result = ready!(inner.poll(cx));
                    let counter = match &result {
                        Ok(response) if !this.failed.failed(response) => return Poll::Ready(result),
                        Ok(_) => &this.counters.response,
                        Err(_) => &this.counters.error,
                    };
                    counter.increment(1);
                    let fallback = spare.take();
                    self.as_mut().project().state.set(State::Ready { fallback });
                }
                StateProj::Ready { fallback } => {
                    let (service, _) = fallback.as_mut().expect("fallback present until called");
                    ready!(service.poll_ready(cx))?;
                    let (mut service, req) = fallback.take().expect("fallback present until called");
                    let future = service.call(req);
                    self.as_mut().project().state.set(State::Calling { future });
                }
                StateProj::Calling { future } => return future.poll(cx),
            }
        }
    }
}
