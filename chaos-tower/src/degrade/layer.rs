//! [`LatencyWindowLayer`]: records every call of a service into a [`LatencyWindow`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

use super::LatencyWindow;

/// Decides whether a finished call was ok. Any `Fn(&T) -> bool` is one.
pub trait CallOk<T: ?Sized> {
    /// Was this output a success?
    fn is_ok(&self, output: &T) -> bool;
}

impl<T: ?Sized, F: Fn(&T) -> bool> CallOk<T> for F {
    #[inline]
    fn is_ok(&self, output: &T) -> bool {
        self(output)
    }
}

/// The default for HTTP clients: an `Err`, a `5xx` and a `429 Too Many Requests` are not ok; anything else is.
/// Faults injected by Brownout's chaos layers count like real ones: a trigger is meant to fire under them.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct HttpOk;

impl<B, E> CallOk<Result<http::Response<B>, E>> for HttpOk {
    #[inline]
    fn is_ok(&self, output: &Result<http::Response<B>, E>) -> bool {
        match output {
            Ok(r) => !(r.status().is_server_error() || r.status() == http::StatusCode::TOO_MANY_REQUESTS),
            Err(_) => false,
        }
    }
}

/// For any service: `Ok` is ok, `Err` is not.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct ResultOk;

impl<T, E> CallOk<Result<T, E>> for ResultOk {
    #[inline]
    fn is_ok(&self, output: &Result<T, E>) -> bool {
        output.is_ok()
    }
}

/// Records each call of the inner service (its latency on tokio's clock, from `call` to the response, and
/// whether it was ok) into a shared [`LatencyWindow`]: put it on a dependency's client in one line, and feed
/// the window's [`error_rate_signal`](LatencyWindow::error_rate_signal) or
/// [`p95_seconds_signal`](LatencyWindow::p95_seconds_signal) to a [`TriggerTask`](super::TriggerTask).
///
/// The classifier defaults to [`HttpOk`] (an error, a 5xx or a 429 is not ok); [`ResultOk`] or any
/// `Fn(&Result<Response, Error>) -> bool` for other services, through [`classify`](Self::classify). Requests,
/// responses and errors pass through unchanged. A call whose future is dropped before it finishes is not
/// recorded: put this layer outside a timeout, so a timeout counts as an error with its full latency.
#[derive(Clone)]
pub struct LatencyWindowLayer<C = HttpOk> {
    window: LatencyWindow,
    classifier: C,
}

impl<C> fmt::Debug for LatencyWindowLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyWindowLayer").field("window", &self.window).finish_non_exhaustive()
    }
}

impl LatencyWindowLayer {
    /// A layer that records into `window` (shared by every service made from it), classifying with [`HttpOk`].
    pub fn new(window: LatencyWindow) -> Self {
        Self { window, classifier: HttpOk }
    }
}

impl<C> LatencyWindowLayer<C> {
    /// Chooses what counts as ok.
    pub fn classify<D>(self, classifier: D) -> LatencyWindowLayer<D> {
        LatencyWindowLayer { window: self.window, classifier }
    }

    /// The shared window.
    pub fn window(&self) -> &LatencyWindow {
        &self.window
    }
}

impl<S, C: Clone> Layer<S> for LatencyWindowLayer<C> {
    type Service = LatencyWindowService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        LatencyWindowService { inner, window: self.window.clone(), classifier: self.classifier.clone() }
    }
}

/// The service of [`LatencyWindowLayer`].
#[derive(Clone)]
pub struct LatencyWindowService<S, C = HttpOk> {
    inner: S,
    window: LatencyWindow,
    classifier: C,
}

impl<S, C> fmt::Debug for LatencyWindowService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyWindowService").field("window", &self.window).finish_non_exhaustive()
    }
}

impl<S, C> LatencyWindowService<S, C> {
    inner_service_accessors!();

    /// The shared window.
    pub fn window(&self) -> &LatencyWindow {
        &self.window
    }
}

impl<S, C, Req> Service<Req> for LatencyWindowService<S, C>
where
    S: Service<Req>,
    C: CallOk<Result<S::Response, S::Error>> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let started = self.window.now();
        ResponseFuture {
            inner: self.inner.call(req),
            window: self.window.clone(),
            classifier: self.classifier.clone(),
            started,
        }
    }
}

pin_project! {
    /// Response future of [`LatencyWindowService`]: records the call when it finishes.
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: F,
        window: LatencyWindow,
        classifier: C,
        started: Instant,
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").field("started", &self.started).finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: CallOk<Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        let now = this.window.now();
        this.window.record_at(now, now.saturating_duration_since(*this.started), this.classifier.is_ok(&output));
        Poll::Ready(output)
    }
}
