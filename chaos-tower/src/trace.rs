//! Span events for the cold paths: an injected fault, a fallback answer, a shed refusal, a breaker refusal.
//!
//! Each is one `tracing` event at INFO on the request's current span, target [`TARGET`], its message the
//! event's stable name, so `tracing-opentelemetry` turns it into a span event with these attributes (see
//! `docs/tracing.md` for every name):
//!
//! | event | attributes |
//! |---|---|
//! | [`FAULT`] `chaos.fault` | `chaos.rule`, `chaos.fault.kind`, `chaos.experiment`, `error.type`, `http.response.status_code` |
//! | [`FALLBACK`] `degrade.fallback` | `degrade.fallback.name`, `degrade.fallback.reason`, `http.response.status_code` |
//! | [`SHED`] `degrade.shed` | `degrade.flag`, `degrade.shed.percent`, `url.path`, `http.response.status_code` |
//! | [`BREAKER_REJECTED`] `degrade.breaker.rejected` | `degrade.breaker.name`, `degrade.breaker.state`, `error.type` |
//!
//! An attribute without a value (no experiment, a fault that fails nothing) is left out. The events never set
//! the span's status: a fault the fallback absorbed is not an error of the request. They are emitted only
//! where a layer leaves the pass-through path; with no subscriber interested in [`TARGET`] at INFO each costs
//! a load and a branch.

use brownout_chaos::{ActiveFault, BodyFault, Delay, Outcome};
use tracing::Level;

/// The tracing target of every event here: `RUST_LOG=brownout=info` keeps them, `brownout=off` drops them.
pub const TARGET: &str = "brownout";
/// An injected fault fired on the request.
pub const FAULT: &str = "chaos.fault";
/// A fallback answered the request.
pub const FALLBACK: &str = "degrade.fallback";
/// A shedding flag refused the request with `503`.
pub const SHED: &str = "degrade.shed";
/// A circuit breaker refused the call.
pub const BREAKER_REJECTED: &str = "degrade.breaker.rejected";

/// `chaos.fault` for each part of an injection that fired (a delay, an outcome, a body fault).
#[cold]
#[inline(never)]
pub(crate) fn faults(
    delay: Option<&ActiveFault<Delay>>,
    outcome: Option<&ActiveFault<Outcome>>,
    body: Option<&ActiveFault<BodyFault>>,
    http: bool,
) {
    if !tracing::enabled!(target: TARGET, Level::INFO) {
        return;
    }
    if let Some(fault) = delay {
        fault_event(fault, None, None);
    }
    if let Some(fault) = outcome {
        let status = if http { outcome_status(fault.fault()) } else { None };
        let error = status.map_or_else(|| fault.kind().as_str().to_owned(), |s| s.to_string());
        fault_event(fault, Some(&error), status);
    }
    if let Some(fault) = body {
        let error = matches!(fault.fault(), BodyFault::Truncate { .. }).then(|| fault.kind().as_str());
        fault_event(fault, error, None);
    }
}

/// The status an HTTP outcome answers with (`None` for a reset, which answers with no status).
fn outcome_status(outcome: &Outcome) -> Option<u16> {
    match outcome {
        Outcome::Error(e) => Some(e.status.as_u16()),
        Outcome::RateLimit(_) => Some(429),
        Outcome::Hang { .. } => Some(504),
        Outcome::Reset => None,
    }
}

fn fault_event<T>(fault: &ActiveFault<T>, error: Option<&str>, status: Option<u16>) {
    tracing::event!(
        target: TARGET,
        Level::INFO,
        chaos.rule = fault.rule(),
        chaos.fault.kind = fault.kind().as_str(),
        chaos.experiment = fault.experiment(),
        error.r#type = error,
        http.response.status_code = status,
        "chaos.fault"
    );
}

/// `degrade.fallback`: the fallback `name` answered for `reason` (`status` when the primary's answer was one).
#[cfg(feature = "fallback")]
#[cold]
#[inline(never)]
pub(crate) fn fallback(name: &str, reason: &str, status: Option<u16>) {
    tracing::event!(
        target: TARGET,
        Level::INFO,
        degrade.fallback.name = name,
        degrade.fallback.reason = reason,
        http.response.status_code = status,
        "degrade.fallback"
    );
}

/// `degrade.shed`: the flag `flag` at `percent` shed the request for `path` with a `503`.
#[cfg(feature = "shed")]
#[cold]
#[inline(never)]
pub(crate) fn shed(flag: &str, percent: f64, path: &str) {
    tracing::event!(
        target: TARGET,
        Level::INFO,
        degrade.flag = flag,
        degrade.shed.percent = percent,
        url.path = path,
        http.response.status_code = 503_u16,
        "degrade.shed"
    );
}

/// `degrade.breaker.rejected`: the breaker `name` in `state` (`open`, `half_open`, `forced_open`) refused.
#[cfg(feature = "breaker")]
#[cold]
#[inline(never)]
pub(crate) fn breaker_rejected(name: &str, state: &str) {
    tracing::event!(
        target: TARGET,
        Level::INFO,
        degrade.breaker.name = name,
        degrade.breaker.state = state,
        error.r#type = "circuit_breaker_open",
        "degrade.breaker.rejected"
    );
}
