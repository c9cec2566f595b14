//! Load shedding driven by a degrade flag: while the flag is on, non-critical routes get `503` with
//! `Retry-After`; critical routes always pass.
//!
//! ```
//! # async fn quote() -> &'static str { "42" }
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use chaos_tower::ShedLayer;
//! use degrade_flags::{Flags, flags::FlagKind};
//!
//! let flags = Flags::new();
//! flags.define("api.shed_non_critical", FlagKind::Bool, "false")?;
//! let shed = ShedLayer::new(flags.bool("api.shed_non_critical")?)
//!     .critical("/api/orders/**")
//!     .critical("/health")
//!     .retry_after(Duration::from_secs(5));
//! let app: Router = Router::new().route("/api/quotes", get(quote)).layer(shed);
//! # Ok::<(), degrade_flags::FlagError>(())
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::header::{HeaderName, HeaderValue};
use ::http::{Request, Response};
use bytes::Bytes;
use chaos_core::RouteGlob;
use degrade_flags::BoolFlag;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::refusal::unavailable;

/// `x-degrade-shed: <flag>` marks a shed response, so dashboards can tell it from a real 503.
pub static SHED_HEADER: HeaderName = HeaderName::from_static("x-degrade-shed");

/// Sheds non-critical requests while a flag is on. Holds only configuration; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShedLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    flag: BoolFlag,
    critical: Vec<RouteGlob>,
    retry_after: Duration,
    header: HeaderValue,
    shed: metrics::Counter,
}

impl ShedLayer {
    /// Sheds every route while `flag` is on; add exceptions with [`critical`](Self::critical).
    pub fn new(flag: BoolFlag) -> Self {
        let header = HeaderValue::from_str(flag.name()).unwrap_or(HeaderValue::from_static("flag"));
        metrics::describe_counter!("degrade_shed_total", "Requests shed while a shedding flag was on.");
        let shed = metrics::counter!("degrade_shed_total", "flag" => flag.name().to_owned());
        Self {
            config: Arc::new(Config { flag, critical: Vec::new(), retry_after: Duration::from_secs(1), header, shed }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Requests whose path matches `route` (a glob, as in chaos rules) are never shed.
    pub fn critical(mut self, route: &str) -> Self {
        self.config_mut().critical.push(RouteGlob::new(route));
        self
    }

    /// The `Retry-After` of shed responses, in whole seconds rounded up (default 1 s).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.config_mut().retry_after = after;
        self
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed { inner, config: self.config.clone() }
    }
}

/// The service of [`ShedLayer`].
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Shed<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Shed<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: From<Bytes>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, Response<ResB>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let config = &self.config;
        if !config.flag.get() || config.critical.iter().any(|g| g.matches(req.uri().path())) {
            return ResponseFuture { state: State::Passed { inner: self.inner.call(req) } };
        }
        config.shed.increment(1);
        let secs = config.retry_after.as_secs() + u64::from(config.retry_after.subsec_nanos() > 0);
        let response = unavailable(b"shedding load: retry later\n", secs, &SHED_HEADER, config.header.clone());
        ResponseFuture { state: State::Shed { response: Some(response) } }
    }
}

pin_project! {
    /// Response future of [`Shed`]: the inner service's, or the shed response.
    pub struct ResponseFuture<F, T> {
        #[pin]
        state: State<F, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        Passed { #[pin] inner: F },
        Shed { response: Option<T> },
    }
}

impl<F, T> std::fmt::Debug for ResponseFuture<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shed = matches!(self.state, State::Shed { .. });
        f.debug_struct("ResponseFuture").field("shed", &shed).finish()
    }
}

impl<F, T, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Passed { inner } => inner.poll(cx),
            StateProj::Shed { response } => {
                Poll::Ready(Ok(response.take().expect("shed response future polled after completion")))
            }
        }
    }
}
