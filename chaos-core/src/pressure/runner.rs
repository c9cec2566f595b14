//! The controller's pressures: started when a rule set is armed, stopped when it is disarmed.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::{PressureConfig, plan};
use super::state::KillSwitch;
use super::{PressureGuard, PressureStatus};

/// The pressures of one controller, behind its own kill switch.
#[derive(Debug, Default)]
pub(crate) struct PressureRunner {
    kill: KillSwitch,
    guards: Mutex<Vec<PressureGuard>>,
}

impl PressureRunner {
    fn guards(&self) -> MutexGuard<'_, Vec<PressureGuard>> {
        brownout_foundation::sync::lock(&self.guards)
    }

    /// Stops what runs, then starts `rules`, each cut short by the rule set's `ttl` (counted from now).
    /// A rule that cannot start (the config was validated at load, but the memory limit may have moved) is
    /// logged and skipped.
    pub(crate) fn restart(&self, rules: &[PressureConfig], ttl: Duration) {
        self.stop();
        if rules.is_empty() {
            return;
        }
        let pressures = match plan(rules) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "chaos pressure not started");
                return;
            }
        };
        let mut guards = self.guards();
        for pressure in pressures {
            let Some(room) = ttl.checked_sub(pressure.start_after).filter(|d| !d.is_zero()) else {
                tracing::warn!(pressure = pressure.name(), "chaos pressure starts after the TTL; skipped");
                continue;
            };
            let duration = pressure.duration().min(room);
            let pressure = super::Pressure { duration, ..pressure.kill_switch(&self.kill) };
            match pressure.start() {
                Ok(guard) => guards.push(guard),
                Err(e) => tracing::warn!(error = %e, "chaos pressure not started"),
            }
        }
    }

    /// Pulls the kill switch and waits until every pressure has released what it held, at most
    /// [`STOP_GRACE`](super::STOP_GRACE) (an IO writer in an fsync finishes on its own).
    pub(crate) fn stop(&self) {
        let guards = std::mem::take(&mut *self.guards());
        if guards.is_empty() {
            return;
        }
        let began = Instant::now();
        self.kill.kill();
        drop(guards);
        tracing::debug!(took_us = began.elapsed().as_micros() as u64, "chaos pressure stopped");
    }

    /// The statuses of the pressures started by the current arm, in config order.
    pub(crate) fn statuses(&self) -> Vec<PressureStatus> {
        self.guards().iter().map(PressureGuard::status).collect()
    }
}
