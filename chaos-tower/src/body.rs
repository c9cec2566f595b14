//! Whole-body reads below the breaker: [`BufferBodyLayer`] reads the inner response's body to its end, up to a
//! size limit, and answers `http::Response<Bytes>`. A body that fails, ends short of its declared length or
//! exceeds the limit becomes an error of the service, a typed [`BodyError`].
//!
//! Why: a `reset` fault (or a real dropped connection) answers a `200` head whose body then fails, and a
//! `truncate` fault a head whose body ends early. A breaker or a fallback above an HTTP service judges only
//! the head, so such an answer counts as a success and reaches the caller past the fallback. Put this layer
//! below them (and below the client timeout, so a slow body times out) and the body's failure is a failure of
//! the call:
//!
//! ```text
//! FallbackLayer → CircuitBreakerLayer → timeout → BufferBodyLayer → HttpChaosLayer → client
//! ```
//!
//! The breaker's presets ([`HttpClassifier`](crate::breaker::HttpClassifier),
//! [`ErrorClassifier`](crate::breaker::ErrorClassifier)) count a [`BodyError`] as a failure; one caused by an
//! injected fault (a reset's [`InjectedError`], or a body a `truncate` rule cut) is ignored like any injected
//! fault unless `.count_injected(true)`. The fallback's reason ([`FallbackReason`](crate::FallbackReason)) is
//! `Injected` for those and `Error` for a real failure.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use brownout_tower::body::BufferBodyLayer;
//! use brownout_tower::{ChaosHandle, CircuitBreakerLayer, FallbackLayer, FallbackReason, HttpChaosLayer};
//! use brownout_degrade::breaker::{CircuitBreaker, BreakerConfig, ManualClock};
//! use http_body_util::Full;
//! use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Every call's connection is reset after a 200 head.
//! let chaos = ChaosHandle::for_test("rules: [{ name: rst, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]").unwrap();
//! let breaker = Arc::new(CircuitBreaker::new("quotes", BreakerConfig::default(), ManualClock::new()).unwrap());
//! let provider = service_fn(|_: http::Request<()>| async { Ok::<_, BoxError>(http::Response::new(Full::new(Bytes::from("live")))) });
//! let cache = service_fn(|req: http::Request<()>| async move {
//!     let why = req.extensions().get::<FallbackReason>().map_or("unknown", |r| r.as_str());
//!     Ok::<_, BoxError>(http::Response::builder().header("x-fallback-reason", why).body(Bytes::from("cached")).unwrap())
//! });
//! let quotes = ServiceBuilder::new()
//!     .layer(FallbackLayer::http(cache))
//!     .layer(CircuitBreakerLayer::http(breaker).count_injected(true))
//!     .layer(BufferBodyLayer::new(64 * 1024)) // at most 64 KiB per answer
//!     .layer(HttpChaosLayer::new(chaos))
//!     .service(provider);
//! let answer = quotes.oneshot(http::Request::new(())).await.unwrap();
//! assert_eq!(answer.body(), "cached");
//! assert_eq!(answer.headers()["x-fallback-reason"], "injected");
//! # }
//! ```
//!
//! The answer keeps the inner response's status, headers and extensions; trailers, if any, are kept as a
//! [`Trailers`] extension. To serve it as a body again, map it: `response.map(http_body_util::Full::new)`.
//!
//! Refusals are counted in `degrade_body_refused_total{buffer,reason}` (`reason`: `failed`, `incomplete`,
//! `too_large`) and logged at `DEBUG`.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;
use crate::chaos::InjectedError;

/// The limit of [`BufferBodyLayer::default`]: 2 MiB, as axum's default request body limit.
pub const DEFAULT_LIMIT: usize = 2 * 1024 * 1024;

/// The trailers of a buffered body, if it had any: an extension of the buffered response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_structs, reason = "a newtype: its one field is the value")]
pub struct Trailers(pub HeaderMap);

/// What went wrong with a body (see [`BodyError::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyErrorKind {
    /// The body failed with an error (its [`source`](StdError::source)) after `received` bytes: a reset, a
    /// dropped connection.
    Failed {
        /// Bytes read before the failure.
        received: u64,
    },
    /// The body ended after `received` bytes, short of the `expected` ones its `Content-Length` (or its own
    /// size hint) declared: a cut transfer.
    Incomplete {
        /// Bytes declared.
        expected: u64,
        /// Bytes read.
        received: u64,
    },
    /// The body is longer than the limit: refused as soon as that is known (from `Content-Length`, the size
    /// hint, or the bytes read).
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl BodyErrorKind {
    /// `failed`, `incomplete` or `too_large`: for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyErrorKind::Failed { .. } => "failed",
            BodyErrorKind::Incomplete { .. } => "incomplete",
            BodyErrorKind::TooLarge { .. } => "too_large",
        }
    }
}

/// The error of [`BufferBody`] when the inner response's body could not be read whole (boxed in the
/// service's [`BoxError`]; `err.downcast_ref::<BodyError>()`).
///
/// Its [`source`](StdError::source) is the body's own error for [`BodyErrorKind::Failed`], and the
/// [`InjectedError`] of the rule for a body a chaos `truncate` rule cut; so the breaker's presets and
/// [`FallbackReason`](crate::FallbackReason) see an injected fault through it.
#[derive(Debug)]
pub struct BodyError {
    kind: BodyErrorKind,
    source: Option<BoxError>,
}

impl BodyError {
    /// What went wrong.
    pub fn kind(&self) -> BodyErrorKind {
        self.kind
    }

    /// The injected fault behind this error, if chaos caused it (a reset, a cut body).
    pub fn injected(&self) -> Option<&InjectedError> {
        let mut next = self.source.as_deref().map(|e| e as &(dyn StdError + 'static));
        while let Some(e) = next {
            if let Some(injected) = e.downcast_ref::<InjectedError>() {
                return Some(injected);
            }
            next = e.source();
        }
        None
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            BodyErrorKind::Failed { received } => write!(f, "the response body failed after {received} bytes"),
            BodyErrorKind::Incomplete { expected, received } => {
                write!(f, "the response body ended after {received} of its {expected} bytes")
            }
            BodyErrorKind::TooLarge { limit } => {
                write!(f, "the response body exceeds the buffer limit of {limit} bytes")
            }
        }
    }
}

impl StdError for BodyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

#[derive(Debug)]
struct Counters {
    name: Arc<str>,
    failed: metrics::Counter,
    incomplete: metrics::Counter,
    too_large: metrics::Counter,
}

impl Counters {
    fn new(name: &str) -> Arc<Self> {
        metrics::describe_counter!(
            "degrade_body_refused_total",
            "Response bodies a body buffer refused (failed, incomplete, too large), per buffer and reason."
        );
        let c = |reason: &'static str| metrics::counter!("degrade_body_refused_total", "buffer" => name.to_owned(), "reason" => reason);
        Arc::new(Self {
            name: name.into(),
            failed: c("failed"),
            incomplete: c("incomplete"),
            too_large: c("too_large"),
        })
    }

    fn refused(&self, error: BodyError) -> BoxError {
        let counter = match error.kind {
            BodyErrorKind::Failed { .. } => &self.failed,
            BodyErrorKind::Incomplete { .. } => &self.incomplete,
            BodyErrorKind::TooLarge { .. } => &self.too_large,
        };
        counter.increment(1);
        tracing::debug!(
            buffer = %self.name,
            reason = error.kind.as_str(),
            injected = error.injected().map(InjectedError::rule),
            "{error}"
        );
        Box::new(error)
    }
}

/// Reads each response body whole, up to a limit, below a breaker and a fallback (see the [module](self)
/// docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct BufferBodyLayer {
    limit: usize,
    counters: Arc<Counters>,
}

impl BufferBodyLayer {
    /// Buffers bodies of at most `limit` bytes; a longer one is refused with [`BodyErrorKind::TooLarge`].
    pub fn new(limit: usize) -> Self {
        Self { limit, counters: Counters::new("buffer") }
    }

    /// Names the layer in `degrade_body_refused_total{buffer,reason}` and its logs (default `buffer`).
    pub fn name(mut self, name: &str) -> Self {
        self.counters = Counters::new(name);
        self
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl Default for BufferBodyLayer {
    /// [`DEFAULT_LIMIT`] (2 MiB).
    fn default() -> Self {
        Self::new(DEFAULT_LIMIT)
    }
}

impl<S> Layer<S> for BufferBodyLayer {
    type Service = BufferBody<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BufferBody { inner, limit: self.limit, counters: self.counters.clone() }
    }
}

/// The service of [`BufferBodyLayer`].
#[derive(Debug, Clone)]
pub struct BufferBody<S> {
    inner: S,
    limit: usize,
    counters: Arc<Counters>,
}

impl<S> BufferBody<S> {
    inner_service_accessors!();
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for BufferBody<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    ResB: Body,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<Bytes>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let head = req.method() == Method::HEAD;
        ResponseFuture {
            state: State::Head { inner: self.inner.call(req) },
            head,
            limit: self.limit,
            counters: self.counters.clone(),
        }
    }
}

pin_project! {
    /// Response future of [`BufferBody`]: the inner response, then its body read whole.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        head: bool,
        limit: usize,
        counters: Arc<Counters>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Head { #[pin] inner: F },
        Body {
            parts: Option<http::response::Parts>,
            #[pin]
            body: B,
            collected: Collected,
            expected: u64,
            injected: Option<InjectedError>,
        },
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.state {
            State::Head { .. } => "head",
            State::Body { .. } => "body",
        };
        f.debug_struct("ResponseFuture").field("phase", &phase).field("limit", &self.limit).finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<Bytes>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            let limit = *this.limit;
            match this.state.project() {
                StateProj::Head { inner } => {
                    let (parts, body) = ready!(inner.poll(cx)).map_err(Into::into)?.into_parts();
                    let declared = declared_length(&parts, *this.head);
                    let expected = declared.unwrap_or(0).max(body.size_hint().lower());
                    if expected > limit as u64 {
                        return Poll::Ready(Err(this.counters.refused(too_large(limit))));
                    }
                    let injected = parts.extensions.get::<InjectedError>().cloned();
                    let collected = Collected::default();
                    let parts = Some(parts);
                    self.as_mut().project().state.set(State::Body { parts, body, collected, expected, injected });
                }
                StateProj::Body { parts, mut body, collected, expected, injected } => {
                    while let Some(frame) = ready!(body.as_mut().poll_frame(cx)) {
                        let frame = match frame {
                            Ok(frame) => frame,
                            Err(e) => {
                                let received = collected.len as u64;
                                let error =
                                    BodyError { kind: BodyErrorKind::Failed { received }, source: Some(e.into()) };
                                return Poll::Ready(Err(this.counters.refused(error)));
                            }
                        };
                        match frame.into_data() {
                            Ok(mut data) => {
                                if !collected.push(data.copy_to_bytes(data.remaining()), limit) {
                                    return Poll::Ready(Err(this.counters.refused(too_large(limit))));
                                }
                            }
                            Err(frame) => {
                                if let Ok(trailers) = frame.into_trailers() {
                                    collected.trailers.get_or_insert_with(HeaderMap::new).extend(trailers);
                                }
                            }
                        }
                    }
                    let received = collected.len as u64;
                    if received < *expected {
                        let kind = BodyErrorKind::Incomplete { expected: *expected, received };
                        let source = injected.take().map(|e| Box::new(e) as BoxError);
                        return Poll::Ready(Err(this.counters.refused(BodyError { kind, source })));
                    }
                    let mut parts = parts.take().expect("body future polled after completion");
                    let mut collected = std::mem::take(collected);
                    if let Some(trailers) = collected.trailers.take() {
                        parts.extensions.insert(Trailers(trailers));
                    }
                    return Poll::Ready(Ok(Response::from_parts(parts, collected.bytes())));
                }
            }
        }
    }
}

fn too_large(limit: usize) -> BodyError {
    BodyError { kind: BodyErrorKind::TooLarge { limit }, source: None }
}

/// The body length the head declares: its `Content-Length`, unless the response has no body whatever the
/// header says (an answer to `HEAD`, `1xx`, `204`, `304`).
fn declared_length(parts: &http::response::Parts, head: bool) -> Option<u64> {
    let no_body = head
        || parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if no_body {
        return None;
    }
    parts.headers.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The bytes read so far: the first chunk as is (no copy for a one-chunk body), later ones copied together.
#[derive(Debug, Default)]
struct Collected {
    first: Bytes,
    more: BytesMut,
    len: usize,
    trailers: Option<HeaderMap>,
}

impl Collected {
    /// Adds `chunk`; `false` when the total would exceed `limit` (nothing is added then).
    fn push(&mut self, chunk: Bytes, limit: usize) -> bool {
        match within_limit(self.len, chunk.len(), limit) {
            Some(len) => self.len = len,
            None => return false,
        }
        if chunk.is_empty() {
        } else if self.first.is_empty() && self.more.is_empty() {
            self.first = chunk;
        } else {
            if self.more.is_empty() {
                self.more.reserve(self.len);
                self.more.extend_from_slice(&std::mem::take(&mut self.first));
            }
            self.more.extend_from_slice(&chunk);
        }
        true
    }

    fn bytes(self) -> Bytes {
        if self.more.is_empty() { self.first } else { self.more.freeze() }
    }
}

/// `len + more` when it is at most `limit` (no overflow).
fn within_limit(len: usize, more: usize, limit: usize) -> Option<usize> {
    len.checked_add(more).filter(|total| *total <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the chunks and the limit: a total at most the limit is kept whole and in order; one byte
        /// more is refused, at the chunk that crosses it.
        #[test]
        fn the_limit_is_exact(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..12), slack in -3i64..3) {
            let total: usize = chunks.iter().map(Vec::len).sum();
            let limit = usize::try_from(total as i64 + slack).unwrap_or(0);
            let mut collected = Collected::default();
            let mut accepted = true;
            for chunk in &chunks {
                if !collected.push(Bytes::from(chunk.clone()), limit) {
                    accepted = false;
                    break;
                }
            }
            prop_assert_eq!(accepted, total <= limit);
            if accepted {
                prop_assert_eq!(collected.bytes().to_vec(), chunks.concat());
            } else {
                prop_assert!(collected.len <= limit);
            }
        }

        #[test]
        fn within_limit_never_overflows(len in any::<usize>(), more in any::<usize>(), limit in any::<usize>()) {
            let expected = (len as u128 + more as u128 <= limit as u128).then(|| len + more);
            prop_assert_eq!(within_limit(len, more, limit), expected);
        }
    }
}
