//! The load harness: drive any Tower service in-process, or a URL over real HTTP, in a closed loop
//! (N clients, each sending its next request when the last one is answered) or an open loop (a target rate,
//! with latency measured from each request's *intended* send time, so a stalled server cannot hide behind
//! coordinated omission); HdrHistogram percentiles; SLO assertions and baseline comparison for CI.
//!
//! ```
//! use std::time::Duration;
//! use brownout_tower::load::{self, LoadPlan, Outcome, Slo};
//! use tower::service_fn;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let svc = service_fn(|n: u64| async move { Ok::<_, std::io::Error>(n * 2) });
//! let plan = LoadPlan::closed(8).requests(1_000);
//! let result = load::run(&plan, svc, |i| i, |r: Result<&u64, &std::io::Error>| Outcome::from_ok(r.is_ok())).await?;
//! assert_eq!((result.requests, result.errors), (1_000, 0));
//! let slo: Slo = "p99<50ms,errors<0.5%".parse()?;
//! assert!(slo.check(&result).passed());
//! # Ok(()) }
//! ```
//!
//! Errors: [`Outcome::http`] counts every status of `400` and above as an error, `429` included (a
//! rate-limited order is an order not placed), and a transport error as an error under the label `transport`.
//! Per-status counts are kept in [`LoadResult::status_counts`] so a `429` storm is told from a `503` one.

mod baseline;
mod engine;
mod http;
mod report;
mod slo;

use std::fmt;
use std::time::Duration;

pub use self::baseline::{Regression, Tolerance, compare};
pub use self::engine::run;
pub use self::http::{HttpTarget, run_url};
pub use self::report::{LatencySummary, LoadResult, PlanSummary};
pub use self::slo::{Clause, ClauseCheck, Metric, Op, Slo, SloCheck, SloParseError, Threshold};

/// The slowest open loop: one request in 1,000 s.
const MIN_RATE: f64 = 1e-3;
/// The fastest open loop: a billion requests per second.
const MAX_RATE: f64 = 1e9;

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LoadMode {
    /// `clients` concurrent clients; each sends its next request as soon as its last one is answered.
    Closed {
        /// Concurrent clients (at least 1).
        clients: u32,
    },
    /// Requests are scheduled at `1 / rate_per_sec` intervals from the start, whatever the answers; latency is
    /// counted from the intended send time. A late send goes out at once (none is skipped).
    Open {
        /// Target request rate, within `[0.001, 1e9]` per second.
        rate_per_sec: f64,
        /// Requests in flight at most; past it the scheduler waits (and the wait counts in the latency).
        max_in_flight: u32,
    },
}

impl LoadMode {
    /// `"closed"` or `"open"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
        }
    }
}

/// What to run: the mode and when to stop. At least one of `requests` and `duration` must be set; the run
/// stops at whichever comes first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoadPlan {
    /// Closed or open loop.
    pub mode: LoadMode,
    /// Measured requests to send (the warm-up's are extra).
    pub requests: Option<u64>,
    /// How long to send measured requests.
    pub duration: Option<Duration>,
    /// Load sent before measuring starts, to warm connections and caches; not recorded.
    pub warmup: Duration,
}

impl LoadPlan {
    /// A closed loop of `clients` clients; set a stop condition with [`requests`](Self::requests) or
    /// [`duration`](Self::duration).
    pub fn closed(clients: u32) -> Self {
        Self { mode: LoadMode::Closed { clients }, requests: None, duration: None, warmup: Duration::ZERO }
    }

    /// An open loop at `rate_per_sec`, at most 10,000 requests in flight.
    pub fn open(rate_per_sec: f64) -> Self {
        Self {
            mode: LoadMode::Open { rate_per_sec, max_in_flight: 10_000 },
            requests: None,
            duration: None,
            warmup: Duration::ZERO,
        }
    }

    /// At most `n` requests in flight in an open loop (default 10,000); a closed loop has one per client.
    pub fn max_in_flight(mut self, n: u32) -> Self {
        if let LoadMode::Open { max_in_flight, .. } = &mut self.mode {
            *max_in_flight = n;
        }
        self
    }

    /// Checks the plan: a stop condition, at least one client, a rate within `[0.001, 1e9]` per second.
    pub fn validate(&self) -> Result<(), LoadError> {
        if self.requests.is_none() && self.duration.is_none() {
            return Err(LoadError::new("the plan needs a stop condition: a request count or a duration"));
        }
        match self.mode {
            LoadMode::Closed { clients: 0 } => Err(LoadError::new("a closed loop needs at least one client")),
            LoadMode::Open { rate_per_sec, .. } if !(MIN_RATE..=MAX_RATE).contains(&rate_per_sec) => {
                Err(LoadError::new(format!(
                    "the rate must be within [{MIN_RATE}, {MAX_RATE}] requests per second, got {rate_per_sec}"
                )))
            }
            LoadMode::Open { max_in_flight: 0, .. } => Err(LoadError::new("max_in_flight must be at least 1")),
            _ => Ok(()),
        }
    }
}

brownout_foundation::setters! {
    impl LoadPlan {
        requests: Some(u64),
        duration: Some(Duration),
        warmup: Duration,
    }
}

/// How one answer counts: success or error, and the label it is counted under in
/// [`LoadResult::status_counts`] (the HTTP status, `ok`, `error` or `transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    ok: bool,
    label: Label,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Label {
    Status(u16),
    Ok,
    Error,
    Transport,
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(s) => write!(f, "{s}"),
            Self::Ok => f.write_str("ok"),
            Self::Error => f.write_str("error"),
            Self::Transport => f.write_str("transport"),
        }
    }
}

impl Outcome {
    /// A success, counted as `ok`.
    pub fn success() -> Self {
        Self { ok: true, label: Label::Ok }
    }

    /// An error, counted as `error`.
    pub fn failure() -> Self {
        Self { ok: false, label: Label::Error }
    }

    /// [`success`](Self::success) when `ok`, else [`failure`](Self::failure).
    pub fn from_ok(ok: bool) -> Self {
        if ok { Self::success() } else { Self::failure() }
    }

    /// A transport error (no answer: connection refused, reset, timeout), counted as `transport`.
    pub fn transport() -> Self {
        Self { ok: false, label: Label::Transport }
    }

    /// An HTTP answer, counted under its status: an error when the status is `400` or above (`429` included).
    pub fn http(status: ::http::StatusCode) -> Self {
        Self { ok: status.as_u16() < 400, label: Label::Status(status.as_u16()) }
    }

    /// Whether it counts as a success.
    pub fn is_ok(&self) -> bool {
        self.ok
    }

    pub(crate) fn label(&self) -> Label {
        self.label
    }
}

/// The classifier for HTTP services: [`Outcome::http`] for an answer, [`Outcome::transport`] for an error.
pub fn classify_http<B, E>(result: Result<&::http::Response<B>, &E>) -> Outcome {
    match result {
        Ok(response) => Outcome::http(response.status()),
        Err(_) => Outcome::transport(),
    }
}

/// A plan that cannot run, or a target that cannot be reached at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    reason: String,
}

impl LoadError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for LoadError {}
