//! The circuit breaker: its hot path (closed: one load to admit; one thread-local add to record a success)
//! and its slow paths (everything else, under one lock).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::clock::{Clock, Ticks, nanos};
use super::config::{BreakerConfig, ConfigError};
use super::metrics::Metrics;
use super::outcome::Outcome;
use super::permit::{Kind, OwnedPermit, Permit, Rejected};
use super::snapshot::BreakerSnapshot;
use super::state::{ForcedState, STATUS_MASK, State, Status, Transition, next_word, status_of};
use super::stripe::{Stripe, stripe_count, thread_index};
use super::window::Window;

/// Called with each transition, after the breaker's lock is released.
pub type Listener = Box<dyn Fn(&Transition) + Send + Sync>;

#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// A circuit breaker: closed, open or half-open over a sliding window of call outcomes, with forced states,
/// an injected [`Clock`] and metrics. Share it with an [`Arc`]; every method takes `&self`.
///
/// ```
/// use std::time::Duration;
/// use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, ManualClock, Outcome, State};
///
/// let config = BreakerConfig::default().minimum_calls(4);
/// let breaker = CircuitBreaker::new("quotes", config, ManualClock::new())?;
/// for outcome in [Outcome::Success, Outcome::Success, Outcome::Failure, Outcome::Failure] {
///     let permit = breaker.try_acquire().expect("closed");
///     permit.record(outcome, Duration::from_millis(3));
/// }
/// assert_eq!(breaker.state(), State::Open); // 2 failures in 4 calls reach the 0.5 threshold
/// assert!(breaker.try_acquire().is_err());
/// # Ok::<(), brownout_degrade::breaker::ConfigError>(())
/// ```
pub struct CircuitBreaker {
    /// The state word (see `state.rs`): read by every call, written on transitions only.
    word: Padded<AtomicU64>,
    /// When the open state ends, clock nanoseconds (written before the word turns open).
    open_until: AtomicU64,
    /// The count window's bucket size in calls, or 0 for a time window.
    bucket_calls: u64,
    /// A call at least this long is slow (`Duration::MAX` when slow calls are not judged).
    slow_after: Duration,
    stripes: Box<[Stripe]>,
    stripe_mask: usize,
    clock: Ticks,
    inner: Mutex<Inner>,
    metrics: Metrics,
    name: Arc<str>,
    key: Option<String>,
    config: BreakerConfig,
    listener: Option<Listener>,
}

#[derive(Debug)]
struct Inner {
    window: Window,
    /// Probes admitted (and not given back) and probes succeeded in this half-open period.
    probes_admitted: u32,
    probes_succeeded: u32,
    /// Consecutive failed probes since the breaker last closed (the backoff exponent).
    failed_probes: u32,
    /// Per stripe, the outcome counts already published to the metrics.
    published: Vec<[u64; 5]>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("status", &self.status())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a slow path decided, to act on after the lock is released.
type Pending = Option<Transition>;

impl CircuitBreaker {
    /// A closed breaker named `name` (its `breaker` metrics label), after validating `config`.
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig, clock: impl Clock) -> Result<Self, ConfigError> {
        let name = name.into();
        Self::build(Arc::clone(&name), None, &name, true, config, Arc::new(clock))
    }

    pub(crate) fn build(
        name: Arc<str>,
        key: Option<String>,
        label: &str,
        state_gauge: bool,
        config: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let stripes = stripe_count();
        Ok(Self {
            word: Padded(AtomicU64::new(0)),
            open_until: AtomicU64::new(0),
            bucket_calls: Window::bucket_calls(&config.window),
            slow_after: config.slow_calls.map_or(Duration::MAX, |s| s.duration),
            stripes: (0..stripes).map(|_| Stripe::default()).collect(),
            stripe_mask: stripes - 1,
            clock: Ticks::new(clock),
            inner: Mutex::new(Inner {
                window: Window::new(&config.window, stripes),
                probes_admitted: 0,
                probes_succeeded: 0,
                failed_probes: 0,
                published: vec![[0; 5]; stripes],
            }),
            metrics: Metrics::new(label, state_gauge),
            name,
            key,
            config,
            listener: None,
        })
    }

    /// Calls `listener` with every transition (including forced ones), after the breaker's lock is released,
    /// on the thread that caused it. For triggers ("flip a flag when the breaker opens") and tests.
    pub fn with_listener(mut self, listener: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Does a call's elapsed time count (`slow_calls` is configured)? When not, the `elapsed` given to a
    /// permit's `record` is not read, and a caller may skip timing its calls.
    #[inline]
    pub fn judges_slow_calls(&self) -> bool {
        self.slow_after != Duration::MAX
    }

    /// The phase of the state machine. The open → half-open step is taken by the first
    /// [`try_acquire`](Self::try_acquire) after the open duration, so this stays [`State::Open`] until a call
    /// comes (see [`BreakerSnapshot::time_until_half_open_seconds`]).
    #[inline]
    pub fn state(&self) -> State {
        status_of(self.word.0.load(Acquire)).state
    }

    /// The forced state in force.
    pub fn forced(&self) -> ForcedState {
        status_of(self.word.0.load(Acquire)).forced
    }

    /// Phase and forced state together.
    pub fn status(&self) -> Status {
        status_of(self.word.0.load(Acquire))
    }

    /// Asks to make a call. Closed: admitted, one atomic load. Open: rejected until the open duration has
    /// passed, then half-open. Half-open: admitted as a probe while fewer than `half_open_probes` are
    /// admitted or have succeeded, else rejected. Forced states override as documented on [`ForcedState`].
    ///
    /// The permit borrows the breaker; record the call's outcome on it. See [`try_acquire_owned`] for a
    /// permit that can move into a `'static` future.
    ///
    /// [`try_acquire_owned`]: Self::try_acquire_owned
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let word = self.word.0.load(Acquire);
        if word & STATUS_MASK == 0 {
            return Ok(Permit::new(self, word, Kind::Window));
        }
        let (word, kind) = self.acquire_slow()?;
        Ok(Permit::new(self, word, kind))
    }

    /// [`try_acquire`](Self::try_acquire) for an `Arc`'d breaker: the permit holds a clone of the `Arc`
    /// (one more atomic add, on a line shared by every thread: prefer [`try_acquire`](Self::try_acquire)
    /// where the borrow fits).
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit, Rejected> {
        let word = self.word.0.load(Acquire);
        if word & STATUS_MASK == 0 {
            return Ok(OwnedPermit::new(Arc::clone(self), word, Kind::Window));
        }
        let (word, kind) = self.acquire_slow()?;
        Ok(OwnedPermit::new(Arc::clone(self), word, kind))
    }

    #[inline]
    fn stripe(&self) -> (usize, &Stripe) {
        let i = thread_index() & self.stripe_mask;
        (i, &self.stripes[i])
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counters, not broken invariants: carry on.
        brownout_foundation::sync::lock(&self.inner)
    }

    #[cold]
    fn acquire_slow(&self) -> Result<(u64, Kind), Rejected> {
        loop {
            let word = self.word.0.load(Acquire);
            let status = status_of(word);
            let dry_run = status.forced == ForcedState::MetricsOnly;
            match status.forced {
                ForcedState::Disabled => return Ok((word, Kind::Untracked)),
                ForcedState::ForcedOpen => return Err(self.reject(status, None)),
                ForcedState::ForcedClosed => return Ok((word, Kind::Window)),
                ForcedState::None | ForcedState::MetricsOnly => {}
            }
            match status.state {
                State::Closed => return Ok((word, Kind::Window)),
                State::Open => {
                    let now = self.clock.now_nanos();
                    let until = self.open_until.load(Acquire);
                    if now < until {
                        if dry_run {
                            return Ok((word, Kind::Shadow));
                        }
                        return Err(self.reject(status, Some(Duration::from_nanos(until - now))));
                    }
                    let mut inner = self.lock();
                    let pending =
                        if self.word.0.load(Acquire) == word { self.to_half_open(&mut inner, now) } else { None };
                    drop(inner);
                    self.notify(pending);
                    // Loop: take a probe from the half-open state (or whatever it is now).
                }
                State::HalfOpen => {
                    let mut inner = self.lock();
                    if self.word.0.load(Acquire) != word {
                        continue;
                    }
                    if inner.probes_admitted + inner.probes_succeeded < self.config.half_open_probes {
                        inner.probes_admitted += 1;
                        return Ok((word, Kind::Probe));
                    }
                    drop(inner);
                    if dry_run {
                        return Ok((word, Kind::Shadow));
                    }
                    return Err(self.reject(status, None));
                }
            }
        }
    }

    fn reject(&self, status: Status, retry_after: Option<Duration>) -> Rejected {
        self.stripe().1.rejected.fetch_add(1, Relaxed);
        Rejected::new(status, retry_after)
    }

    /// Records a finished call (called by the permits).
    #[inline]
    pub(crate) fn finish(&self, word: u64, kind: Kind, outcome: Outcome, elapsed: Duration) {
        match kind {
            Kind::Window => self.record_window(word, outcome, elapsed),
            Kind::Probe => self.record_probe(word, outcome, elapsed),
            Kind::Shadow => self.count_only(outcome, elapsed),
            Kind::Untracked => {}
        }
    }

    #[inline]
    fn record_window(&self, word: u64, outcome: Outcome, elapsed: Duration) {
        if self.word.0.load(Relaxed) != word {
            // Admitted before a transition: its outcome belongs to a window that is gone.
            return self.count_only(outcome, elapsed);
        }
        let (i, stripe) = self.stripe();
        let mut now = 0;
        if self.bucket_calls == 0 {
            now = self.clock.now_nanos();
            if now >= stripe.bucket_end.load(Relaxed) {
                self.roll(i, stripe, now);
            }
        }
        let slow = elapsed >= self.slow_after;
        match outcome {
            Outcome::Success if !slow => {
                let before = stripe.calls.fetch_add(1, Relaxed);
                if self.bucket_calls != 0
                    && (before + 1).wrapping_sub(stripe.base_calls.load(Relaxed)) >= self.bucket_calls
                {
                    self.seal(i, stripe);
                }
            }
            Outcome::Ignored => {
                stripe.ignored.fetch_add(1, Relaxed);
            }
            Outcome::Success | Outcome::Failure => {
                if outcome == Outcome::Failure {
                    stripe.failures.fetch_add(1, Relaxed);
                    if slow {
                        stripe.slow_failed.fetch_add(1, Relaxed);
                    }
                } else {
                    stripe.slow_ok.fetch_add(1, Relaxed);
                }
                stripe.calls.fetch_add(1, Relaxed);
                self.judge(word, i, stripe, now);
            }
        }
    }

    /// Count window: seals the stripe's full bucket and publishes the stripe's call counts. Touches only this
    /// thread's stripe (and the lock).
    #[cold]
    fn seal(&self, i: usize, stripe: &Stripe) {
        let mut inner = self.lock();
        inner.window.seal_if_full(i, stripe);
        let deltas = Self::take_deltas(&mut inner.published[i], stripe);
        drop(inner);
        self.metrics.calls(deltas);
    }

    /// Time window: starts the stripe's new bucket and publishes the stripe's call counts.
    #[cold]
    fn roll(&self, i: usize, stripe: &Stripe, now: u64) {
        let mut inner = self.lock();
        inner.window.roll_if_due(i, stripe, now);
        let deltas = Self::take_deltas(&mut inner.published[i], stripe);
        drop(inner);
        self.metrics.calls(deltas);
    }

    fn take_deltas(published: &mut [u64; 5], stripe: &Stripe) -> [u64; 5] {
        let mut deltas = [0u64; 5];
        for ((now, seen), delta) in stripe.outcomes().into_iter().zip(published.iter_mut()).zip(&mut deltas) {
            if now > *seen {
                *delta = now - *seen;
                *seen = now;
            }
        }
        deltas
    }

    /// After a failure or a slow call: opens the breaker if the window is over a threshold. (A fast success
    /// only lowers the rates, so only failures and slow calls are judged: the success path stays lock-free.)
    #[cold]
    fn judge(&self, word: u64, i: usize, stripe: &Stripe, now: u64) {
        let mut inner = self.lock();
        inner.window.seal_if_full(i, stripe);
        let status = status_of(word);
        if self.word.0.load(Acquire) != word || status.forced == ForcedState::ForcedClosed {
            return;
        }
        let counts = inner.window.totals(&self.stripes, now);
        if counts.calls < u64::from(self.config.minimum_calls) {
            return;
        }
        let calls = counts.calls as f64;
        let over_failures = counts.failures as f64 / calls >= self.config.failure_rate_threshold;
        let over_slow = self.config.slow_calls.is_some_and(|s| counts.slow as f64 / calls >= s.rate_threshold);
        if !(over_failures || over_slow) {
            return;
        }
        let now = if self.bucket_calls == 0 { now } else { self.clock.now_nanos() };
        let pending = self.to_open(&mut inner, now);
        drop(inner);
        self.notify(pending);
    }

    fn record_probe(&self, word: u64, outcome: Outcome, elapsed: Duration) {
        self.count_only(outcome, elapsed);
        let mut inner = self.lock();
        if self.word.0.load(Acquire) != word {
            return;
        }
        inner.probes_admitted = inner.probes_admitted.saturating_sub(1);
        let slow = elapsed >= self.slow_after;
        let pending = match outcome {
            Outcome::Ignored => None,
            Outcome::Success if !slow => {
                inner.probes_succeeded += 1;
                if inner.probes_succeeded >= self.config.half_open_probes {
                    inner.failed_probes = 0;
                    self.set(&mut inner, State::Closed, status_of(word).forced, self.clock.now_nanos())
                } else {
                    None
                }
            }
            Outcome::Success | Outcome::Failure => {
                inner.failed_probes = inner.failed_probes.saturating_add(1);
                self.to_open(&mut inner, self.clock.now_nanos())
            }
        };
        drop(inner);
        self.notify(pending);
    }

    /// Counts an outcome in the metrics only.
    fn count_only(&self, outcome: Outcome, elapsed: Duration) {
        let stripe = self.stripe().1;
        let counter = match outcome {
            Outcome::Ignored => &stripe.ignored,
            Outcome::Failure => &stripe.extra_failed,
            Outcome::Success if elapsed >= self.slow_after => &stripe.extra_slow,
            Outcome::Success => &stripe.extra_ok,
        };
        counter.fetch_add(1, Relaxed);
    }

    fn to_open(&self, inner: &mut Inner, now: u64) -> Pending {
        let open_for = self.config.open_duration_after(inner.failed_probes);
        self.open_until.store(now.saturating_add(nanos(open_for)), Release);
        let forced = self.forced();
        self.set(inner, State::Open, forced, now)
    }

    fn to_half_open(&self, inner: &mut Inner, now: u64) -> Pending {
        let forced = self.forced();
        self.set(inner, State::HalfOpen, forced, now)
    }

    /// Moves to `state` under `forced` (with the lock held): a new generation, an empty window, no probes.
    fn set(&self, inner: &mut Inner, state: State, forced: ForcedState, now: u64) -> Pending {
        let old = self.word.0.load(Acquire);
        inner.window.reset(&self.stripes);
        inner.probes_admitted = 0;
        inner.probes_succeeded = 0;
        let new = next_word(old, state, forced);
        self.word.0.store(new, Release);
        let (from, to) = (status_of(old), status_of(new));
        self.metrics.transition(from, to);
        if to.state == State::Open && to.forced == ForcedState::None {
            tracing::warn!(breaker = %self.name, key = self.key.as_deref(), from = from.label(), to = to.label(),
                open_for = %humantime::format_duration(Duration::from_nanos(self.open_until.load(Acquire).saturating_sub(now))),
                "circuit breaker opened");
        } else {
            tracing::info!(breaker = %self.name, key = self.key.as_deref(), from = from.label(), to = to.label(),
                forced = to.forced.as_str(), "circuit breaker transition");
        }
        Some(Transition { from, to, at_nanos: now })
    }

    fn notify(&self, pending: Pending) {
        self.publish();
        if let (Some(t), Some(listener)) = (pending, &self.listener) {
            listener(&t);
        }
    }

    /// Overrides the state machine (see [`ForcedState`]). Changing the forced state restarts the machine:
    /// closed, empty window, no backoff. Forcing the state already in force does nothing.
    pub fn force(&self, forced: ForcedState) {
        let mut inner = self.lock();
        if self.forced() == forced {
            return;
        }
        inner.failed_probes = 0;
        let pending = self.set(&mut inner, State::Closed, forced, self.clock.now_nanos());
        drop(inner);
        self.notify(pending);
    }

    /// Back to closed with an empty window and no backoff, keeping the forced state.
    ///
    /// Only a real transition is announced (metrics, `tracing` event, listener): resetting a breaker that is
    /// already closed empties its window and announces nothing.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.failed_probes = 0;
        let pending = if self.state() == State::Closed {
            // Same status: a new generation (permits taken before the reset go stale) and an empty window,
            // but no transition to announce.
            let old = self.word.0.load(Acquire);
            inner.window.reset(&self.stripes);
            inner.probes_admitted = 0;
            inner.probes_succeeded = 0;
            self.word.0.store(next_word(old, State::Closed, status_of(old).forced), Release);
            None
        } else {
            self.set(&mut inner, State::Closed, self.forced(), self.clock.now_nanos())
        };
        drop(inner);
        self.notify(pending);
    }

    /// The state, the window's counts and rates, and the time left open.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = self.clock.now_nanos();
        let inner = self.lock();
        let status = self.status();
        let counts = inner.window.totals(&self.stripes, now);
        drop(inner);
        self.publish();
        let rate = |n: u64| if counts.calls == 0 { 0.0 } else { n as f64 / counts.calls as f64 };
        let time_until_half_open_seconds = (status.state == State::Open && status.forced != ForcedState::ForcedOpen)
            .then(|| Duration::from_nanos(self.open_until.load(Acquire).saturating_sub(now)).as_secs_f64());
        BreakerSnapshot {
            name: self.name.to_string(),
            state: status.state,
            forced: status.forced,
            calls: counts.calls,
            failures: counts.failures,
            slow_calls: counts.slow,
            failure_rate: rate(counts.failures),
            slow_call_rate: rate(counts.slow),
            time_until_half_open_seconds,
        }
    }

    /// Publishes the call counts batched in the per-thread stripes to `circuit_breaker_calls_total`. This
    /// happens on its own at every bucket boundary, transition and snapshot; call it before reading metrics
    /// to have every call counted.
    pub fn publish_metrics(&self) {
        self.publish();
    }

    fn publish(&self) {
        let mut inner = self.lock();
        let mut deltas = [0u64; 5];
        for (stripe, published) in self.stripes.iter().zip(inner.published.iter_mut()) {
            for (sum, delta) in deltas.iter_mut().zip(Self::take_deltas(published, stripe)) {
                *sum += delta;
            }
        }
        drop(inner);
        self.metrics.calls(deltas);
    }

    /// Closed and not forced: the per-key map evicts such breakers first.
    pub(crate) fn is_idle_closed(&self) -> bool {
        self.status() == Status { state: State::Closed, forced: ForcedState::None }
    }
}
