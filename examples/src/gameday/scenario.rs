//! One scenario: before, during (the fault), after; what it measured, and its verdict.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use chaos_core::SloGuard;
use chaos_tower::ChaosHandle;
use degrade_flags::breaker::{CircuitBreaker, State as BreakerState};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::events;
use super::load::Recorder;
use super::plan::{Plan, Scenario};
use super::report::{PhaseStats, recovery_time};
use crate::demo::{CostTotals, Counters, PhaseCost};

/// Everything a scenario runs against.
pub struct Rig<'a> {
    pub plan: &'a Plan,
    pub chaos: &'a ChaosHandle,
    pub breaker: &'a CircuitBreaker,
    pub guard: &'a SloGuard,
    pub recorder: &'a Recorder,
    pub counters: &'a Counters,
    pub cost: &'a CostTotals,
    pub epoch: Instant,
    pub baseline: &'a PhaseStats,
    pub time_scale: f64,
    pub seed: Option<u64>,
}

/// A point of the scenario's time series: cumulative counters, sampled every recovery window.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub at: Duration,
    pub provider_calls: u64,
    pub injected: u64,
}

/// What a scenario produced.
pub struct Outcome {
    pub report: Value,
    pub passed: bool,
    pub recovery: Option<Duration>,
    pub row: Row,
    pub ticks: Vec<Tick>,
    pub start: Duration,
    pub fault: (Duration, Duration),
}

/// The summary line of a scenario.
pub struct Row {
    pub injected_rate: f64,
    pub during: PhaseStats,
    pub cost_during: PhaseCost,
    pub breaker_opened: Option<Duration>,
    pub failures: Vec<String>,
}

fn scaled(d: Duration, scale: f64) -> Duration {
    d.mul_f64(scale)
}

fn injected_total(chaos: &ChaosHandle) -> u64 {
    chaos.snapshot().rules.iter().map(|r| r.injected).sum()
}

/// Runs one scenario and judges it.
pub async fn run(rig: &Rig<'_>, scenario: &Scenario, progress: Progress) -> Result<Outcome, String> {
    let Rig { plan, chaos, breaker, guard, recorder, counters, cost, epoch, baseline, time_scale, seed } = *rig;
    let (before, duration, after) = (
        scaled(plan.phases.before, time_scale),
        scaled(scenario.duration, time_scale),
        scaled(plan.phases.after, time_scale),
    );
    let started_wall = SystemTime::now();
    let start = epoch.elapsed();
    let cost_at_start = cost.snapshot();
    let mut ticks = Vec::new();
    let tick_every = plan.phases.window;
    let total = before + duration + after;
    let progress = progress.with_total(total);
    let sample = |ticks: &mut Vec<Tick>, injected: u64| {
        let at = epoch.elapsed();
        ticks.push(Tick { at, provider_calls: counters.provider_calls.load(Ordering::Relaxed), injected });
        progress.show(at.saturating_sub(start));
    };

    // Before: the steady state, as it is now.
    progress.phase("before", before);
    sample(&mut ticks, 0);
    while epoch.elapsed() < start + before {
        tokio::time::sleep(tick_every.min(start + before - epoch.elapsed())).await;
        sample(&mut ticks, 0);
    }

    // During: arm the scenario's rules (with the run's seed, if one was given) and watch.
    guard.reset();
    let mut config = scenario.chaos.clone();
    if let Some(seed) = seed {
        config.seed = Some(seed);
    }
    let calls_before = counters.provider_calls.load(Ordering::Relaxed);
    let cost_at_fault_start = cost.snapshot();
    let fault_start = epoch.elapsed();
    // The load may be held by the previous scenario's kill switch (it latches): the runner arms explicitly.
    chaos.load(config).map_err(|e| format!("scenario {}: {e}", scenario.name))?;
    chaos.arm().map_err(|e| format!("scenario {}: {e}", scenario.name))?;
    events::emit("arm", &scenario.name, SystemTime::now(), json!({ "seed": chaos.snapshot().seed }));
    progress.phase("fault armed", duration);
    let (mut breaker_opened, mut first_injection, mut aborted_at) = (None, None, None);
    let mut next_tick = fault_start + tick_every;
    while epoch.elapsed() < fault_start + duration {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = epoch.elapsed();
        let injected = injected_total(chaos);
        if first_injection.is_none() && injected > 0 {
            first_injection = Some(now - fault_start);
            events::emit("first_injection", &scenario.name, SystemTime::now(), json!({}));
        }
        if breaker_opened.is_none() && breaker.state() != BreakerState::Closed {
            breaker_opened = Some(now - fault_start);
        }
        if aborted_at.is_none() && guard.breach().is_some() {
            aborted_at = Some(now - fault_start);
            let breach = guard.breach().map(|b| b.to_string()).unwrap_or_default();
            events::emit("abort", &scenario.name, SystemTime::now(), json!({ "breach": breach }));
        }
        if now >= next_tick {
            sample(&mut ticks, injected);
            next_tick += tick_every;
        }
    }
    let injected = injected_total(chaos);
    sample(&mut ticks, injected);
    // What the resource pressure (if any) achieved, read before the kill switch stops it.
    let pressure: Vec<Value> = chaos
        .controller()
        .pressure()
        .iter()
        .map(|p| json!({ "name": p.name, "kind": p.kind.as_str(), "target": p.target, "achieved": p.achieved }))
        .collect();
    chaos.disarm();
    let fault_end = epoch.elapsed();
    let cost_at_fault_end = cost.snapshot();
    let fault_end_wall = SystemTime::now();
    events::emit("disarm", &scenario.name, fault_end_wall, json!({ "injected": injected }));
    let calls = counters.provider_calls.load(Ordering::Relaxed) - calls_before;

    // After: recovery.
    progress.phase("after", after);
    while epoch.elapsed() < fault_end + after {
        tokio::time::sleep(tick_every.min(fault_end + after - epoch.elapsed())).await;
        sample(&mut ticks, injected);
    }
    let end = epoch.elapsed();
    let cost_at_end = cost.snapshot();
    progress.clear();
    // What the requests finished in each phase cost (cost-meter, via the demo's CostLayer).
    let cost_during = cost_at_fault_end.since(cost_at_fault_start);
    let phase = |stats: &PhaseStats, cost: PhaseCost| {
        let mut value = json!(stats);
        value["cost"] = json!(cost);
        value
    };

    let before_stats = PhaseStats::of(&recorder.between(start, fault_start), fault_start - start);
    let during_samples = recorder.between(fault_start, fault_end);
    let during = PhaseStats::of(&during_samples, fault_end - fault_start);
    let after_samples = recorder.between(fault_end, end);
    let after_stats = PhaseStats::of(&after_samples, end - fault_end);
    let p95_limit =
        Duration::from_secs_f64(baseline.p95_ms / 1e3 * plan.slo.recovery_p95_factor).max(Duration::from_millis(5));
    let recovery = recovery_time(&after_samples, fault_end, plan.phases.window, plan.slo.user_error_rate, p95_limit);
    if let Some(r) = recovery {
        // Found after the fact, stamped with when it happened: the fault's end plus the recovery time.
        events::emit("recovery_detected", &scenario.name, fault_end_wall + r, json!({ "recovery_s": r.as_secs_f64() }));
    }
    let first_fallback = during_samples.iter().filter(|s| s.fallback).map(|s| s.at).min().map(|at| at - fault_start);

    let injected_rate = if calls == 0 { 0.0 } else { injected as f64 / calls as f64 };
    let [lo, hi] = scenario.injected_band;
    let in_band = (lo..=hi).contains(&injected_rate);
    let acceptable = during.error_rate <= plan.slo.user_error_rate;
    let sla_met = recovery.is_some_and(|r| r <= scenario.recovery_sla);
    let breach = guard.breach();
    let mut failures = Vec::new();
    if !in_band {
        failures.push(format!("injected rate {injected_rate:.3} outside [{lo}, {hi}]"));
    }
    if !acceptable {
        failures.push(format!(
            "user error rate {:.2}% over the SLO {:.2}%",
            during.error_rate * 100.0,
            plan.slo.user_error_rate * 100.0
        ));
    }
    match recovery {
        Some(r) if r <= scenario.recovery_sla => {}
        Some(r) => failures.push(format!("recovered in {r:?}, SLA {:?}", scenario.recovery_sla)),
        None => failures.push(format!("not recovered within the {after:?} after phase")),
    }
    if let Some(breach) = breach {
        failures.push(format!("aborted by the SLO guard: {breach}"));
    }
    let passed = failures.is_empty();
    progress.phase(if passed { "done: PASS" } else { "done: FAIL" }, Duration::ZERO);
    let ended_wall = SystemTime::now();
    let rfc = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let report = json!({
        "scenario": {
            "name": scenario.name,
            "description": scenario.description,
            "fault": scenario.chaos.rules.iter().map(|r| &r.fault).collect::<Vec<_>>(),
            "duration_seconds": duration.as_secs_f64(),
            "planned_duration_seconds": scenario.duration.as_secs_f64(),
            "injected_band": scenario.injected_band,
            "recovery_sla_seconds": scenario.recovery_sla.as_secs_f64(),
        },
        "execution": {
            "start": rfc(started_wall),
            "end": rfc(ended_wall),
            "failure_injected": injected > 0,
            "provider_calls": calls,
            "injected_faults": injected,
            "injected_rate": injected_rate,
            "recovery_detected": recovery.is_some(),
            "recovery_time_seconds": recovery.map(|r| r.as_secs_f64()),
            "time_to_first_injection_seconds": first_injection.map(|d| d.as_secs_f64()),
            "time_to_first_fallback_seconds": first_fallback.map(|d| d.as_secs_f64()),
            "time_to_breaker_open_seconds": breaker_opened.map(|d| d.as_secs_f64()),
            "aborted_after_seconds": aborted_at.map(|d| d.as_secs_f64()),
            "pressure": pressure,
        },
        "hypothesis": format!(
            "While the provider suffers {} ({:.0}–{:.0}% of calls), users see at most {:.1}% errors thanks to the \\
             cached fallback, and the service is back to its baseline within {} s of the fault's end.",
            scenario.description, lo * 100.0, hi * 100.0, plan.slo.user_error_rate * 100.0, scenario.recovery_sla.as_secs()
        ),
        "metrics": {
            "before": phase(&before_stats, cost_at_fault_start.since(cost_at_start)),
            "during": phase(&during, cost_during),
            "after": phase(&after_stats, cost_at_end.since(cost_at_fault_end)),
        },
        "validation": {
            "injected_rate_in_band": in_band,
            "failure_rate_acceptable": acceptable,
            "recovery_detected": recovery.is_some(),
            "sla_met": sla_met,
            "aborted": breach.is_some(),
            "abort_reason": breach.map(|b| b.to_string()),
            "passed": passed,
            "failures": failures,
        },
        "seed": chaos.snapshot().seed,
    });
    Ok(Outcome {
        report,
        passed,
        recovery,
        row: Row { injected_rate, during, cost_during, breaker_opened, failures },
        ticks,
        start,
        fault: (fault_start, fault_end),
    })
}

/// How a scenario shows its progress on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Nothing (standard error is not a terminal, for the bar).
    Off,
    /// One progress bar, redrawn in place: for one scenario at a time.
    Bar,
    /// One line per phase, prefixed with the scenario: readable when scenarios run at once (`--parallel`).
    Lines,
}

/// A scenario's progress on standard error: a bar redrawn in place, or one line per phase.
#[derive(Debug)]
pub struct Progress {
    name: String,
    total: Duration,
    style: Style,
}

impl Progress {
    /// A one-line bar, shown only when standard error is a terminal.
    pub fn bar(name: &str) -> Self {
        use std::io::IsTerminal;
        let style = if std::io::stderr().is_terminal() { Style::Bar } else { Style::Off };
        Self { name: name.to_owned(), total: Duration::ZERO, style }
    }

    /// One line per phase (`[name] fault armed (1.5 s)`), whatever standard error is.
    pub fn lines(name: &str) -> Self {
        Self { name: name.to_owned(), total: Duration::ZERO, style: Style::Lines }
    }

    fn with_total(self, total: Duration) -> Self {
        Self { total, ..self }
    }

    /// A new phase of `length`: one line in the `Lines` style.
    fn phase(&self, phase: &str, length: Duration) {
        if self.style == Style::Lines {
            if length.is_zero() {
                eprintln!("[{}] {phase}", self.name);
            } else {
                eprintln!("[{}] {phase} ({:.1} s)", self.name, length.as_secs_f64());
            }
        }
    }

    fn show(&self, elapsed: Duration) {
        if self.style == Style::Bar {
            let done = (elapsed.as_secs_f64() / self.total.as_secs_f64().max(1e-9)).clamp(0.0, 1.0);
            let filled = (done * 30.0) as usize;
            eprint!(
                "\r{:<18} [{}{}] {:>5.1}s",
                self.name,
                "#".repeat(filled),
                " ".repeat(30 - filled),
                elapsed.as_secs_f64()
            );
        }
    }

    fn clear(&self) {
        if self.style == Style::Bar {
            eprint!("\r{}\r", " ".repeat(60));
        }
    }
}
