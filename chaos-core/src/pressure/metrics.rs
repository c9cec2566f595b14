//! `chaos_pressure_active{kind}`, `chaos_pressure_target{kind}` and `chaos_pressure_started_total{kind}`.
//!
//! The gauges sum over the pressures of a kind that run at once: `active` counts them (1 while one runs),
//! `target` adds their targets in base units (cores, bytes, bytes per second) and is exactly 0 when none runs.

use std::sync::Mutex;

use super::PressureKind;

/// `chaos_pressure_active{kind}`: pressures of the kind running now.
pub(crate) const ACTIVE: &str = "chaos_pressure_active";
/// `chaos_pressure_target{kind}`: their targets, in base units.
pub(crate) const TARGET: &str = "chaos_pressure_target";
/// `chaos_pressure_started_total{kind}`.
pub(crate) const STARTED: &str = "chaos_pressure_started_total";

/// Per kind: how many run, and the sum of their targets.
static RUNNING: Mutex<[(u32, f64); 3]> = Mutex::new([(0, 0.0); 3]);

fn index(kind: PressureKind) -> usize {
    match kind {
        PressureKind::Cpu => 0,
        PressureKind::Memory => 1,
        PressureKind::Io => 2,
    }
}

fn publish(kind: PressureKind, (count, target): (u32, f64)) {
    metrics::describe_gauge!(TARGET, "Targets of the resource pressures running now (cores, bytes, bytes/s).");
    metrics::describe_gauge!(ACTIVE, "Resource pressures of the kind running now.");
    metrics::describe_counter!(STARTED, "Resource pressures started.");
    metrics::gauge!(TARGET, "kind" => kind.as_str()).set(target);
    metrics::gauge!(ACTIVE, "kind" => kind.as_str()).set(f64::from(count));
}

pub(crate) fn started(kind: PressureKind, target: f64) {
    metrics::counter!(STARTED, "kind" => kind.as_str()).increment(1);
    let mut running = brownout_foundation::sync::lock(&RUNNING);
    let slot = &mut running[index(kind)];
    slot.0 = slot.0.saturating_add(1);
    slot.1 += target;
    publish(kind, *slot);
}

pub(crate) fn stopped(kind: PressureKind, target: f64) {
    let mut running = brownout_foundation::sync::lock(&RUNNING);
    let slot = &mut running[index(kind)];
    slot.0 = slot.0.saturating_sub(1);
    slot.1 = if slot.0 == 0 { 0.0 } else { (slot.1 - target).max(0.0) };
    publish(kind, *slot);
}
