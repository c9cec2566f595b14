//! Load shedding driven by a degrade flag: non-critical routes get `503` with `Retry-After`; critical routes
//! always pass. Two modes:
//!
//! - [`ShedLayer::new`] over a bool flag: every non-critical request is shed while the flag is on;
//! - [`ShedLayer::percent`] over a number flag (0–100): exactly that share of the non-critical requests is
//!   shed. Exact as chaos-core's exact sampler: over any run of `n` non-critical requests while the value
//!   stays `p`, the number shed is within ±1 of `n·p/100` (a shared counter, one relaxed atomic add per
//!   non-critical request; no lock, no randomness, whatever the thread).
//!
//! Off is one atomic load and a branch: the flag is read before the route is matched, and a flag at
//! `false` or `0` sheds nothing. Shed responses are counted in `degrade_shed_total{flag}`.
//!
//! ```
//! # async fn quote() -> &'static str { "42" }
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use brownout_tower::ShedLayer;
//! use brownout_degrade::{Flags, flags::FlagKind};
//!
//! let flags = Flags::new();
//! flags.define("api.shed_non_critical", FlagKind::Bool, "false")?;
//! let shed = ShedLayer::new(flags.bool("api.shed_non_critical")?)
//!     .critical("/api/orders/**")
//!     .critical("/health")
//!     .retry_after(Duration::from_secs(5));
//! let app: Router = Router::new().route("/api/quotes", get(quote)).layer(shed);
//! # Ok::<(), brownout_degrade::FlagError>(())
//! ```
//!
//! A share of the traffic, from a number flag:
//!
//! ```
//! # async fn report() -> &'static str { "csv" }
//! use axum::{Router, routing::get};
//! use brownout_tower::ShedLayer;
//! use brownout_degrade::{Flags, flags::FlagKind};
//!
//! let flags = Flags::new();
//! flags.define("api.shed_percent", FlagKind::Number { min: 0.0, max: 100.0 }, "0")?;
//! let shed = ShedLayer::percent(flags.number("api.shed_percent")?).critical("/quote/**");
//! let app: Router = Router::new().route("/reports/{name}", get(report)).layer(shed);
//! flags.set("api.shed_percent", "25")?; // one non-critical request in four gets a 503 from now on
//! # Ok::<(), brownout_degrade::FlagError>(())
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::header::{HeaderName, HeaderValue};
use ::http::{Request, Response};
use brownout_chaos::{RouteGlob, Sampler};
use brownout_degrade::{BoolFlag, NumberFlag};
use bytes::Bytes;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::refusal::unavailable;

/// `x-degrade-shed: <flag>` marks a shed response, so dashboards can tell it from a real 503.
pub static SHED_HEADER: HeaderName = HeaderName::from_static("x-degrade-shed");

/// Sheds non-critical requests while a flag is on, or a share of them set by a number flag. Holds only
/// configuration (and, in percent mode, the count of non-critical requests that every clone shares); cheap
/// to clone.
#[derive(Debug, Clone)]
pub struct ShedLayer {
    config: Arc<Config>,
}

/// What decides to shed.
#[derive(Debug, Clone)]
enum Trigger {
    /// Every non-critical request while the flag is on.
    Flag(BoolFlag),
    /// This percentage of the non-critical requests, exactly; `seen` counts the non-critical requests
    /// considered while the percentage was strictly between 0 and 100 (shared by every clone).
    Percent { flag: NumberFlag, seen: Arc<AtomicU64> },
}

/// 2^53, the fixed-point scale of chaos-core's exact sampler ([`Sampler::exact_fires`]).
const EXACT_SCALE: f64 = 9_007_199_254_740_992.0;

#[derive(Debug, Clone)]
struct Config {
    trigger: Trigger,
    critical: Vec<RouteGlob>,
    retry_after: Duration,
    header: HeaderValue,
    shed: metrics::Counter,
    /// Requests shed by this layer and every service and clone made from it.
    shed_total: Arc<AtomicU64>,
}

impl ShedLayer {
    /// Sheds every route while `flag` is on; add exceptions with [`critical`](Self::critical).
    pub fn new(flag: BoolFlag) -> Self {
        let name = flag.name().to_owned();
        Self::with_trigger(Trigger::Flag(flag), &name)
    }

    /// Sheds exactly `flag` percent of the non-critical requests (the flag's value, read on every request,
    /// clamped to 0–100; 0 sheds nothing, 100 everything): within ±1 of `n·p/100` over any run of `n`
    /// non-critical requests at a constant `p`. Add exceptions with [`critical`](Self::critical); critical
    /// requests never count toward the share.
    pub fn percent(flag: NumberFlag) -> Self {
        let name = flag.name().to_owned();
        Self::with_trigger(Trigger::Percent { flag, seen: Arc::new(AtomicU64::new(0)) }, &name)
    }

    fn with_trigger(trigger: Trigger, name: &str) -> Self {
        let header = HeaderValue::from_str(name).unwrap_or(HeaderValue::from_static("flag"));
        metrics::describe_counter!("degrade_shed_total", "Non-critical requests shed by a shedding flag.");
        let shed = metrics::counter!("degrade_shed_total", "flag" => name.to_owned());
        Self {
            config: Arc::new(Config {
                trigger,
                critical: Vec::new(),
                retry_after: Duration::from_secs(1),
                header,
                shed,
                shed_total: Arc::new(AtomicU64::new(0)),
            }),
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

impl ShedLayer {
    /// Requests shed so far by this layer's services (every clone counts into the same total): the in-process
    /// figure of `degrade_shed_total`, for a test or a runner that checks shedding without scraping metrics
    /// or reading each response's `x-degrade-shed`.
    pub fn shed_total(&self) -> u64 {
        self.config.shed_total.load(Ordering::Relaxed)
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
    inner_service_accessors!();
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
        if !config.sheds(req.uri().path()) {
            return ResponseFuture { state: State::Passed { inner: self.inner.call(req) } };
        }
        config.shed.increment(1);
        config.shed_total.fetch_add(1, Ordering::Relaxed);
        config.trace(req.uri().path());
        let secs = config.retry_after.as_secs() + u64::from(config.retry_after.subsec_nanos() > 0);
        let response = unavailable(b"shedding load: retry later\n", secs, &SHED_HEADER, config.header.clone());
        ResponseFuture { state: State::Shed { response: Some(response) } }
    }
}

impl Config {
    /// The `degrade.shed` span event for a request shed.
    fn trace(&self, path: &str) {
        match &self.trigger {
            Trigger::Flag(flag) => crate::trace::shed(flag.name(), 100.0, path),
            Trigger::Percent { flag, .. } => crate::trace::shed(flag.name(), flag.get(), path),
        }
    }

    fn is_critical(&self, path: &str) -> bool {
        self.critical.iter().any(|g| g.matches(path))
    }

    /// Decides once for a request to `path`: the flag first (off is one load), then the critical routes,
    /// then, in percent mode, the exact share.
    #[inline]
    fn sheds(&self, path: &str) -> bool {
        match &self.trigger {
            Trigger::Flag(flag) => flag.get() && !self.is_critical(path),
            Trigger::Percent { flag, seen } => {
                let percent = flag.get();
                // NaN sheds nothing (a number flag cannot hold one anyway).
                if percent.is_nan() || percent <= 0.0 || self.is_critical(path) {
                    false
                } else if percent >= 100.0 {
                    true
                } else {
                    let rate_fp = (percent / 100.0 * EXACT_SCALE) as u64;
                    Sampler::exact_fires(rate_fp, seen.fetch_add(1, Ordering::Relaxed))
                }
            }
        }
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
