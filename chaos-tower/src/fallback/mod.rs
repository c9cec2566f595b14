//! Fallback: answer from a second service when the first fails, answers a failure, is cut off by an open
//! breaker, or while a degrade flag says so.
//!
//! ```
//! use std::convert::Infallible;
//! use brownout_tower::FallbackLayer;
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
//!
//! # Why the fallback was called
//!
//! With [`FallbackLayer::http`], the request the fallback gets carries a [`FallbackReason`] extension
//! (`req.extensions().get::<FallbackReason>()`): the breaker was open, the fault was injected, the primary
//! timed out, was shed, failed with another error, answered a failed status, or the degrade flag is on. The
//! fallback can say so in a header and choose what to serve:
//!
//! ```
//! use std::convert::Infallible;
//! use brownout_tower::{FallbackLayer, FallbackReason};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let provider = service_fn(|_: http::Request<String>| async {
//!     Ok::<_, Infallible>(http::Response::builder().status(503).body(String::new()).unwrap())
//! });
//! let cache = service_fn(|req: http::Request<String>| async move {
//!     let why = match req.extensions().get::<FallbackReason>() {
//!         Some(reason) => reason.as_str(),
//!         None => "unknown",
//!     };
//!     Ok::<_, Infallible>(http::Response::builder().header("x-served-from", "cache").header("x-fallback-reason", why).body("cached".to_owned()).unwrap())
//! });
//! let quotes = FallbackLayer::http(cache).layer(provider);
//! let answer = quotes.oneshot(http::Request::new(String::new())).await.unwrap();
//! assert_eq!(answer.headers()["x-fallback-reason"], "status");
//! # }
//! ```
//!
//! # Which responses call for the fallback
//!
//! [`FallbackLayer::on_response`] takes a [`FailedResponse`], and any `Fn(&Response) -> bool` is one:
//!
//! ```
//! use std::convert::Infallible;
//! use brownout_tower::FallbackLayer;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let provider = service_fn(|_: http::Request<String>| async {
//!     Ok::<_, Infallible>(http::Response::builder().status(404).body("gone".to_owned()).unwrap())
//! });
//! let cache = service_fn(|_: http::Request<String>| async { Ok::<_, Infallible>(http::Response::new("cached".to_owned())) });
//! // A 404 from the provider is served from the cache too.
//! let layer = FallbackLayer::http(cache).on_response(|r: &http::Response<String>| r.status() == 404 || r.status().is_server_error());
//! let answer = layer.layer(provider).oneshot(http::Request::new(String::new())).await.unwrap();
//! assert_eq!(answer.body(), "cached");
//! # }
//! ```

use std::any::Any;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use brownout_degrade::BoolFlag;
use brownout_degrade::breaker::Rejected;
use http::StatusCode;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;
use crate::chaos::InjectedError;

mod grpc;
pub use grpc::GrpcFailure;

/// Why the fallback was called: a request extension on the request it gets (see the [module](self) docs).
///
/// Derived from what the primary service returned: its error (looked through the error's `source()` chain
/// when it is a [`BoxError`]) or the failed response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FallbackReason {
    /// The degrade flag of [`FallbackLayer::when_flag`] is on: the primary was not called.
    Flag,
    /// A circuit breaker refused the call (`brownout_degrade::breaker::Rejected`, e.g. from
    /// [`CircuitBreakerLayer`](crate::CircuitBreakerLayer)).
    BreakerOpen,
    /// A fault injected by chaos: an [`InjectedError`], or a response marked
    /// [`x-chaos-injected`](crate::INJECTED_HEADER).
    Injected,
    /// The primary timed out: tower's or tokio's `Elapsed`, or an `io::Error` of kind `TimedOut`.
    Timeout,
    /// The primary was shed: a response marked [`x-degrade-shed`](crate::SHED_HEADER), or tower's
    /// `Overloaded`.
    Shed,
    /// Any other error.
    Error,
    /// An HTTP response that called for the fallback, with its status ([`HttpFailure`]: `5xx` or `429`).
    Status(StatusCode),
    /// A response that your [`FailedResponse`] (e.g. a closure given to
    /// [`on_response`](FallbackLayer::on_response)) judged failed.
    Response,
}

impl FallbackReason {
    /// A short lowercase name for headers, logs and metrics: `flag`, `breaker_open`, `injected`, `timeout`,
    /// `shed`, `error`, `status`, `response`.
    pub fn as_str(self) -> &'static str {
        match self {
            FallbackReason::Flag => "flag",
            FallbackReason::BreakerOpen => "breaker_open",
            FallbackReason::Injected => "injected",
            FallbackReason::Timeout => "timeout",
            FallbackReason::Shed => "shed",
            FallbackReason::Error => "error",
            FallbackReason::Status(_) => "status",
            FallbackReason::Response => "response",
        }
    }

    /// The reason for an error of the primary service: a [`BoxError`] (or a plain error type of ours) is
    /// looked through, source by source; any other error type is [`FallbackReason::Error`].
    pub fn of_error<E: 'static>(error: &E) -> Self {
        let any = error as &dyn Any;
        if let Some(boxed) = any.downcast_ref::<BoxError>() {
            return Self::of_dyn_error(&**boxed);
        }
        if let Some(boxed) = any.downcast_ref::<Box<dyn StdError + Send>>() {
            return Self::of_dyn_error(&**boxed);
        }
        if let Some(boxed) = any.downcast_ref::<Box<dyn StdError>>() {
            return Self::of_dyn_error(&**boxed);
        }
        if let Some(e) = any.downcast_ref::<std::io::Error>() {
            return Self::of_dyn_error(e);
        }
        Self::of_type(any).unwrap_or(FallbackReason::Error)
    }

    /// The reason for a `dyn Error`, looked through its `source()` chain.
    pub fn of_dyn_error(error: &(dyn StdError + 'static)) -> Self {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(reason) = Self::of_std(e) {
                return reason;
            }
            next = e.source();
        }
        FallbackReason::Error
    }

    fn of_std(e: &(dyn StdError + 'static)) -> Option<Self> {
        if e.is::<Rejected>() {
            Some(FallbackReason::BreakerOpen)
        } else if e.is::<InjectedError>() {
            Some(FallbackReason::Injected)
        } else if e.is::<tower::timeout::error::Elapsed>() || e.is::<tokio::time::error::Elapsed>() {
            Some(FallbackReason::Timeout)
        } else if e.is::<tower::load_shed::error::Overloaded>() {
            Some(FallbackReason::Shed)
        } else if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return Some(FallbackReason::Timeout);
            }
            io.get_ref().and_then(|inner| Self::of_std(inner))
        } else {
            None
        }
    }

    /// Our concrete error types, when the service's error type is one of them (not boxed).
    fn of_type(any: &dyn Any) -> Option<Self> {
        if any.is::<Rejected>() {
            Some(FallbackReason::BreakerOpen)
        } else if any.is::<InjectedError>() {
            Some(FallbackReason::Injected)
        } else if any.is::<tower::timeout::error::Elapsed>() || any.is::<tokio::time::error::Elapsed>() {
            Some(FallbackReason::Timeout)
        } else if any.is::<tower::load_shed::error::Overloaded>() {
            Some(FallbackReason::Shed)
        } else {
            None
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackReason::Status(status) => write!(f, "status {}", status.as_u16()),
            other => f.write_str(other.as_str()),
        }
    }
}

/// How the layer keeps what the fallback needs of a request (the primary consumes the original), rebuilds the
/// fallback's request from it, and tells the fallback why it is called.
///
/// [`copy`](Self::copy) runs on every request, the fallback or not; [`restore`](Self::restore) only when the
/// fallback runs. Keep in [`Kept`](Self::Kept) as little as the fallback reads: it lives in every request's
/// future.
pub trait CopyRequest<Req> {
    /// What is kept of a request until the primary has answered.
    type Kept;

    /// What the fallback will need of `req`.
    fn copy(&self, req: &Req) -> Self::Kept;

    /// The request the fallback gets, from what [`copy`](Self::copy) kept.
    fn restore(kept: Self::Kept) -> Req;

    /// Marks the request handed to the fallback with why it is called. Does nothing by default; [`HttpParts`]
    /// and [`HttpHead`] insert the [`FallbackReason`] as a request extension.
    fn mark(req: &mut Req, reason: FallbackReason) {
        let _ = (req, reason);
    }
}

/// Copies requests with `Clone`.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct CloneRequest;

impl<Req: Clone> CopyRequest<Req> for CloneRequest {
    type Kept = Req;

    fn copy(&self, req: &Req) -> Req {
        req.clone()
    }

    fn restore(kept: Req) -> Req {
        kept
    }
}

/// Copies an HTTP request's method, URI, version and headers, with an empty (default) body: enough for a
/// fallback that answers from a cache.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct HttpParts;

impl<B: Default> CopyRequest<http::Request<B>> for HttpParts {
    type Kept = (Head, http::HeaderMap);

    fn copy(&self, req: &http::Request<B>) -> Self::Kept {
        (Head::of(req), req.headers().clone())
    }

    fn restore((head, headers): Self::Kept) -> http::Request<B> {
        let mut req = head.request();
        *req.headers_mut() = headers;
        req
    }

    fn mark(req: &mut http::Request<B>, reason: FallbackReason) {
        req.extensions_mut().insert(reason);
    }
}

/// Copies an HTTP request's method, URI and version, without its headers, with an empty (default) body: for a
/// fallback that reads only the URI, a cheaper copy than [`HttpParts`] (no header map is cloned per request,
/// and no request is built unless the fallback runs). Chosen with [`FallbackLayer::without_headers`].
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct HttpHead;

impl<B: Default> CopyRequest<http::Request<B>> for HttpHead {
    type Kept = Head;

    fn copy(&self, req: &http::Request<B>) -> Head {
        Head::of(req)
    }

    fn restore(head: Head) -> http::Request<B> {
        head.request()
    }

    fn mark(req: &mut http::Request<B>, reason: FallbackReason) {
        req.extensions_mut().insert(reason);
    }
}

/// An HTTP request's method, URI and version: what [`HttpHead`] keeps (and [`HttpParts`], with the headers).
#[derive(Debug, Clone)]
pub struct Head {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
}

impl Head {
    /// The method, URI and version of `req` (a clone of each: the URI's is a reference count).
    pub fn of<B>(req: &http::Request<B>) -> Self {
        Self { method: req.method().clone(), uri: req.uri().clone(), version: req.version() }
    }

    /// The method.
    pub fn method(&self) -> &http::Method {
        &self.method
    }

    /// The URI.
    pub fn uri(&self) -> &http::Uri {
        &self.uri
    }

    /// The HTTP version.
    pub fn version(&self) -> http::Version {
        self.version
    }

    /// A request with this method, URI and version, no headers and an empty (default) body.
    pub fn request<B: Default>(self) -> http::Request<B> {
        let mut req = http::Request::new(B::default());
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        req
    }
}

/// Which successful responses still count as failures, to be answered by the fallback.
///
/// Any `Fn(&Resp) -> bool` is one (see [`FallbackLayer::on_response`]); its reason is
/// [`FallbackReason::Response`].
pub trait FailedResponse<Resp> {
    /// Does `response` call for the fallback?
    fn failed(&self, response: &Resp) -> bool;

    /// Why a failed `response` called for the fallback. [`FallbackReason::Response`] by default.
    fn reason(&self, response: &Resp) -> FallbackReason {
        let _ = response;
        FallbackReason::Response
    }
}

impl<Resp, Q: Fn(&Resp) -> bool> FailedResponse<Resp> for Q {
    fn failed(&self, response: &Resp) -> bool {
        self(response)
    }
}

/// No response calls for the fallback: only errors do.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct OnlyErrors;

impl<Resp> FailedResponse<Resp> for OnlyErrors {
    fn failed(&self, _: &Resp) -> bool {
        false
    }
}

/// HTTP `5xx` and `429` call for the fallback. The reason is [`FallbackReason::Injected`] for an answer
/// marked `x-chaos-injected`, [`FallbackReason::Shed`] for one marked `x-degrade-shed`, else
/// [`FallbackReason::Status`].
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct HttpFailure;

impl<B> FailedResponse<http::Response<B>> for HttpFailure {
    fn failed(&self, response: &http::Response<B>) -> bool {
        response.status().is_server_error() || response.status() == http::StatusCode::TOO_MANY_REQUESTS
    }

    fn reason(&self, response: &http::Response<B>) -> FallbackReason {
        marked(response.headers()).unwrap_or(FallbackReason::Status(response.status()))
    }
}

/// The reason an answer's marker gives: [`FallbackReason::Injected`] for `x-chaos-injected`,
/// [`FallbackReason::Shed`] for `x-degrade-shed`, `None` for an unmarked answer.
fn marked(headers: &http::HeaderMap) -> Option<FallbackReason> {
    if headers.contains_key(&crate::INJECTED_HEADER) {
        Some(FallbackReason::Injected)
    } else if headers.contains_key(&crate::SHED_HEADER) {
        Some(FallbackReason::Shed)
    } else {
        None
    }
}

#[derive(Debug)]
struct Counters {
    name: Box<str>,
    error: metrics::Counter,
    response: metrics::Counter,
    flag: metrics::Counter,
}

impl Counters {
    fn new(name: &str) -> Arc<Self> {
        metrics::describe_counter!("degrade_fallbacks_total", "Answers served by a fallback, per fallback and reason.");
        let c = |reason: &'static str| metrics::counter!("degrade_fallbacks_total", "fallback" => name.to_owned(), "reason" => reason);
        Arc::new(Self { name: name.into(), error: c("error"), response: c("response"), flag: c("flag") })
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

impl<F, P> FallbackLayer<F, HttpParts, P> {
    /// Hands the fallback the request's method, URI and version without its headers ([`HttpHead`]): for a
    /// fallback that reads only the URI (a cache keyed by path), it saves cloning the header map on every
    /// request, fallback or not.
    pub fn without_headers(self) -> FallbackLayer<F, HttpHead, P> {
        let Self { fallback, failed, flag, counters, .. } = self;
        FallbackLayer { fallback, copy: HttpHead, failed, flag, counters }
    }
}

impl<F, C, P> FallbackLayer<F, C, P> {
    /// While `flag` is on, every request goes straight to the fallback (the degrade mode).
    pub fn when_flag(mut self, flag: BoolFlag) -> Self {
        self.flag = Some(flag);
        self
    }

    /// Which successful responses also call for the fallback: a [`FailedResponse`], e.g. a closure
    /// `|r: &http::Response<B>| r.status() == 404` (see the [module](self) docs). Replaces the preset's
    /// choice ([`HttpFailure`] for [`http`](FallbackLayer::http)).
    pub fn on_response<Q>(self, failed: Q) -> FallbackLayer<F, C, Q> {
        FallbackLayer { fallback: self.fallback, copy: self.copy, failed, flag: self.flag, counters: self.counters }
    }

    /// How each request is kept for the fallback: your own [`CopyRequest`], e.g. the head and one header.
    /// Replaces the preset's choice ([`HttpParts`] for [`http`](FallbackLayer::http)).
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use brownout_tower::FallbackLayer;
    /// use brownout_tower::fallback::{CopyRequest, FallbackReason, Head};
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// /// Keeps the method, URI, version and the caller's `x-tenant`: all a per-tenant cache reads.
    /// #[derive(Clone)]
    /// struct HeadAndTenant;
    ///
    /// impl CopyRequest<http::Request<String>> for HeadAndTenant {
    ///     type Kept = (Head, Option<http::HeaderValue>);
    ///
    ///     fn copy(&self, req: &http::Request<String>) -> Self::Kept {
    ///         (Head::of(req), req.headers().get("x-tenant").cloned())
    ///     }
    ///
    ///     fn restore((head, tenant): Self::Kept) -> http::Request<String> {
    ///         let mut req = head.request();
    ///         if let Some(tenant) = tenant {
    ///             req.headers_mut().insert("x-tenant", tenant);
    ///         }
    ///         req
    ///     }
    ///
    ///     fn mark(req: &mut http::Request<String>, reason: FallbackReason) {
    ///         req.extensions_mut().insert(reason);
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let provider = service_fn(|_: http::Request<String>| async {
    ///     Ok::<_, Infallible>(http::Response::builder().status(503).body(String::new()).unwrap())
    /// });
    /// let cache = service_fn(|req: http::Request<String>| async move {
    ///     let (tenant, headers) = (req.headers()["x-tenant"].to_str().unwrap().to_owned(), req.headers().len());
    ///     Ok::<_, Infallible>(http::Response::new(format!("cached for {tenant}, {headers} header")))
    /// });
    /// let quotes = FallbackLayer::http(cache).copy_with(HeadAndTenant).layer(provider);
    /// let req = http::Request::get("/quote/ACME").header("x-tenant", "acme").header("x-user-id", "7");
    /// let answer = quotes.oneshot(req.body(String::new()).unwrap()).await.unwrap();
    /// assert_eq!(answer.body(), "cached for acme, 1 header");
    /// # }
    /// ```
    pub fn copy_with<D>(self, copy: D) -> FallbackLayer<F, D, P> {
        FallbackLayer { fallback: self.fallback, copy, failed: self.failed, flag: self.flag, counters: self.counters }
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
        let shared =
            Shared { fallback: self.fallback.clone(), failed: self.failed.clone(), counters: self.counters.clone() };
        Fallback { inner, copy: self.copy.clone(), flag: self.flag.clone(), shared: Arc::new(shared) }
    }
}

/// What a request's future reads only when the primary has answered: one reference count per request instead
/// of a clone of each.
struct Shared<F, P> {
    fallback: F,
    failed: P,
    counters: Arc<Counters>,
}

/// The service of [`FallbackLayer`].
pub struct Fallback<S, F, C, P> {
    inner: S,
    copy: C,
    flag: Option<BoolFlag>,
    shared: Arc<Shared<F, P>>,
}

impl<S: Clone, F, C: Clone, P> Clone for Fallback<S, F, C, P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            copy: self.copy.clone(),
            flag: self.flag.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S, F, C, P> Fallback<S, F, C, P> {
    inner_service_accessors!();
}

impl<S, F, C, P> fmt::Debug for Fallback<S, F, C, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback").field("flag", &self.flag).finish_non_exhaustive()
    }
}

impl<S, F, C, P, Req> Service<Req> for Fallback<S, F, C, P>
where
    S: Service<Req>,
    S::Error: 'static,
    F: Service<Req, Response = S::Response, Error = S::Error> + Clone,
    C: CopyRequest<Req>,
    P: FailedResponse<S::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, F, Req, P, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Req) -> Self::Future {
        let shared = self.shared.clone();
        if self.flag.as_ref().is_some_and(BoolFlag::get) {
            shared.counters.flag.increment(1);
            crate::trace::fallback(&shared.counters.name, FallbackReason::Flag.as_str(), None);
            C::mark(&mut req, FallbackReason::Flag);
            let state = State::fallback(shared.fallback.clone(), req);
            return ResponseFuture { state, shared, copy: PhantomData };
        }
        let kept = self.copy.copy(&req);
        let state = State::Primary { inner: self.inner.call(req), kept: Some(kept) };
        ResponseFuture { state, shared, copy: PhantomData }
    }
}

pin_project! {
    /// Response future of [`Fallback`]: the primary's future, what was kept of the request for the fallback
    /// ([`CopyRequest::Kept`]) and a reference to the layer's fallback; the fallback's own future once called.
    pub struct ResponseFuture<SF, F: Service<Req>, Req, P, C: CopyRequest<Req>> {
        #[pin]
        state: State<SF, F, Req, C::Kept>,
        shared: Arc<Shared<F, P>>,
        copy: PhantomData<fn() -> C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<SF, F: Service<Req>, Req, K> {
        Primary { #[pin] inner: SF, kept: Option<K> },
        // Boxed: the fallback's service, request and future take no room in the futures of the requests the
        // primary answers.
        Fallback { call: Pin<Box<FallbackCall<F, Req>>> },
    }
}

pin_project! {
    /// The fallback's call: waiting for the fallback service to be ready, then its future.
    #[project = CallProj]
    enum FallbackCall<F: Service<Req>, Req> {
        Ready { fallback: Option<(F, Req)> },
        Calling { #[pin] future: F::Future },
    }
}

impl<F: Service<Req>, Req> Future for FallbackCall<F, Req> {
    type Output = Result<F::Response, F::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                CallProj::Ready { fallback } => {
                    let (service, _) = fallback.as_mut().expect("fallback present until called");
                    ready!(service.poll_ready(cx))?;
                    let (mut service, req) = fallback.take().expect("fallback present until called");
                    let future = service.call(req);
                    self.set(FallbackCall::Calling { future });
                }
                CallProj::Calling { future } => return future.poll(cx),
            }
        }
    }
}

impl<SF, F: Service<Req>, Req, P, C: CopyRequest<Req>> fmt::Debug for ResponseFuture<SF, F, Req, P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.state {
            State::Primary { .. } => "primary",
            State::Fallback { .. } => "fallback",
        };
        f.debug_struct("ResponseFuture").field("phase", &phase).finish()
    }
}

impl<SF, F: Service<Req>, Req, K> State<SF, F, Req, K> {
    fn fallback(service: F, req: Req) -> Self {
        State::Fallback { call: Box::pin(FallbackCall::Ready { fallback: Some((service, req)) }) }
    }
}

impl<SF, F, Req, P, C, T, E> Future for ResponseFuture<SF, F, Req, P, C>
where
    SF: Future<Output = Result<T, E>>,
    F: Service<Req, Response = T, Error = E> + Clone,
    P: FailedResponse<T>,
    C: CopyRequest<Req>,
    E: 'static,
{
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            match this.state.project() {
                StateProj::Primary { inner, kept } => {
                    let result = ready!(inner.poll(cx));
                    let shared = &**this.shared;
                    let (counter, reason) = match &result {
                        Ok(response) if !shared.failed.failed(response) => return Poll::Ready(result),
                        Ok(response) => (&shared.counters.response, shared.failed.reason(response)),
                        Err(error) => (&shared.counters.error, FallbackReason::of_error(error)),
                    };
                    counter.increment(1);
                    let status = match reason {
                        FallbackReason::Status(status) => Some(status.as_u16()),
                        _ => None,
                    };
                    crate::trace::fallback(&shared.counters.name, reason.as_str(), status);
                    let mut req = C::restore(kept.take().expect("kept until the primary answers"));
                    C::mark(&mut req, reason);
                    let state = State::fallback(shared.fallback.clone(), req);
                    self.as_mut().project().state.set(state);
                }
                StateProj::Fallback { call } => return call.as_mut().poll(cx),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Ready;
    use std::mem::size_of;
    use std::task::{Context, Poll};

    use super::*;

    /// A fallback service as large as a client stack.
    #[derive(Clone)]
    struct Large(#[allow(dead_code, reason = "only its size matters")] [u8; 512]);

    impl Service<http::Request<()>> for Large {
        type Response = http::Response<()>;
        type Error = Infallible;
        type Future = Ready<Result<http::Response<()>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            std::future::ready(Ok(http::Response::new(())))
        }
    }

    /// Every request's future carries what the fallback may need: with `without_headers`, the method, URI and
    /// version and one pointer beside the primary's future — not a whole request, nor a clone of the fallback
    /// service (a future over a tcache-sized limit costs a slower allocation per request).
    #[test]
    fn a_request_keeps_the_head_and_a_pointer() {
        type Primary = Ready<Result<http::Response<()>, Infallible>>;
        type Future = ResponseFuture<Primary, Large, http::Request<()>, HttpFailure, HttpHead>;
        let (future, primary, head) = (size_of::<Future>(), size_of::<Primary>(), size_of::<Head>());
        println!("future {future} (primary {primary}, head {head})");
        assert!(future <= primary + head + 2 * size_of::<usize>());
    }
}
