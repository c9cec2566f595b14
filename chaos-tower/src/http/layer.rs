use std::time::Duration;

use chaos_core::{ConfigError, ErrorConfig, FaultConfig, LatencyConfig, RateLimitConfig};
use tower_layer::Layer;

use super::HttpChaos;
use crate::chaos::single_rule;
use crate::handle::ChaosHandle;

/// Applies [`HttpChaos`] to an HTTP service: faults become responses marked `x-chaos-injected`.
///
/// Holds only the [`ChaosHandle`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpChaosLayer {
    handle: ChaosHandle,
}

impl HttpChaosLayer {
    /// A layer over an existing handle.
    pub fn new(handle: ChaosHandle) -> Self {
        Self { handle }
    }

    /// One rule: delay `rate` of the requests by `delay`.
    pub fn latency(delay: Duration, rate: f64) -> Result<Self, ConfigError> {
        Self::single("latency", rate, FaultConfig::Latency(LatencyConfig::Fixed(delay)))
    }

    /// One rule: answer `rate` of the requests with `429 Too Many Requests`, `Retry-After: retry_after`.
    pub fn too_many_requests(rate: f64, retry_after: Duration) -> Result<Self, ConfigError> {
        let fault = FaultConfig::RateLimit(RateLimitConfig { retry_after, limit: 100 });
        Self::single("rate-limit", rate, fault)
    }

    /// One rule: answer `rate` of the requests with `status`.
    pub fn error(status: u16, rate: f64) -> Result<Self, ConfigError> {
        let fault = FaultConfig::Error(ErrorConfig { status: Some(status), ..ErrorConfig::default() });
        Self::single("error", rate, fault)
    }

    fn single(name: &str, rate: f64, fault: FaultConfig) -> Result<Self, ConfigError> {
        ChaosHandle::from_config(single_rule(name, rate, fault)).map(Self::new)
    }

    /// The handle every service made by this layer shares.
    pub fn handle(&self) -> &ChaosHandle {
        &self.handle
    }
}

impl<S> Layer<S> for HttpChaosLayer {
    type Service = HttpChaos<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpChaos::new(inner, &self.handle)
    }
}
