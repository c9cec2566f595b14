use std::marker::PhantomData;
use std::time::Duration;

use brownout_chaos::{ConfigError, ErrorConfig, FaultConfig, LatencyConfig, RateLimitConfig};
use tower_layer::Layer;

use super::HttpChaos;
use super::mode::{SameBody, WrapBody};
use crate::chaos::single_rule;
use crate::handle::ChaosHandle;

/// Applies [`HttpChaos`] to an HTTP service: faults become responses marked `x-chaos-injected`.
///
/// Holds only the [`ChaosHandle`]; cheap to clone. `M` chooses the response body type: by default
/// [`ChaosBody`](super::ChaosBody) around the inner body; [`same_body`](Self::same_body) keeps the inner
/// body type when it can hold any body (axum's `Body`, `BoxBody`): the cheaper choice under axum.
///
/// ```
/// # use brownout_tower::{ChaosHandle, HttpChaosLayer};
/// # fn stack(handle: ChaosHandle) -> axum::Router {
/// axum::Router::new()
///     .route("/quote", axum::routing::get(|| async { "101.25" }))
///     .layer(HttpChaosLayer::new(handle).same_body())
/// # }
/// ```
#[derive(Debug)]
pub struct HttpChaosLayer<M = WrapBody> {
    handle: ChaosHandle,
    mode: PhantomData<fn() -> M>,
}

impl<M> Clone for HttpChaosLayer<M> {
    fn clone(&self) -> Self {
        Self { handle: self.handle.clone(), mode: PhantomData }
    }
}

impl HttpChaosLayer {
    /// A layer over an existing handle.
    pub fn new(handle: ChaosHandle) -> Self {
        Self { handle, mode: PhantomData }
    }

    /// The same layer, keeping the inner service's body type ([`SameBody`]): responses pass through
    /// untouched; injected answers and throttled or cut bodies are boxed into it.
    pub fn same_body(self) -> HttpChaosLayer<SameBody> {
        HttpChaosLayer { handle: self.handle, mode: PhantomData }
    }

    /// One rule: delay `rate` of the requests by `delay`.
    pub fn latency(delay: Duration, rate: f64) -> Result<Self, ConfigError> {
        Self::single("latency", rate, FaultConfig::Latency(LatencyConfig::Fixed(delay)))
    }

    /// One rule: answer `rate` of the requests with `429 Too Many Requests`, `Retry-After: retry_after`.
    pub fn too_many_requests(retry_after: Duration, rate: f64) -> Result<Self, ConfigError> {
        let fault = FaultConfig::RateLimit(RateLimitConfig::default().retry_after(retry_after));
        Self::single("rate-limit", rate, fault)
    }

    /// One rule: answer `rate` of the requests with `status`.
    pub fn error(status: u16, rate: f64) -> Result<Self, ConfigError> {
        let fault = FaultConfig::Error(ErrorConfig::default().status(status));
        Self::single("error", rate, fault)
    }

    fn single(name: &str, rate: f64, fault: FaultConfig) -> Result<Self, ConfigError> {
        ChaosHandle::from_config(single_rule(name, rate, fault)).map(Self::new)
    }
}

impl<M> HttpChaosLayer<M> {
    /// The handle every service made by this layer shares.
    pub fn handle(&self) -> &ChaosHandle {
        &self.handle
    }
}

impl<S, M> Layer<S> for HttpChaosLayer<M> {
    type Service = HttpChaos<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpChaos::with_mode(inner, &self.handle)
    }
}
