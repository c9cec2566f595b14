//! Circuit breakers: pure state machines over an injected [`Clock`], no Tower (the layer lives in
//! `chaos-tower`).
//!
//! The [`Clock`] is Brownout's one clock (`brownout_foundation::clock`), shared with the chaos rules, the SLO
//! guard and the degrade triggers: [`SystemClock`] where no async runtime may exist, `brownout_tower::TokioClock`
//! inside tokio (it follows paused time in tests), [`ManualClock`] to move time by hand, `CoarseClock` (Linux)
//! on hot paths.
//!
//! # The state machine
//!
//! - **Closed**: every call is admitted. Outcomes go into a sliding window ([`SlidingWindow`]: the last N
//!   calls, or the last T seconds, in buckets). Each time a *failure or a slow call* is recorded, the window is
//!   judged: once it holds at least `minimum_calls`, the breaker opens if the failure rate reaches
//!   `failure_rate_threshold` or the slow-call rate reaches `slow_calls.rate_threshold`. (A fast success only
//!   lowers the rates, so it is never judged: that keeps the success path free of locks.)
//! - **Open**: every call is rejected ([`Rejected::retry_after`] says for how long) until `open_duration` has
//!   passed (lengthened by [`Backoff`] after failed probes, up to its cap); the next call then moves it to
//!   half-open.
//! - **Half-open**: at most `half_open_probes` probe calls are admitted (in flight plus succeeded; an
//!   ignored or dropped probe gives its slot back), the rest are rejected. All probes succeeding closes it;
//!   one failed (or slow) probe reopens it, with the backoff exponent one higher.
//!
//! Legal edges: closed → open, open → half-open, half-open → closed, half-open → open; and, from any state,
//! [`CircuitBreaker::force`] or [`CircuitBreaker::reset`] to closed under the chosen [`ForcedState`]. Every
//! transition empties the window; a permit taken before a transition is stale and counts only in the
//! metrics.
//!
//! # Where this breaker differs from Resilience4j
//!
//! | Behaviour | Here | Resilience4j |
//! |---|---|---|
//! | When the window is judged | After a failure or a slow call only: a fast success is never judged, so the failure rate can sit above the threshold (e.g. once `minimum_calls` is reached by a success) until the next failure opens it | After every recorded call |
//! | Half-open | The first failed (or slow) probe reopens at once | Waits for all permitted probes, then compares their failure rate with the threshold |
//! | `metrics_only` | A dry run: the state machine runs (transitions, events, metrics) but every call is admitted | Records metrics and emits events; never transitions |
//! | [`CircuitBreaker::reset`] | Back to closed, keeping a forced state; a breaker already closed announces nothing | Back to closed, leaving any forced state |
//! | Slow-call threshold | A call lasting exactly `slow_calls.duration` is slow (`>=`) | Slow only above the threshold |
//!
//! # Cost and concurrency
//!
//! The closed path is one atomic load to admit and, for a fast success, one relaxed `fetch_add` on a counter
//! in a cache line of the calling thread's own *stripe* (threads are spread over
//! `available_parallelism`-many stripes), plus one load of the state word, which only transitions write. No
//! lock, no allocation, no metric call. The lock is taken:
//! - by a count window, once per `calls / buckets` calls per thread, to seal the thread's full bucket into
//!   the shared ring of buckets;
//! - by a time window, once per bucket time per thread, to start a new bucket; a time window reads the clock
//!   on every recorded call (the cheapest way to attribute calls to buckets without a ticker thread);
//! - on every failure or slow call (to judge), in every non-closed state but open, and on transitions.
//!
//! Under concurrency, each thread fills its own partial bucket: a count window then judges the sealed
//! buckets plus every thread's partial bucket (up to one bucket of calls per thread more than configured),
//! and a call racing a bucket boundary or a transition may land on either side of it. Single-threaded, the
//! window is exact as documented on [`SlidingWindow`].
//!
//! # Observability
//!
//! Metrics (see the `metrics` module's table): `circuit_breaker_state{breaker}`,
//! `circuit_breaker_transitions_total{breaker,from,to}`, `circuit_breaker_calls_total{breaker,outcome}`;
//! call counts are batched per thread and published at bucket boundaries, transitions, snapshots and
//! [`CircuitBreaker::publish_metrics`]. Every transition is a `tracing` event (`warn` when the breaker
//! opens, `info` otherwise) with fields `breaker`, `key`, `from`, `to`; [`CircuitBreaker::with_listener`]
//! hands transitions to code. Per-key breakers: see [`BreakerMap`].

mod circuit;
mod clock;
mod config;
mod map;
mod metrics;
mod outcome;
mod permit;
mod snapshot;
mod state;
mod stripe;
mod window;

pub use self::circuit::{CircuitBreaker, Listener};
#[cfg(target_os = "linux")]
pub use self::clock::CoarseClock;
pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::config::{
    Backoff, BreakerConfig, ConfigError, MAX_BUCKETS, MAX_HALF_OPEN_PROBES, SlidingWindow, SlowCalls,
};
pub use self::map::BreakerMap;
pub use self::outcome::{Classifier, Outcome, ResultClassifier};
pub use self::permit::{OwnedPermit, Permit, Rejected};
pub use self::snapshot::BreakerSnapshot;
pub use self::state::{ForcedState, State, Status, Transition, UnknownForcedState};
