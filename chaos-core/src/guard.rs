//! The SLO guard: disarms all chaos at once when the user-visible error rate or p95 latency stays over a
//! limit for a window — the auto-abort of a GameDay, and a safety net for chaos in staging or production.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::controller::Controller;
use crate::error::ConfigError;

/// The limits of a [`SloGuard`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct SloLimits {
    /// Largest acceptable share of failed requests in a window, in `[0, 1]`.
    pub max_error_rate: f64,
    /// Largest acceptable 95th-percentile latency in a window.
    pub max_p95: Duration,
    /// The length of the (tumbling) windows judged.
    pub window: Duration,
    /// A window with fewer requests is not judged.
    pub min_requests: u32,
}

impl SloLimits {
    /// Trip when a window's error rate exceeds `max_error_rate` or its p95 exceeds `max_p95`, judged on
    /// windows of 10 s holding at least 20 requests (change them with [`window`](Self::window) and
    /// [`min_requests`](Self::min_requests)).
    pub fn new(max_error_rate: f64, max_p95: Duration) -> Self {
        Self { max_error_rate, max_p95, window: Duration::from_secs(10), min_requests: 20 }
    }
}

brownout_foundation::setters! {
    impl SloLimits {
        window: Duration,
        min_requests: u32,
    }
}

/// Why the guard tripped.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Breach {
    /// The window's error rate.
    pub error_rate: f64,
    /// The window's p95 latency (bucketed: within 10% above the true value).
    pub p95: Duration,
    /// Requests in the window.
    pub requests: u32,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error rate {:.2}% and p95 {:?} over {} requests", self.error_rate * 100.0, self.p95, self.requests)
    }
}

/// Latency buckets: 10% apart from 100 µs to about 10 minutes.
const BUCKETS: usize = 164;
const FIRST_BUCKET_NANOS: f64 = 100_000.0;
const GROWTH: f64 = 1.1;

fn bucket_of(latency: Duration) -> usize {
    let nanos = latency.as_nanos() as f64;
    if nanos <= FIRST_BUCKET_NANOS {
        return 0;
    }
    (((nanos / FIRST_BUCKET_NANOS).ln() / GROWTH.ln()).ceil() as usize).min(BUCKETS - 1)
}

fn bucket_upper(index: usize) -> Duration {
    Duration::from_nanos((FIRST_BUCKET_NANOS * GROWTH.powi(index as i32)) as u64)
}

struct Window {
    started: Instant,
    requests: u32,
    errors: u32,
    latencies: [u32; BUCKETS],
}

impl Window {
    fn new(started: Instant) -> Self {
        Self { started, requests: 0, errors: 0, latencies: [0; BUCKETS] }
    }

    fn p95(&self) -> Duration {
        let rank = (f64::from(self.requests) * 0.95).ceil() as u32;
        let mut seen = 0;
        for (i, n) in self.latencies.iter().enumerate() {
            seen += n;
            if seen >= rank.max(1) {
                return bucket_upper(i);
            }
        }
        bucket_upper(BUCKETS - 1)
    }
}

struct State {
    window: Window,
    breach: Option<Breach>,
}

/// Watches the requests a service answers and throws the kill switch of a [`Controller`] when a window's
/// error rate or p95 is over the limits. Cheap to clone; every clone records into one guard.
///
/// It judges tumbling windows: when a request arrives after the current window ended, that window is judged
/// (if it held at least `min_requests`) and a new one starts. Once tripped it stays tripped, and the breach
/// says why, until [`reset`](Self::reset).
#[derive(Clone)]
pub struct SloGuard {
    limits: SloLimits,
    controller: Controller,
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SloGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SloGuard").field("limits", &self.limits).field("breach", &self.breach()).finish()
    }
}

impl SloGuard {
    /// A guard over `controller`, on `clock`. The limits are checked: a rate in `[0, 1]`, a window and a p95
    /// longer than zero. Give it the clock of the rest of the pipeline: `brownout_tower::TokioClock` inside tokio
    /// (its windows then close with paused time in tests), [`SystemClock`](crate::SystemClock) elsewhere.
    pub fn new(controller: Controller, limits: SloLimits, clock: impl Clock) -> Result<Self, ConfigError> {
        if !(0.0..=1.0).contains(&limits.max_error_rate) {
            return Err(ConfigError::new(
                "max_error_rate",
                format!("must be within [0, 1], got {}", limits.max_error_rate),
            ));
        }
        if limits.window.is_zero() || limits.max_p95.is_zero() {
            return Err(ConfigError::new("window", "the window and the p95 limit must be longer than zero"));
        }
        let now = clock.now();
        Ok(Self {
            limits,
            controller,
            clock: Arc::new(clock),
            state: Arc::new(Mutex::new(State { window: Window::new(now), breach: None })),
        })
    }

    /// Records one answered request: its latency and whether the user saw it succeed.
    pub fn record(&self, latency: Duration, ok: bool) {
        let now = self.clock.now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(state.window.started) >= self.limits.window {
            let judged = std::mem::replace(&mut state.window, Window::new(now));
            if state.breach.is_none()
                && let Some(breach) = self.judge(&judged)
            {
                state.breach = Some(breach);
                drop(state);
                tracing::error!(%breach, "SLO guard tripped: disarming all chaos");
                self.controller.disarm_because("slo guard");
                return self.record(latency, ok);
            }
        }
        let window = &mut state.window;
        window.requests = window.requests.saturating_add(1);
        window.errors += u32::from(!ok);
        window.latencies[bucket_of(latency)] += 1;
    }

    fn judge(&self, window: &Window) -> Option<Breach> {
        if window.requests < self.limits.min_requests.max(1) {
            return None;
        }
        let error_rate = f64::from(window.errors) / f64::from(window.requests);
        let p95 = window.p95();
        (error_rate > self.limits.max_error_rate || p95 > self.limits.max_p95).then_some(Breach {
            error_rate,
            p95,
            requests: window.requests,
        })
    }

    /// The breach that tripped the guard, if it has tripped.
    pub fn breach(&self) -> Option<Breach> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).breach
    }

    /// Clears the breach and starts a new window (the chaos stays disarmed until armed again).
    pub fn reset(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.breach = None;
        state.window = Window::new(self.clock.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChaosConfig, Environment, ManualClock};

    fn armed() -> Controller {
        let c = Controller::builder().environment(Environment::Test).build();
        let yaml = "rules: [{ name: r, sample: { mode: exact, rate: 0.5 }, fault: { reset: {} } }]";
        c.load(ChaosConfig::from_yaml_str(yaml, None).unwrap()).unwrap();
        c
    }

    fn limits() -> SloLimits {
        SloLimits::new(0.1, Duration::from_millis(200)).window(Duration::from_secs(1)).min_requests(10)
    }

    #[test]
    fn an_error_burst_trips_it_at_the_end_of_the_window() {
        let (controller, clock) = (armed(), ManualClock::new());
        let guard = SloGuard::new(controller.clone(), limits(), clock.clone()).unwrap();
        for i in 0..20 {
            guard.record(Duration::from_millis(5), i % 4 != 0); // 25% errors
        }
        assert!(controller.is_armed(), "judged only when the window ends");
        clock.advance(Duration::from_secs(1));
        guard.record(Duration::from_millis(5), true);
        assert!(!controller.is_armed(), "tripped: chaos disarmed");
        let breach = guard.breach().unwrap();
        assert_eq!((breach.requests, breach.error_rate), (20, 0.25));
    }

    #[test]
    fn slow_windows_trip_it_and_healthy_or_small_ones_do_not() {
        let (controller, clock) = (armed(), ManualClock::new());
        let guard = SloGuard::new(controller.clone(), limits(), clock.clone()).unwrap();
        for _ in 0..5 {
            guard.record(Duration::from_secs(2), false); // bad, but under min_requests
        }
        clock.advance(Duration::from_secs(1));
        for _ in 0..50 {
            guard.record(Duration::from_millis(50), true);
        }
        clock.advance(Duration::from_secs(1));
        guard.record(Duration::from_millis(50), true);
        assert!(controller.is_armed() && guard.breach().is_none());
        for i in 0..40 {
            guard.record(Duration::from_millis(if i < 30 { 20 } else { 900 }), true); // p95 in the slow tail
        }
        clock.advance(Duration::from_secs(1));
        guard.record(Duration::from_millis(5), true);
        let breach = guard.breach().expect("tripped on latency");
        assert!(breach.p95 >= Duration::from_millis(900) && breach.p95 < Duration::from_millis(1000), "{breach}");
        assert!(!controller.is_armed());
    }

    #[test]
    fn buckets_bound_the_p95_error() {
        for ms in [1u64, 7, 45, 250, 999, 12_000] {
            let d = Duration::from_millis(ms);
            let upper = bucket_upper(bucket_of(d));
            assert!(upper >= d && upper.as_secs_f64() <= d.as_secs_f64() * 1.1 + 1e-9, "{ms} ms -> {upper:?}");
        }
    }
}
