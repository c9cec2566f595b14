//! The state one pressure shares between its guard, its worker threads and the kill switch.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use brownout_foundation::sync::lock;

use super::{PressureKind, PressureStatus, StopReason};

#[derive(Debug, Default)]
struct Phase {
    reason: Option<StopReason>,
    started: Option<(Instant, SystemTime)>,
    ended: Option<Instant>,
}

/// One pressure's stop signal and progress. Workers wait on it with a timeout, so a stop wakes them at once.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) kind: PressureKind,
    /// In base units: cores, bytes, bytes per second.
    pub(crate) target: f64,
    /// Progress in integer units: CPU nanoseconds burned, bytes held, bytes written.
    pub(crate) work: AtomicU64,
    stopping: AtomicBool,
    phase: Mutex<Phase>,
    wake: Condvar,
}

impl Shared {
    pub(crate) fn new(name: String, kind: PressureKind, target: f64) -> Self {
        Self {
            name,
            kind,
            target,
            work: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            phase: Mutex::new(Phase::default()),
            wake: Condvar::new(),
        }
    }

    /// Asks the workers to stop. The first reason wins.
    pub(crate) fn stop(&self, reason: StopReason) {
        let mut phase = lock(&self.phase);
        if phase.reason.is_none() {
            phase.reason = Some(reason);
        }
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_all();
    }

    /// One atomic load: has a stop been asked for?
    #[inline]
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Sleeps until `deadline` or a stop, whichever comes first; `true` if stopped.
    pub(crate) fn wait_until(&self, deadline: Instant) -> bool {
        let mut phase = lock(&self.phase);
        loop {
            if phase.reason.is_some() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            phase = self.wake.wait_timeout(phase, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Sleeps for at most `d` or until a stop; `true` if stopped.
    pub(crate) fn wait_for(&self, d: Duration) -> bool {
        match Instant::now().checked_add(d) {
            Some(deadline) => self.wait_until(deadline),
            None => self.wait_until(Instant::now() + Duration::from_secs(3600)),
        }
    }

    pub(crate) fn mark_started(&self) -> Instant {
        let now = Instant::now();
        lock(&self.phase).started = Some((now, SystemTime::now()));
        now
    }

    /// Marks the end (all resources released) and returns why it ended.
    pub(crate) fn mark_ended(&self) -> StopReason {
        let mut phase = lock(&self.phase);
        phase.ended = Some(Instant::now());
        let reason = *phase.reason.get_or_insert(StopReason::Expired);
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_all();
        reason
    }

    /// Waits until the workers have released everything, at most `timeout`; `true` if they have.
    pub(crate) fn wait_ended(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut phase = lock(&self.phase);
        loop {
            if phase.ended.is_some() {
                return true;
            }
            let now = Instant::now();
            let left = match deadline {
                Some(d) if now >= d => return false,
                Some(d) => d - now,
                None => Duration::from_secs(3600),
            };
            phase = self.wake.wait_timeout(phase, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    pub(crate) fn status(&self) -> PressureStatus {
        let phase = lock(&self.phase);
        let running_for = match phase.started {
            Some((at, _)) => phase.ended.unwrap_or_else(Instant::now).saturating_duration_since(at),
            None => Duration::ZERO,
        };
        let work = self.work.load(Ordering::Relaxed) as f64;
        let secs = running_for.as_secs_f64();
        let achieved = match self.kind {
            PressureKind::Memory => work,
            PressureKind::Cpu if secs > 0.0 => work / 1e9 / secs,
            PressureKind::Io if secs > 0.0 => work / secs,
            _ => 0.0,
        };
        PressureStatus {
            name: self.name.clone(),
            kind: self.kind,
            target: self.target,
            achieved,
            started: phase.started.map(|(_, at)| at),
            running_for,
            stopped: if phase.ended.is_some() { phase.reason } else { None },
        }
    }
}

/// Stops every pressure linked to it, from any thread: the kill switch.
///
/// Cheap to clone; every clone is the same switch. [`kill`](Self::kill) does not latch: pressures started
/// (and linked) afterwards run normally. Workers notice within one slice (≤ 10 ms) and release everything
/// they hold; drop or [`stop`](super::PressureGuard::stop) the guards to wait for that.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch {
    linked: Arc<Mutex<Vec<Weak<Shared>>>>,
}

impl KillSwitch {
    /// A switch with nothing linked yet.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn link(&self, shared: &Arc<Shared>) {
        let mut linked = lock(&self.linked);
        linked.retain(|w| w.strong_count() > 0);
        linked.push(Arc::downgrade(shared));
    }

    /// Stops every linked pressure that is still alive; returns how many were told.
    pub fn kill(&self) -> usize {
        let linked = std::mem::take(&mut *lock(&self.linked));
        let mut told = 0;
        for shared in linked.iter().filter_map(Weak::upgrade) {
            shared.stop(StopReason::Killed);
            told += 1;
        }
        told
    }
}
