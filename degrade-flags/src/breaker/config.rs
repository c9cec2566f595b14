//! The breaker's configuration: what it judges, over which window, and how long it stays open.

use std::time::Duration;

use brownout_foundation::duration;
use serde::{Deserialize, Serialize};

/// The configuration of a [`CircuitBreaker`](super::CircuitBreaker).
///
/// Deserializes from any serde format (unknown fields are refused; durations are strings like `30s`), and is
/// checked by [`BreakerConfig::validate`] (which [`CircuitBreaker::new`](super::CircuitBreaker::new) calls).
/// Every field has a default:
///
/// ```
/// use brownout_degrade::breaker::{BreakerConfig, SlidingWindow};
///
/// let config: BreakerConfig = serde_json::from_str(r#"{
///     "failure_rate_threshold": 0.5,
///     "slow_calls": { "duration": "2s", "rate_threshold": 0.8 },
///     "minimum_calls": 20,
///     "window": { "time": { "duration": "60s", "buckets": 60 } },
///     "open_duration": "30s",
///     "backoff": { "multiplier": 2.0, "max": "5m" },
///     "half_open_probes": 3
/// }"#).unwrap();
/// config.validate().unwrap();
/// assert!(matches!(config.window, SlidingWindow::Time { buckets: 60, .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Open when the share of failed calls in the window reaches this (in `(0, 1]`). Default 0.5.
    pub failure_rate_threshold: f64,
    /// Judge slow calls too; off when absent (the default).
    pub slow_calls: Option<SlowCalls>,
    /// Judge the window only once it holds at least this many calls (at least 1). Default 10.
    ///
    /// With a count window it must not exceed the window's `calls`: a window that never holds
    /// `minimum_calls` calls is never judged, so the breaker could never open, and
    /// [`validate`](BreakerConfig::validate) refuses it. A time window holds whatever the traffic brings, so
    /// any minimum is accepted there: size it to the calls a window of that duration sees at the lowest
    /// traffic you want the breaker to act on.
    pub minimum_calls: u32,
    /// The sliding window. Default: the last 100 calls, in 10 buckets.
    pub window: SlidingWindow,
    /// How long the breaker stays open before it lets probes through. Default `30s`.
    #[serde(with = "duration")]
    pub open_duration: Duration,
    /// Lengthen the open duration each time a probe fails; off when absent (the default).
    pub backoff: Option<Backoff>,
    /// The number of probe calls admitted in half-open (at least 1). All must succeed to close; one failure
    /// reopens. Default 3.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_rate_threshold: 0.5,
            slow_calls: None,
            minimum_calls: 10,
            window: SlidingWindow::default(),
            open_duration: Duration::from_secs(30),
            backoff: None,
            half_open_probes: 3,
        }
    }
}

brownout_foundation::setters! {
    impl BreakerConfig {
        failure_rate_threshold: f64,
        slow_calls: Some(SlowCalls),
        minimum_calls: u32,
        window: SlidingWindow,
        open_duration: Duration,
        backoff: Some(Backoff),
        half_open_probes: u32,
    }
}

/// Slow-call judging: a call whose elapsed time reaches `duration` is slow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SlowCalls {
    /// A call taking at least this long is slow.
    #[serde(with = "duration")]
    pub duration: Duration,
    /// Open when the share of slow calls (failed or not) in the window reaches this (in `(0, 1]`).
    pub rate_threshold: f64,
}

impl SlowCalls {
    /// A call taking at least `duration` is slow; open when `rate_threshold` of the window's calls are.
    pub fn new(duration: Duration, rate_threshold: f64) -> Self {
        Self { duration, rate_threshold }
    }
}

/// The sliding window over which the rates are judged.
///
/// Both kinds keep their calls in buckets (aggregates of calls, failures and slow calls), so a window costs
/// memory in buckets, not in calls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SlidingWindow {
    /// The last `calls` calls, in `buckets` buckets of `calls / buckets` calls each (`buckets` must divide
    /// `calls`). The window holds the `buckets` most recent full buckets plus the calls not yet in a full
    /// bucket, so it judges between `calls` and `calls + calls / buckets - 1` calls once that many were made
    /// (one bucket of calls per thread more under concurrency, see the module docs). With `buckets == calls`
    /// it is exactly the last `calls` calls, at the price of a lock per call.
    Count {
        /// The window's length in calls.
        calls: u32,
        /// How many buckets it is split into.
        buckets: u32,
    },
    /// The calls of the last `duration`, in `buckets` buckets of `duration / buckets` each (at least 1 ms):
    /// at a time `t` the window holds the bucket containing `t` and the `buckets - 1` before it, like
    /// resilience4j's time-based window. Costs one clock read per recorded call.
    Time {
        /// The window's length.
        #[serde(with = "duration")]
        duration: Duration,
        /// How many buckets it is split into.
        buckets: u32,
    },
}

impl Default for SlidingWindow {
    fn default() -> Self {
        SlidingWindow::Count { calls: 100, buckets: 10 }
    }
}

/// Exponential backoff of the open duration: after `k` consecutive failed probes the breaker stays open for
/// `open_duration * multiplier^k`, at most `max`. A close resets `k`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Backoff {
    /// The factor per failed probe (at least 1). Default 2.
    #[serde(default = "two")]
    pub multiplier: f64,
    /// The cap (at least `open_duration`).
    #[serde(with = "duration")]
    pub max: Duration,
}

impl Backoff {
    /// Multiply the open duration by `multiplier` per failed probe, up to `max`.
    pub fn new(multiplier: f64, max: Duration) -> Self {
        Self { multiplier, max }
    }
}

fn two() -> f64 {
    2.0
}

brownout_foundation::field_error! {
    /// A configuration that does not hold: names the field (its dotted path, e.g. `window.count.buckets`) and
    /// says why; `Display` reads `circuit breaker: FIELD: REASON`. The same shape as every config error of the
    /// workspace (`brownout_foundation::field_error!`).
    pub struct ConfigError { subject: "circuit breaker", field_example: "window.count.buckets" }
}

impl ConfigError {
    pub(crate) fn map_capacity() -> Self {
        Self::new("capacity", "a breaker map must hold at least 1 key")
    }
}

/// The most buckets a window may have (memory is per bucket).
pub const MAX_BUCKETS: u32 = 4096;
/// The most probes a half-open breaker may admit.
pub const MAX_HALF_OPEN_PROBES: u32 = 10_000;

fn rate(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::new(field, format!("must be a fraction in (0, 1], got {value}")))
    }
}

impl BreakerConfig {
    /// Checks every field; the first that does not hold is named in the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        rate("failure_rate_threshold", self.failure_rate_threshold)?;
        if let Some(slow) = &self.slow_calls {
            if slow.duration.is_zero() {
                return Err(ConfigError::new("slow_calls.duration", "must be more than zero"));
            }
            rate("slow_calls.rate_threshold", slow.rate_threshold)?;
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::new("minimum_calls", "must be at least 1"));
        }
        match self.window {
            SlidingWindow::Count { calls, buckets } => {
                if calls == 0 {
                    return Err(ConfigError::new("window.count.calls", "must be at least 1"));
                }
                if buckets == 0 || buckets > MAX_BUCKETS {
                    return Err(ConfigError::new(
                        "window.count.buckets",
                        format!("must be in 1..={MAX_BUCKETS}, got {buckets}"),
                    ));
                }
                if calls % buckets != 0 {
                    return Err(ConfigError::new(
                        "window.count.buckets",
                        format!("must divide `calls` ({calls}), got {buckets}"),
                    ));
                }
                if self.minimum_calls > calls {
                    return Err(ConfigError::new(
                        "minimum_calls",
                        format!(
                            "must be at most the count window's `calls` ({calls}), got {}: the window never holds \
                             that many calls, so the breaker would never open",
                            self.minimum_calls
                        ),
                    ));
                }
            }
            SlidingWindow::Time { duration, buckets } => {
                if buckets == 0 || buckets > MAX_BUCKETS {
                    return Err(ConfigError::new(
                        "window.time.buckets",
                        format!("must be in 1..={MAX_BUCKETS}, got {buckets}"),
                    ));
                }
                if duration / buckets < Duration::from_millis(1) {
                    return Err(ConfigError::new(
                        "window.time.duration",
                        format!(
                            "each of the {buckets} buckets must span at least 1ms, got {}",
                            humantime::format_duration(duration)
                        ),
                    ));
                }
            }
        }
        if self.open_duration.is_zero() {
            return Err(ConfigError::new("open_duration", "must be more than zero"));
        }
        if let Some(backoff) = &self.backoff {
            if !(backoff.multiplier.is_finite() && backoff.multiplier >= 1.0) {
                return Err(ConfigError::new(
                    "backoff.multiplier",
                    format!("must be a finite number of at least 1, got {}", backoff.multiplier),
                ));
            }
            if backoff.max < self.open_duration {
                return Err(ConfigError::new("backoff.max", "must be at least `open_duration`"));
            }
        }
        if self.half_open_probes == 0 || self.half_open_probes > MAX_HALF_OPEN_PROBES {
            return Err(ConfigError::new(
                "half_open_probes",
                format!("must be in 1..={MAX_HALF_OPEN_PROBES}, got {}", self.half_open_probes),
            ));
        }
        Ok(())
    }

    /// The open duration after `k` consecutive failed probes.
    pub(crate) fn open_duration_after(&self, k: u32) -> Duration {
        match &self.backoff {
            None => self.open_duration,
            Some(b) => {
                let factor = b.multiplier.powi(i32::try_from(k).unwrap_or(i32::MAX));
                let secs = self.open_duration.as_secs_f64() * factor;
                if !secs.is_finite() || secs >= b.max.as_secs_f64() {
                    b.max
                } else {
                    Duration::from_secs_f64(secs).min(b.max)
                }
            }
        }
    }
}
