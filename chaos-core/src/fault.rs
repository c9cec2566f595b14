//! Compiled faults: what a fired rule does to a request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::config::GrpcCode;

/// The kinds of fault, as they appear in the `kind` label of `chaos_faults_injected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// A delay before the request proceeds.
    Latency,
    /// An error answer.
    Error,
    /// A 429 answer.
    RateLimit,
    /// No answer until the bound.
    Hang,
    /// An immediate failure, as a dropped connection.
    Reset,
    /// A slow response body.
    Throttle,
    /// A cut response body.
    Truncate,
    /// CPU burned on the request's thread.
    CpuBurn,
    /// A fault asked for by the caller through `x-chaos-*` headers.
    Header,
}

impl FaultKind {
    /// The snake_case name used in configs, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Latency => "latency",
            FaultKind::Error => "error",
            FaultKind::RateLimit => "rate_limit",
            FaultKind::Hang => "hang",
            FaultKind::Reset => "reset",
            FaultKind::Throttle => "throttle",
            FaultKind::Truncate => "truncate",
            FaultKind::CpuBurn => "cpu_burn",
            FaultKind::Header => "header",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delay distribution, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Latency {
    /// Always the same delay.
    Fixed(Duration),
    /// Uniform in `[min, max]`.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// `base ± jitter`, uniform, never below zero.
    Jitter {
        /// Centre.
        base: Duration,
        /// Largest deviation.
        jitter: Duration,
    },
    /// `exp(mu + sigma·Z)` seconds, capped.
    LogNormal {
        /// Log of the median, in seconds.
        mu: f64,
        /// Shape.
        sigma: f64,
        /// Cap.
        max: Duration,
    },
    /// `scale / U^(1/shape)`, capped.
    Pareto {
        /// Minimum, in seconds.
        scale: f64,
        /// Tail index.
        shape: f64,
        /// Cap.
        max: Duration,
    },
}

impl Latency {
    /// Draws one delay from two independent uniforms in [0, 1).
    pub fn sample(&self, u1: f64, u2: f64) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => min + (max - min).mul_f64(u1),
            Latency::Jitter { base, jitter } => {
                let offset = (2.0 * u1 - 1.0) * jitter.as_secs_f64();
                Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.0))
            }
            Latency::LogNormal { mu, sigma, max } => {
                // Box–Muller; 1 - u1 keeps the logarithm finite.
                let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                capped((mu + sigma * z).exp(), max)
            }
            Latency::Pareto { scale, shape, max } => capped(scale / (1.0 - u1).powf(1.0 / shape), max),
        }
    }
}

fn capped(seconds: f64, max: Duration) -> Duration {
    if seconds.is_finite() && seconds < max.as_secs_f64() { Duration::from_secs_f64(seconds.max(0.0)) } else { max }
}

/// What happens to a request before it proceeds: the delay slot of an [`Injection`](crate::Injection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "what the fault model hands an adapter: an adapter that does not handle a new delay must not compile"
)]
pub enum Delay {
    /// The request waits; its thread is free meanwhile.
    Sleep(Duration),
    /// The request's own thread burns this much CPU (a noisy neighbour on the request path).
    BurnCpu(Duration),
}

impl Delay {
    /// How long: the sleep, or the CPU time to burn.
    pub fn duration(&self) -> Duration {
        match *self {
            Delay::Sleep(d) | Delay::BurnCpu(d) => d,
        }
    }
}

/// The longest CPU burn one request may be given.
pub const MAX_CPU_BURN: Duration = Duration::from_secs(1);

/// An error answer, prepared at load: status or gRPC code, message, body and headers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ErrorFault {
    /// HTTP status of the answer (500 when the config gave none; 200 for gRPC).
    pub status: StatusCode,
    /// gRPC code, for a trailers-only gRPC answer.
    pub grpc: Option<GrpcCode>,
    /// Message of the typed error and `grpc-message`.
    pub message: Arc<str>,
    /// Response body.
    pub body: Bytes,
    /// Extra response headers.
    pub headers: HeaderMap,
}

/// A 429 answer whose headers agree: `Retry-After` = `x-ratelimit-reset`, nothing remaining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Seconds the caller should wait (≥ 1).
    pub retry_after_secs: u64,
    /// The advertised limit.
    pub limit: u64,
}

/// What a request gets instead of the service's answer.
#[derive(Debug, Clone)]
#[allow(
    clippy::exhaustive_enums,
    reason = "what the fault model hands an adapter: an adapter that does not handle a new outcome must not compile"
)]
pub enum Outcome {
    /// An error answer.
    Error(Arc<ErrorFault>),
    /// A 429.
    RateLimit(RateLimit),
    /// No answer for up to `max`.
    Hang {
        /// The bound after which the hang gives up.
        max: Duration,
    },
    /// An immediate failure, as a dropped connection.
    Reset,
}

impl Outcome {
    /// The kind, for metrics and errors.
    pub fn kind(&self) -> FaultKind {
        match self {
            Outcome::Error(_) => FaultKind::Error,
            Outcome::RateLimit(_) => FaultKind::RateLimit,
            Outcome::Hang { .. } => FaultKind::Hang,
            Outcome::Reset => FaultKind::Reset,
        }
    }
}

/// What happens to the response body (HTTP only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::exhaustive_enums,
    reason = "what the fault model hands an adapter: an adapter that does not handle a new body fault must not compile"
)]
pub enum BodyFault {
    /// Deliver at most this many bytes per second.
    Throttle {
        /// The rate.
        bytes_per_sec: u64,
    },
    /// End the body after this many bytes.
    Truncate {
        /// Bytes delivered.
        after_bytes: u64,
    },
}

/// A compiled fault: which of the three slots of an injection it fills.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    Delay(Latency),
    Burn(Duration),
    Outcome(Outcome),
    Body(BodyFault),
    /// The pseudo-rule that accounts for header faults; never evaluated as a rule.
    Header,
}

impl Fault {
    pub(crate) fn kind(&self) -> FaultKind {
        match self {
            Fault::Delay(_) => FaultKind::Latency,
            Fault::Burn(_) => FaultKind::CpuBurn,
            Fault::Outcome(o) => o.kind(),
            Fault::Body(BodyFault::Throttle { .. }) => FaultKind::Throttle,
            Fault::Body(BodyFault::Truncate { .. }) => FaultKind::Truncate,
            Fault::Header => FaultKind::Header,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_band() {
        let l = Latency::Jitter { base: Duration::from_millis(100), jitter: Duration::from_millis(20) };
        for i in 0..1000 {
            let d = l.sample(i as f64 / 1000.0, 0.3);
            assert!(d >= Duration::from_millis(80) && d <= Duration::from_millis(120), "{d:?}");
        }
    }

    #[test]
    fn heavy_tails_respect_the_cap() {
        let max = Duration::from_secs(2);
        let p = Latency::Pareto { scale: 0.01, shape: 0.5, max };
        assert_eq!(p.sample(0.999_999, 0.0), max);
        let ln = Latency::LogNormal { mu: (0.1f64).ln(), sigma: 3.0, max };
        assert!(ln.sample(0.999_999, 0.0) <= max);
    }

    #[test]
    fn lognormal_median_is_the_median() {
        let ln = Latency::LogNormal { mu: (0.1f64).ln(), sigma: 0.8, max: Duration::from_secs(10) };
        let mut draws: Vec<f64> = (0..2000)
            .map(|i| ln.sample((i as f64 + 0.5) / 2000.0, ((i * 7919) % 2000) as f64 / 2000.0).as_secs_f64())
            .collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[1000];
        assert!((0.08..0.125).contains(&median), "median {median}");
    }
}
