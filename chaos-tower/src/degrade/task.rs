//! [`TriggerTask`]: a tokio task that polls a [`Signal`] and feeds a degrade-flags [`Trigger`].

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use brownout_degrade::Flags;
use brownout_degrade::flags::{Hysteresis, Trigger};
use brownout_foundation::clock::{Clock, TokioClock};
use metrics::{Counter, Gauge};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{Signal, TriggerError};

/// The default of [`TriggerBuilder::min_hold`].
pub const DEFAULT_MIN_HOLD: Duration = Duration::from_secs(10);
/// The default of [`TriggerBuilder::every`].
pub const DEFAULT_EVERY: Duration = Duration::from_secs(1);
/// The shortest polling interval; shorter ones are raised to it.
pub const MIN_EVERY: Duration = Duration::from_millis(1);

/// `f64` bits that mean "no reading yet".
const NO_READING: u64 = u64::MAX;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Shared {
    name: Arc<str>,
    flag: Arc<str>,
    flags: Flags,
    /// `None` once the task is dropped: the loop then changes nothing.
    trigger: Mutex<Option<Trigger>>,
    on: AtomicBool,
    last: AtomicU64,
    flips: AtomicU64,
    flips_on: Counter,
    flips_off: Counter,
    signal: Gauge,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn poll(&self, signal: &mut impl Signal) {
        let Some(value) = signal.read().filter(|v| !v.is_nan()) else { return };
        self.last.store(value.to_bits(), Ordering::Relaxed);
        self.signal.set(value);
        let mut guard = lock(&self.trigger);
        let Some(trigger) = guard.as_mut() else { return };
        let result = trigger.observe(&self.flags, value, self.clock.now());
        self.on.store(trigger.is_on(), Ordering::Relaxed);
        match result {
            Ok(Some(on)) => self.flipped(on, Some(value)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(trigger = %self.name, flag = %self.flag, error = %e, "degrade trigger cannot set its flag")
            }
        }
    }

    fn flipped(&self, on: bool, signal: Option<f64>) {
        self.flips.fetch_add(1, Ordering::Relaxed);
        if on { &self.flips_on } else { &self.flips_off }.increment(1);
        tracing::info!(
            trigger = %self.name,
            flag = %self.flag,
            state = if on { "on" } else { "off" },
            signal,
            "degrade trigger flipped"
        );
    }
}

/// A tokio task that reads a [`Signal`] every interval and feeds it to a [`Trigger`], which sets its flag's
/// trigger layer while the signal is high and clears it when the signal is low again (with hysteresis and a
/// minimum hold). A manual setting of the flag still wins over it.
///
/// Polls on tokio's clock ([`tokio::time::interval`], missed ticks delayed), so paused-time tests run at once;
/// the minimum hold is timed on [`TokioClock`] too unless [`TriggerBuilder::clock`] or
/// [`spawn_with_clock`](Self::spawn_with_clock) gives another clock.
/// A `None` (or NaN) reading changes nothing.
///
/// Every flip of the flag logs `degrade_mode=ON|OFF flag=<name> … by=trigger` (degrade-flags), and the task
/// logs `degrade trigger flipped` with the signal's value. Metrics:
///
/// | metric | type | labels |
/// |---|---|---|
/// | `degrade_trigger_flips_total` | counter | `trigger`, `flag`, `state` = `on` \| `off` |
/// | `degrade_trigger_signal` | gauge: the last reading | `trigger` |
///
/// The metric handles are registered at spawn, with the recorder in force there.
///
/// Dropping the task stops it: it reads no more and flips no more, and if its switch was on it clears the
/// flag's trigger layer (a flip off), so no dropped trigger holds a flag degraded. The flags' subscribers run
/// inside the task's step (under its lock): a subscriber must not drop the task that calls it.
pub struct TriggerTask {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl fmt::Debug for TriggerTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TriggerTask").field("status", &self.status()).finish()
    }
}

/// What a [`TriggerTask`] is doing, for reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TriggerStatus {
    /// The trigger's name.
    pub trigger: String,
    /// The flag it drives.
    pub flag: String,
    /// Its switch is on (the flag is degraded unless a manual setting decides).
    pub on: bool,
    /// The last reading of its signal; `None` before the first.
    pub signal: Option<f64>,
    /// How many times it flipped.
    pub flips: u64,
}

impl TriggerTask {
    /// Spawns a task on the current tokio runtime that reads `signal` every `every` (at least [`MIN_EVERY`];
    /// the first read at once) and feeds `trigger`, which drives its flag in `flags`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`tokio::spawn`].
    pub fn spawn(flags: &Flags, trigger: Trigger, signal: impl Signal, every: Duration) -> TriggerTask {
        Self::spawn_with_clock(flags, trigger, signal, every, Arc::new(TokioClock))
    }

    /// As [`spawn`](Self::spawn), timing the trigger's minimum hold on `clock` instead of [`TokioClock`] (the
    /// polling interval stays on tokio's clock).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`tokio::spawn`].
    pub fn spawn_with_clock(
        flags: &Flags,
        trigger: Trigger,
        signal: impl Signal,
        every: Duration,
        clock: Arc<dyn Clock>,
    ) -> TriggerTask {
        let name: Arc<str> = trigger.name().into();
        let flag: Arc<str> = trigger.flag().into();
        describe();
        let shared = Arc::new(Shared {
            flips_on: flips_counter(&name, &flag, "on"),
            flips_off: flips_counter(&name, &flag, "off"),
            signal: metrics::gauge!("degrade_trigger_signal", "trigger" => name.to_string()),
            on: AtomicBool::new(trigger.is_on()),
            last: AtomicU64::new(NO_READING),
            flips: AtomicU64::new(0),
            trigger: Mutex::new(Some(trigger)),
            flags: flags.clone(),
            clock,
            name,
            flag,
        });
        let every = every.max(MIN_EVERY);
        let polled = shared.clone();
        let mut signal = signal;
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                polled.poll(&mut signal);
            }
        });
        TriggerTask { shared, task }
    }

    /// A builder: `TriggerTask::builder("deps-errors", "quotes.cached").on_above(0.2).off_below(0.05)
    /// .spawn(&flags, signal)`.
    pub fn builder(name: &str, flag: &str) -> TriggerBuilder {
        TriggerBuilder {
            name: name.to_owned(),
            flag: flag.to_owned(),
            on_above: None,
            off_below: None,
            min_hold: DEFAULT_MIN_HOLD,
            value: None,
            every: DEFAULT_EVERY,
            clock: None,
        }
    }

    /// The trigger's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The flag it drives.
    pub fn flag(&self) -> &str {
        &self.shared.flag
    }

    /// Is its switch on? (A manual setting of the flag may still decide the flag's value.)
    pub fn is_on(&self) -> bool {
        self.shared.on.load(Ordering::Relaxed)
    }

    /// The last reading of its signal; `None` before the first.
    pub fn last_signal(&self) -> Option<f64> {
        let bits = self.shared.last.load(Ordering::Relaxed);
        (bits != NO_READING).then(|| f64::from_bits(bits))
    }

    /// How many times it flipped (on and off).
    pub fn flips(&self) -> u64 {
        self.shared.flips.load(Ordering::Relaxed)
    }

    /// Its state, for a report.
    pub fn status(&self) -> TriggerStatus {
        TriggerStatus {
            trigger: self.name().to_owned(),
            flag: self.flag().to_owned(),
            on: self.is_on(),
            signal: self.last_signal(),
            flips: self.flips(),
        }
    }

    /// Stops the task, as dropping it does.
    pub fn stop(self) {}
}

impl Drop for TriggerTask {
    fn drop(&mut self) {
        self.task.abort();
        let Some(trigger) = lock(&self.shared.trigger).take() else { return };
        if !trigger.is_on() {
            return;
        }
        self.shared.on.store(false, Ordering::Relaxed);
        match self.shared.flags.set_trigger(trigger.flag(), None, trigger.name()) {
            Ok(()) => self.shared.flipped(false, None),
            Err(e) => tracing::warn!(trigger = %self.shared.name, error = %e, "degrade trigger cannot clear its flag"),
        }
    }
}

fn describe() {
    metrics::describe_counter!(
        "degrade_trigger_flips_total",
        "Flips of a degrade trigger's switch, by trigger, flag and new state (on, off)."
    );
    metrics::describe_gauge!("degrade_trigger_signal", "The last reading of a degrade trigger's signal.");
}

fn flips_counter(trigger: &str, flag: &str, state: &'static str) -> Counter {
    metrics::counter!(
        "degrade_trigger_flips_total",
        "trigger" => trigger.to_owned(),
        "flag" => flag.to_owned(),
        "state" => state
    )
}

/// Builds and spawns a [`TriggerTask`] in a few lines; from [`TriggerTask::builder`].
///
/// The flag goes to [`value`](Self::value) (default `true`, for a bool flag) once the signal rises above
/// [`on_above`](Self::on_above) (required), and back once it falls below [`off_below`](Self::off_below)
/// (default: `on_above`), never within [`min_hold`](Self::min_hold) of the last flip (default 10 s). The
/// signal is read every [`every`](Self::every) (default 1 s).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until spawned"]
pub struct TriggerBuilder {
    name: String,
    flag: String,
    on_above: Option<f64>,
    off_below: Option<f64>,
    min_hold: Duration,
    value: Option<String>,
    every: Duration,
    clock: Option<Arc<dyn Clock>>,
}

impl TriggerBuilder {
    /// The clock the minimum hold is timed on (default: [`TokioClock`], which follows paused time).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Turns on when the signal is above this.
    pub fn on_above(mut self, threshold: f64) -> Self {
        self.on_above = Some(threshold);
        self
    }

    /// Turns off when the signal is below this (at most `on_above`); the gap is the hysteresis.
    pub fn off_below(mut self, threshold: f64) -> Self {
        self.off_below = Some(threshold);
        self
    }

    /// Never flips within this long of the last flip.
    pub fn min_hold(mut self, hold: Duration) -> Self {
        self.min_hold = hold;
        self
    }

    /// The flag's value while on, as text checked against the flag's type (`true`, a strategy's name, a
    /// number). Default `true`.
    pub fn value(mut self, value: &str) -> Self {
        self.value = Some(value.to_owned());
        self
    }

    /// How often the signal is read.
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// The trigger, checked against `flags`: thresholds finite and in order, the flag defined, the value
    /// valid for it.
    pub fn trigger(&self, flags: &Flags) -> Result<Trigger, TriggerError> {
        let error = |reason: String| TriggerError::new(&self.name, reason);
        let on_above = self.on_above.ok_or_else(|| error("on_above is required".into()))?;
        let off_below = self.off_below.unwrap_or(on_above);
        let switch = Hysteresis::new(on_above, off_below, self.min_hold).map_err(|e| error(e.reason().to_owned()))?;
        let kind = flags.kind(&self.flag).map_err(|e| error(format!("flag `{}`: {}", self.flag, e.reason())))?;
        let value = kind
            .parse(self.value.as_deref().unwrap_or("true"))
            .map_err(|r| error(format!("value for flag `{}`: {r}", self.flag)))?;
        Ok(Trigger::new(&self.name, &self.flag, value, switch))
    }

    /// Checks the trigger (see [`trigger`](Self::trigger)) and spawns its task on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as [`tokio::spawn`].
    pub fn spawn(self, flags: &Flags, signal: impl Signal) -> Result<TriggerTask, TriggerError> {
        let trigger = self.trigger(flags)?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(TokioClock));
        Ok(TriggerTask::spawn_with_clock(flags, trigger, signal, self.every, clock))
    }
}
