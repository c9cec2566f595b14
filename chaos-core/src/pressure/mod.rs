//! In-process resource pressure: CPU burners, a memory ballast and a disk writer, bounded and reversible.
//!
//! A [`Pressure`] says what to load (a [`Load`]), for how long, and after what delay. [`Pressure::start`]
//! checks it, spawns the worker threads and returns a [`PressureGuard`]. The pressure stops, and gives back
//! everything it took (threads joined, memory freed, temporary files removed), when the first of these
//! happens:
//! - its duration expires ([`StopReason::Expired`]);
//! - its [`KillSwitch`] is pulled ([`StopReason::Killed`]), for example by [`Controller::disarm`];
//! - its guard is dropped or [`stop`](PressureGuard::stop)ped ([`StopReason::Dropped`]).
//!
//! Workers run in slices of at most [`SLICE`] (10 ms) and sleep on a condition variable, so each of these
//! stops takes effect within 100 ms. A memory target above the ceiling ([`DEFAULT_CEILING`], 80% of the
//! [`MemoryLimit`]) is refused: the chaos must never OOM-kill the service it tests.
//!
//! Every pressure reports through `metrics` (`chaos_pressure_active{kind}`, `chaos_pressure_target{kind}` in
//! base units, `chaos_pressure_started_total{kind}`) and `tracing` (a start event and a stop event with its
//! reason). In a chaos config, pressures are the `pressure:` list ([`PressureConfig`]); the [`Controller`]
//! starts them when the rule set is armed and stops them when it is disarmed.
//!
//! ```no_run
//! use std::time::Duration;
//! use brownout_chaos::pressure::{Load, Pressure};
//!
//! let guard = Pressure::new("cpu-squeeze", Load::Cpu { threads: 1, duty: 0.5 }, Duration::from_secs(2))
//!     .start()?;
//! std::thread::sleep(Duration::from_millis(500));
//! println!("burning {:.2} cores", guard.status().achieved);
//! drop(guard); // stops within 100 ms
//! # Ok::<(), brownout_chaos::pressure::PressureError>(())
//! ```
//!
//! [`Controller`]: crate::Controller
//! [`Controller::disarm`]: crate::Controller::disarm

mod bytes;
mod config;
mod cpu;
mod io;
mod limits;
mod memory;
mod metrics;
mod runner;
mod state;

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

pub use bytes::ByteSize;
pub use config::{CpuPressureConfig, IoPressureConfig, MemoryPressureConfig, PressureConfig, RampConfig};
pub use cpu::{burn_cpu, burn_cpu_while};
pub use limits::{LimitSource, MemoryLimit, memory_limit};
pub use state::KillSwitch;

pub(crate) use config::validate;
pub(crate) use runner::PressureRunner;

use state::Shared;

/// Longest a worker runs or sleeps before it looks at its stop signal again.
pub const SLICE: Duration = Duration::from_millis(10);

/// How long stopping a pressure waits for its worker to release everything before it lets the worker finish
/// on its own: CPU and memory workers are done within a slice; an IO writer may be inside an fsync.
pub const STOP_GRACE: Duration = Duration::from_millis(50);
/// Default memory ceiling: a ballast may take at most this fraction of the [`MemoryLimit`].
pub const DEFAULT_CEILING: f64 = 0.8;
/// The highest ceiling a pressure may ask for.
pub const MAX_CEILING: f64 = 0.9;
/// Most burner threads one CPU pressure may start.
pub const MAX_CPU_THREADS: u32 = 64;
/// Fastest an IO pressure may write: 1000 MB/s.
pub const MAX_IO_BYTES_PER_SEC: u64 = 1_000_000_000;

/// The resource a pressure loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PressureKind {
    /// Burner threads.
    Cpu,
    /// A ballast of touched pages.
    Memory,
    /// A writer that writes and fsyncs.
    Io,
}

impl PressureKind {
    /// `cpu`, `memory` or `io`: the `kind` label of the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PressureKind::Cpu => "cpu",
            PressureKind::Memory => "memory",
            PressureKind::Io => "io",
        }
    }
}

impl fmt::Display for PressureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a pressure stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// Its guard was dropped or stopped by its owner.
    Dropped,
    /// Its duration ran out.
    Expired,
    /// Its kill switch was pulled (the controller was disarmed).
    Killed,
    /// It could not go on (an IO error, an allocation refused); the reason was logged.
    Failed,
}

impl StopReason {
    /// `dropped`, `expired`, `killed` or `failed`, as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Dropped => "dropped",
            StopReason::Expired => "expired",
            StopReason::Killed => "killed",
            StopReason::Failed => "failed",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much memory a ballast takes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum MemoryTarget {
    /// This many bytes.
    Bytes(u64),
    /// This fraction, in (0, 1], of the [`MemoryLimit`].
    FractionOfLimit(f64),
}

/// Grow a ballast by `step` bytes every `every`, up to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ramp {
    /// Bytes added per step (> 0).
    pub step: u64,
    /// Time between steps (> 0).
    pub every: Duration,
}

impl Ramp {
    /// Grow by `step` bytes every `every`.
    pub fn new(step: u64, every: Duration) -> Self {
        Self { step, every }
    }
}

/// What a pressure loads, and how hard.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Load {
    /// `threads` burner threads, each busy `duty` (in (0, 1]) of the time: a target of `threads × duty` cores.
    Cpu {
        /// Burner threads, 1 to [`MAX_CPU_THREADS`].
        threads: u32,
        /// Busy fraction of each thread, in (0, 1].
        duty: f64,
    },
    /// A ballast of touched pages, grown at once or along a ramp, held, then released.
    Memory {
        /// How much.
        target: MemoryTarget,
        /// Grow step by step instead of at once.
        ramp: Option<Ramp>,
        /// Refuse a target above this fraction of the memory limit (default [`DEFAULT_CEILING`], at most
        /// [`MAX_CEILING`]).
        ceiling: f64,
    },
    /// Write and fsync a file in a fresh temporary directory at this rate.
    Io {
        /// Bytes per second, 1 to [`MAX_IO_BYTES_PER_SEC`].
        bytes_per_sec: u64,
    },
}

impl Load {
    /// The kind of resource loaded.
    pub fn kind(&self) -> PressureKind {
        match self {
            Load::Cpu { .. } => PressureKind::Cpu,
            Load::Memory { .. } => PressureKind::Memory,
            Load::Io { .. } => PressureKind::Io,
        }
    }

    /// A ballast of `bytes`, at once, under the default ceiling.
    pub fn memory_bytes(bytes: u64) -> Self {
        Load::Memory { target: MemoryTarget::Bytes(bytes), ramp: None, ceiling: DEFAULT_CEILING }
    }
}

/// A checked load, with its memory target resolved to bytes.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Cpu { threads: u32, duty: f64 },
    Memory { bytes: u64, ramp: Option<Ramp> },
    Io { bytes_per_sec: u64 },
}

impl Plan {
    fn target(&self) -> f64 {
        match *self {
            Plan::Cpu { threads, duty } => f64::from(threads) * duty,
            Plan::Memory { bytes, .. } => bytes as f64,
            Plan::Io { bytes_per_sec } => bytes_per_sec as f64,
        }
    }
}

/// A pressure to start: a [`Load`], a duration, an optional delay and kill switch.
#[derive(Debug, Clone)]
pub struct Pressure {
    name: String,
    load: Load,
    duration: Duration,
    start_after: Duration,
    kill: Option<KillSwitch>,
}

impl Pressure {
    /// `load` for `duration` (> 0), starting at once. `name` appears in logs and statuses.
    pub fn new(name: impl Into<String>, load: Load, duration: Duration) -> Self {
        Self { name: name.into(), load, duration, start_after: Duration::ZERO, kill: None }
    }

    /// Waits this long after [`start`](Self::start) before loading anything.
    pub fn start_after(mut self, delay: Duration) -> Self {
        self.start_after = delay;
        self
    }

    /// Links the pressure to `switch`: [`KillSwitch::kill`] stops it.
    pub fn kill_switch(mut self, switch: &KillSwitch) -> Self {
        self.kill = Some(switch.clone());
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The load.
    pub fn load(&self) -> &Load {
        &self.load
    }

    /// How long it runs once started.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The target in base units (cores, bytes, bytes per second), checked as [`start`](Self::start) would.
    pub fn target(&self) -> Result<f64, PressureError> {
        let limit = self.read_limit()?;
        self.plan(limit.as_ref()).map(|p| p.target())
    }

    fn read_limit(&self) -> Result<Option<MemoryLimit>, PressureError> {
        match self.load {
            Load::Memory { .. } => memory_limit()
                .map(Some)
                .map_err(|e| PressureError::new("memory", format!("cannot read the memory limit: {e}"))),
            _ => Ok(None),
        }
    }

    /// Checks the pressure; `limit` is needed (and read by the caller) for memory loads only.
    fn plan(&self, limit: Option<&MemoryLimit>) -> Result<Plan, PressureError> {
        if self.duration.is_zero() {
            return Err(PressureError::new("duration", "must be longer than zero"));
        }
        match self.load {
            Load::Cpu { threads, duty } => {
                if !(1..=MAX_CPU_THREADS).contains(&threads) {
                    return Err(PressureError::new(
                        "cpu.threads",
                        format!("must be within 1–{MAX_CPU_THREADS}, got {threads}"),
                    ));
                }
                if !(duty.is_finite() && duty > 0.0 && duty <= 1.0) {
                    return Err(PressureError::new("cpu.duty", format!("must be within (0, 1], got {duty}")));
                }
                Ok(Plan::Cpu { threads, duty })
            }
            Load::Memory { target, ramp, ceiling } => {
                let limit = limit.ok_or_else(|| PressureError::new("memory", "the memory limit is unknown"))?;
                let bytes = memory::resolve(target, ceiling, limit)?;
                if let Some(r) = ramp {
                    if r.step == 0 {
                        return Err(PressureError::new("memory.ramp.step", "must be at least 1 byte"));
                    }
                    if r.every.is_zero() {
                        return Err(PressureError::new("memory.ramp.every", "must be longer than zero"));
                    }
                }
                Ok(Plan::Memory { bytes, ramp })
            }
            Load::Io { bytes_per_sec } => {
                if !(1..=MAX_IO_BYTES_PER_SEC).contains(&bytes_per_sec) {
                    return Err(PressureError::new(
                        "io.bytes_per_sec",
                        format!("must be within 1–{MAX_IO_BYTES_PER_SEC}, got {bytes_per_sec}"),
                    ));
                }
                Ok(Plan::Io { bytes_per_sec })
            }
        }
    }

    /// Checks the pressure and starts it. Errors name the offending field (`cpu.duty`, `memory.bytes`…);
    /// a memory target above the ceiling is refused ([`PressureError::is_above_ceiling`]).
    pub fn start(self) -> Result<PressureGuard, PressureError> {
        let limit = self.read_limit()?;
        let plan = self.plan(limit.as_ref())?;
        let kind = self.load.kind();
        let shared = Arc::new(Shared::new(self.name, kind, plan.target()));
        let scratch = match plan {
            Plan::Io { .. } => Some(
                io::Scratch::create()
                    .map_err(|e| PressureError::new("io", format!("cannot create a temporary directory: {e}")))?,
            ),
            _ => None,
        };
        if let Some(switch) = &self.kill {
            switch.link(&shared);
        }
        let worker = shared.clone();
        let (start_after, duration) = (self.start_after, self.duration);
        let thread = std::thread::Builder::new()
            .name(format!("brownout-{kind}"))
            .spawn(move || lifecycle(&worker, start_after, duration, plan, scratch))
            .map_err(|e| PressureError::new("", format!("cannot start a thread: {e}")))?;
        Ok(PressureGuard { shared, thread: Some(thread) })
    }
}

/// `from + d`, or far in the future when that does not fit.
pub(crate) fn deadline(from: Instant, d: Duration) -> Instant {
    from.checked_add(d).or_else(|| from.checked_add(Duration::from_secs(86_400 * 365))).unwrap_or(from)
}

/// Marks the end and reports it, even if a worker panicked.
struct Finish<'a> {
    shared: &'a Shared,
    started: bool,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        // Metrics first: once `mark_ended` wakes the waiters, everything about the pressure is settled.
        if self.started {
            metrics::stopped(self.shared.kind, self.shared.target);
        }
        let reason = self.shared.mark_ended();
        if self.started {
            let status = self.shared.status();
            tracing::info!(
                pressure = %self.shared.name, kind = %self.shared.kind, reason = %reason,
                target = self.shared.target, achieved = status.achieved,
                ran_ms = status.running_for.as_millis() as u64,
                "chaos pressure stopped"
            );
        } else {
            tracing::debug!(pressure = %self.shared.name, reason = %reason, "chaos pressure cancelled before it started");
        }
    }
}

fn lifecycle(shared: &Shared, start_after: Duration, duration: Duration, plan: Plan, scratch: Option<io::Scratch>) {
    let mut finish = Finish { shared, started: false };
    if shared.wait_for(start_after) {
        return;
    }
    let end = deadline(shared.mark_started(), duration);
    finish.started = true;
    metrics::started(shared.kind, shared.target);
    tracing::info!(
        pressure = %shared.name, kind = %shared.kind, target = shared.target,
        duration_ms = duration.as_millis() as u64, "chaos pressure started"
    );
    match plan {
        Plan::Cpu { threads, duty } => cpu::run(shared, threads, duty, end),
        Plan::Memory { bytes, ramp } => memory::run(shared, bytes, ramp, end),
        Plan::Io { bytes_per_sec } => match scratch {
            Some(scratch) => io::run(shared, scratch, bytes_per_sec, end),
            None => shared.stop(StopReason::Failed),
        },
    }
}

/// A running pressure. Dropping it stops the pressure within 100 ms and waits until everything is given back.
#[derive(Debug)]
pub struct PressureGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl PressureGuard {
    /// The pressure's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The kind of resource it loads.
    pub fn kind(&self) -> PressureKind {
        self.shared.kind
    }

    /// What it is doing: target, start, achieved so far, and why it stopped if it has.
    pub fn status(&self) -> PressureStatus {
        self.shared.status()
    }

    /// Has it stopped and given everything back (expired, killed or failed)?
    pub fn is_finished(&self) -> bool {
        self.shared.wait_ended(Duration::ZERO)
    }

    /// Waits up to `timeout` for the pressure to finish by itself; `true` if it has.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.shared.wait_ended(timeout)
    }

    /// Stops it, waits until everything is given back (at most [`STOP_GRACE`]), and returns its status. An IO
    /// writer inside an fsync on a contended disk can outlast the grace: its status then has `stopped: None`,
    /// and it starts no new write and removes its directory when that fsync returns.
    pub fn stop(mut self) -> PressureStatus {
        self.halt();
        self.shared.status()
    }

    fn halt(&mut self) {
        self.shared.stop(StopReason::Dropped);
        if let Some(thread) = self.thread.take() {
            if self.shared.wait_ended(STOP_GRACE) {
                // A worker that panicked has still released what it held (the `Finish` guard ran).
                let _ = thread.join();
            } else {
                // Only a write stuck in the kernel (an fsync on a contended disk) outlasts the grace: the caller
                // (a disarm, a guard's drop) does not wait for the disk. The writer starts nothing new and
                // removes its directory when that write returns.
                tracing::info!(pressure = %self.shared.name, kind = %self.shared.kind,
                    "pressure stopped; its worker finishes an in-flight write and cleans up on its own");
            }
        }
    }
}

impl Drop for PressureGuard {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A point-in-time view of one pressure.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PressureStatus {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: PressureKind,
    /// The target in base units: cores (1.6 for 2 threads at 80%), bytes, or bytes per second.
    pub target: f64,
    /// Achieved so far, in the same unit: average cores burned since the start, bytes held now, or average
    /// bytes per second written since the start.
    pub achieved: f64,
    /// When it started loading; `None` while it waits for `start_after` (or if it was stopped before).
    pub started: Option<SystemTime>,
    /// How long it has loaded (until now, or until it stopped).
    pub running_for: Duration,
    /// Why it stopped, once it has stopped and released everything.
    pub stopped: Option<StopReason>,
}

/// A pressure that was refused: the field at fault and the reason.
///
/// `Display` reads `memory.bytes: 22.0 GiB is above the ceiling 19.2 GiB (80% of the 24.0 GiB limit from
/// /proc/meminfo)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PressureError {
    field: String,
    reason: String,
    above_ceiling: bool,
}

impl PressureError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into(), above_ceiling: false }
    }

    pub(crate) fn above_ceiling(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { above_ceiling: true, ..Self::new(field, reason) }
    }

    /// The offending field, relative to the pressure (`cpu.duty`, `memory.fraction_of_limit`…); empty when
    /// the failure is not about one field.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why it was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Was a memory target refused for being above the ceiling?
    pub fn is_above_ceiling(&self) -> bool {
        self.above_ceiling
    }
}

impl fmt::Display for PressureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}

impl std::error::Error for PressureError {}
