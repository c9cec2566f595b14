use std::time::Duration;

use brownout_chaos::{ChaosConfig, ConfigError, ErrorConfig, FaultConfig, LatencyConfig, RuleConfig, SampleConfig};
use tower_layer::Layer;

use super::Chaos;
use crate::handle::ChaosHandle;

/// Applies [`Chaos`] to a service: faults become [`InjectedError`](super::InjectedError)s.
///
/// Holds only the [`ChaosHandle`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct ChaosLayer {
    handle: ChaosHandle,
}

impl ChaosLayer {
    /// A layer over an existing handle.
    pub fn new(handle: ChaosHandle) -> Self {
        Self { handle }
    }

    /// One rule: delay `rate` of the requests by `delay`.
    pub fn latency(delay: Duration, rate: f64) -> Result<Self, ConfigError> {
        Self::single("latency", rate, FaultConfig::Latency(LatencyConfig::Fixed(delay)))
    }

    /// One rule: fail `rate` of the requests with an [`InjectedError`](super::InjectedError).
    pub fn error(rate: f64) -> Result<Self, ConfigError> {
        Self::single("error", rate, FaultConfig::Error(ErrorConfig::default()))
    }

    fn single(name: &str, rate: f64, fault: FaultConfig) -> Result<Self, ConfigError> {
        ChaosHandle::from_config(single_rule(name, rate, fault)).map(Self::new)
    }

    /// The handle every service made by this layer shares.
    pub fn handle(&self) -> &ChaosHandle {
        &self.handle
    }
}

/// A config with one rule at a random `rate`.
pub(crate) fn single_rule(name: &str, rate: f64, fault: FaultConfig) -> ChaosConfig {
    let rule = RuleConfig::new(name, fault, SampleConfig::Random { rate });
    ChaosConfig::default().experiment(name.to_owned()).rules(vec![rule])
}

impl<S> Layer<S> for ChaosLayer {
    type Service = Chaos<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Chaos::new(inner, &self.handle)
    }
}
