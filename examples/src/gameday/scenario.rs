//! One scenario: before, during (the fault), after; what it measured, what degraded and when, whether the
//! service came back to its normal path, and its verdict.

use std::collections::BTreeMap;

use std::time::{Duration, SystemTime};

use chaos_core::SloGuard;
use chaos_tower::ChaosHandle;
use degrade_flags::Flags;
use degrade_flags::breaker::{CircuitBreaker, State as BreakerState};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::events;
use super::load::Recorder;
use super::plan::{Plan, Scenario};
use super::report::{Normal, PhaseStats, StateTick, judged_band, recovery_time};
use crate::demo::{CostTotals, PhaseCost};
use crate::orders::Orders;

/// Everything a scenario runs against.
pub struct Rig<'a> {
    pub plan: &'a Plan,
    /// The chaos switch the scenario's rules go to (the provider's or the order store's).
    pub chaos: &'a ChaosHandle,
    /// The calls that reached that switch's layer so far, counted as they start.
    pub calls: &'a (dyn Fn() -> u64 + Sync),
    /// The orders route, whose acknowledged orders must all be applied once by the end.
    pub orders: Option<&'a Orders>,
    pub breaker: &'a CircuitBreaker,
    /// The service's degrade flags: a flag away from its default is a degradation.
    pub flags: &'a Flags,
    pub guard: &'a SloGuard,
    pub recorder: &'a Recorder,
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

/// The verdict of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// The fault was not what the plan asked for (a pressure below 90% of its target): no conclusion.
    Invalid,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Invalid => "INVALID",
        }
    }
}

/// What a scenario produced.
pub struct Outcome {
    pub report: Value,
    pub verdict: Verdict,
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
    /// The recovery SLA at this run's time scale.
    pub sla: Duration,
    /// Detection times: what turned on, and how long after the fault's start.
    pub degraded: Vec<(String, Duration)>,
    pub failures: Vec<String>,
}

/// A pressure must reach this share of its target for the scenario to say anything.
const PRESSURE_VALID: f64 = 0.9;

fn scaled(d: Duration, scale: f64) -> Duration {
    d.mul_f64(scale)
}

fn injected_total(chaos: &ChaosHandle) -> u64 {
    chaos.snapshot().rules.iter().map(|r| r.injected).sum()
}

/// The service's state now: the breaker and the flags away from their default.
fn state_now(at: Duration, breaker: &CircuitBreaker, flags: &Flags) -> StateTick {
    StateTick {
        at,
        breaker_closed: breaker.state() == BreakerState::Closed,
        degraded: flags.list().into_iter().filter(|f| f.value != f.default).map(|f| f.name).collect(),
    }
}

/// When things changed, from the state ticks: `(first instant it holds at or after from, ...)`.
fn first_at(states: &[StateTick], from: Duration, holds: impl Fn(&StateTick) -> bool) -> Option<Duration> {
    states.iter().find(|t| t.at >= from && holds(t)).map(|t| t.at - from)
}

/// Runs one scenario and judges it.
pub async fn run(rig: &Rig<'_>, scenario: &Scenario, progress: Progress) -> Result<Outcome, String> {
    let Rig {
        plan,
        chaos,
        calls: call_count,
        orders,
        breaker,
        flags,
        guard,
        recorder,
        cost,
        epoch,
        baseline,
        time_scale,
        seed,
    } = *rig;
    let window = plan.phases.window;
    // Recovery SLAs are scaled with the run, so a fast run can test them; the after phase lasts at least the
    // SLA and two windows, so a late recovery shows as late, not as missing.
    let sla = scaled(scenario.recovery_sla, time_scale);
    let (before, duration) = (scaled(plan.phases.before, time_scale), scaled(scenario.duration, time_scale));
    let after = scaled(plan.phases.after, time_scale).max(sla + 2 * window);
    let started_wall = SystemTime::now();
    let start = epoch.elapsed();
    let cost_at_start = cost.snapshot();
    let mut ticks = Vec::new();
    let mut states = Vec::new();
    let progress = progress.with_total(before + duration + after);
    let sample = |ticks: &mut Vec<Tick>, injected: u64| {
        let at = epoch.elapsed();
        ticks.push(Tick { at, provider_calls: call_count(), injected });
        progress.show(at.saturating_sub(start));
    };

    // Before: the steady state, as it is now.
    progress.phase("before", before);
    sample(&mut ticks, 0);
    while epoch.elapsed() < start + before {
        tokio::time::sleep(window.min(start + before - epoch.elapsed())).await;
        sample(&mut ticks, 0);
    }
    let flags_at_start = state_now(epoch.elapsed(), breaker, flags).degraded;

    // During: arm the scenario's rules (with the run's seed, if one was given) and watch, until the planned
    // end or an abort by the SLO guard, whichever comes first.
    guard.reset();
    let mut config = scenario.chaos.clone();
    if let Some(seed) = seed {
        config.seed = Some(seed);
    }
    let calls_before = call_count();
    let cost_at_fault_start = cost.snapshot();
    let fault_start = epoch.elapsed();
    // The load may be held by the previous scenario's kill switch (it latches): the runner arms explicitly.
    chaos.load(config).map_err(|e| format!("scenario {}: {e}", scenario.name))?;
    chaos.arm().map_err(|e| format!("scenario {}: {e}", scenario.name))?;
    events::emit("arm", &scenario.name, SystemTime::now(), json!({ "seed": chaos.snapshot().seed }));
    progress.phase("fault armed", duration);
    let (mut first_injection, mut aborted_at) = (None, None);
    let mut next_tick = fault_start + window;
    let mut pressure: Vec<Value> = Vec::new();
    let mut pressure_short: Vec<String> = Vec::new();
    // The process's resident memory, sampled with the service's state: it must stay under the budget.
    let mut probe = chaos_core::sense::Probe::new();
    let mut rss_peak = 0u64;
    while epoch.elapsed() < fault_start + duration {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = epoch.elapsed();
        states.push(state_now(now, breaker, flags));
        rss_peak = rss_peak.max(probe.sample().rss_bytes);
        let injected = injected_total(chaos);
        if first_injection.is_none() && injected > 0 {
            first_injection = Some(now - fault_start);
            events::emit("first_injection", &scenario.name, SystemTime::now(), json!({}));
        }
        if let Some(breach) = guard.breach() {
            aborted_at = Some(now - fault_start);
            events::emit("abort", &scenario.name, SystemTime::now(), json!({ "breach": breach.to_string() }));
            break;
        }
        // What the resource pressure (if any) achieved, read while it runs.
        let statuses = chaos.controller().pressure();
        if !statuses.is_empty() {
            pressure = statuses
                .iter()
                .map(|p| json!({ "name": p.name, "kind": p.kind.as_str(), "target": p.target, "achieved": p.achieved }))
                .collect();
            pressure_short = statuses
                .iter()
                .filter(|p| p.achieved < PRESSURE_VALID * p.target)
                .map(|p| format!("{} reached {:.2} of its target {:.2}", p.name, p.achieved, p.target))
                .collect();
        }
        if now >= next_tick {
            sample(&mut ticks, injected);
            next_tick += window;
        }
    }
    let injected = injected_total(chaos);
    sample(&mut ticks, injected);
    // The fault ends now: at the planned end, or at the abort (the guard has disarmed already).
    chaos.disarm();
    let fault_end = epoch.elapsed();
    let cost_at_fault_end = cost.snapshot();
    let fault_end_wall = SystemTime::now();
    events::emit("disarm", &scenario.name, fault_end_wall, json!({ "injected": injected }));
    let calls = call_count() - calls_before;
    let at_fault_end = state_now(fault_end, breaker, flags);

    // After: recovery.
    progress.phase("after", after);
    let mut next_tick = fault_end + window;
    while epoch.elapsed() < fault_end + after {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = epoch.elapsed();
        states.push(state_now(now, breaker, flags));
        if now >= next_tick {
            sample(&mut ticks, injected);
            next_tick += window;
        }
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

    // Detection: fault start → first fallback, breaker open, each flag on; fault end → each flag off,
    // breaker closed.
    let first_fallback = during_samples.iter().filter(|s| s.fallback).map(|s| s.at).min().map(|at| at - fault_start);
    let breaker_opened = first_at(&states, fault_start, |t| !t.breaker_closed).filter(|d| fault_start + *d < fault_end);
    let breaker_closed =
        (!at_fault_end.breaker_closed).then(|| first_at(&states, fault_end, |t| t.breaker_closed)).flatten();
    let mut flags_on: BTreeMap<String, Duration> = BTreeMap::new();
    for t in states.iter().filter(|t| t.at >= fault_start) {
        for name in t.degraded.iter().filter(|n| !flags_at_start.contains(n)) {
            flags_on.entry(name.clone()).or_insert(t.at - fault_start);
        }
    }
    let flags_off: BTreeMap<String, Option<Duration>> = flags_on
        .keys()
        .map(|name| (name.clone(), first_at(&states, fault_end, |t| !t.degraded.contains(name))))
        .collect();

    // Recovery: the first window back on the normal path, from the fault's actual end.
    let normal = Normal {
        max_error_rate: plan.slo.user_error_rate,
        p95_limit: Duration::from_secs_f64(baseline.p95_ms / 1e3 * plan.slo.recovery_p95_factor)
            .max(Duration::from_millis(5))
            .min(plan.slo.recovery_p95),
        baseline_fallback_rate: baseline.fallback_rate,
        baseline_shed_rate: baseline.shed_rate,
        tolerance: 0.01,
    };
    let recovery = recovery_time(&after_samples, &states, fault_end, window, &normal);
    if let Some(r) = recovery {
        // Found after the fact, stamped with when it happened: the fault's end plus the recovery time.
        events::emit("recovery_detected", &scenario.name, fault_end_wall + r, json!({ "recovery_s": r.as_secs_f64() }));
    }

    let injected_rate = if calls == 0 { 0.0 } else { injected as f64 / calls as f64 };
    let band = scenario.injected_band.map(|b| judged_band(b, calls));
    let in_band = band.is_none_or(|[lo, hi]| (lo..=hi).contains(&injected_rate));
    let acceptable = during.worst_error_rate <= plan.slo.user_error_rate;
    let p95_ok = during.p95_ms <= plan.slo.p95.as_secs_f64() * 1e3;
    let budget = plan.service.memory_budget_mib.map(|mib| mib << 20);
    let breach = guard.breach();
    let mut failures = Vec::new();
    if let (Some([lo, hi]), false) = (band, in_band) {
        failures.push(format!("injected rate {injected_rate:.3} of {calls} calls outside [{lo:.3}, {hi:.3}]"));
    }
    if !acceptable {
        let route = during.worst_route.map_or("critical".to_owned(), |r| format!("{r:?}").to_lowercase());
        failures.push(format!(
            "{route} error rate {:.2}% over the SLO {:.2}%",
            during.worst_error_rate * 100.0,
            plan.slo.user_error_rate * 100.0
        ));
    }
    if !p95_ok {
        failures.push(format!("critical p95 {:.1} ms over the SLO {} ms", during.p95_ms, plan.slo.p95.as_millis()));
    }
    if let Some(budget) = budget.filter(|b| rss_peak > *b) {
        failures.push(format!("RSS reached {} MiB, over the {} MiB budget", rss_peak >> 20, budget >> 20));
    }
    for expect in &scenario.expect {
        match flags_on.get(&expect.flag) {
            None => failures.push(format!("{} never turned on", expect.flag)),
            Some(on) if *on > expect.on_within => failures.push(format!(
                "{} turned on after {:.2}s, expected within {:.2}s",
                expect.flag,
                on.as_secs_f64(),
                expect.on_within.as_secs_f64()
            )),
            Some(_) => match flags_off.get(&expect.flag).copied().flatten() {
                None => failures.push(format!("{} still on at the end of the after phase", expect.flag)),
                Some(off) if off > expect.off_within => failures.push(format!(
                    "{} turned off {:.2}s after the fault, expected within {:.2}s",
                    expect.flag,
                    off.as_secs_f64(),
                    expect.off_within.as_secs_f64()
                )),
                Some(_) => {}
            },
        }
    }
    match recovery {
        Some(r) if r <= sla => {}
        Some(r) => {
            failures.push(format!("back to normal after {:.2}s, SLA {:.2}s", r.as_secs_f64(), sla.as_secs_f64()))
        }
        None => failures.push(format!("not back to normal within the {:.2}s after phase", after.as_secs_f64())),
    }
    // A self-check of the measurement: normal means the breaker closed.
    if let (Some(r), Some(closed)) = (recovery, breaker_closed)
        && r + window < closed
    {
        failures.push(format!("recovery {r:?} reported before the breaker closed ({closed:?})"));
    }
    if let Some(breach) = breach {
        failures.push(format!("aborted by the SLO guard: {breach}"));
    }
    // Nothing lost, nothing twice: every acknowledged order is applied, once, when the journal has drained.
    let orders_check = match orders {
        Some(orders) => {
            let drained = orders.drained(Duration::from_secs(5)).await;
            let stats = orders.stats();
            // Applied counts rows inserted under each id's primary key, so none is applied twice; a repeated id
            // is ignored (`duplicates`). More applied than acknowledged is a store call that committed after its
            // timeout while the caller heard of a failure: not lost, not twice.
            if !drained || stats.applied < stats.accepted {
                failures.push(format!(
                    "orders: {} acknowledged, {} applied, {} still in the journal",
                    stats.accepted, stats.applied, stats.backlog
                ));
            }
            Some(stats)
        }
        None => None,
    };
    let verdict = if !pressure_short.is_empty() {
        Verdict::Invalid
    } else if failures.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    if verdict == Verdict::Invalid {
        failures.insert(0, format!("INVALID: the pressure fell short: {}", pressure_short.join("; ")));
    }
    let passed = verdict == Verdict::Pass;
    progress.phase(&format!("done: {}", verdict.as_str()), Duration::ZERO);
    let ended_wall = SystemTime::now();
    let rfc = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    let hypothesis = match (scenario.injected_band, scenario.expect.is_empty()) {
        (Some([lo, hi]), _) => format!(
            "While the provider suffers {} ({:.0}-{:.0}% of calls), users of the critical routes see at most {:.1}%              errors thanks to the fallback, and the service is back on its normal path within {:.1} s of the              fault's end.",
            scenario.description,
            lo * 100.0,
            hi * 100.0,
            plan.slo.user_error_rate * 100.0,
            sla.as_secs_f64()
        ),
        (None, _) => format!(
            "Under {}, the service degrades by itself ({}), its critical routes keep their SLO, and it is back on              its normal path within {:.1} s of the pressure's end.",
            scenario.description,
            scenario.expect.iter().map(|e| e.flag.as_str()).collect::<Vec<_>>().join(", "),
            sla.as_secs_f64()
        ),
    };
    let report = json!({
        "scenario": {
            "name": scenario.name,
            "description": scenario.description,
            "target": scenario.on,
            "fault": scenario.chaos.rules.iter().map(|r| &r.fault).collect::<Vec<_>>(),
            "duration_seconds": duration.as_secs_f64(),
            "planned_duration_seconds": scenario.duration.as_secs_f64(),
            "injected_band": scenario.injected_band,
            "recovery_sla_seconds": sla.as_secs_f64(),
            "planned_recovery_sla_seconds": scenario.recovery_sla.as_secs_f64(),
            "recovery_sla_note": "scaled by the run's time scale, as the phases are; the after phase lasts at least the SLA plus two windows",
            "expected_degradation": scenario.expect.iter().map(|e| json!({
                "flag": e.flag, "on_within_seconds": e.on_within.as_secs_f64(), "off_within_seconds": e.off_within.as_secs_f64(),
            })).collect::<Vec<_>>(),
        },
        "execution": {
            "start": rfc(started_wall),
            "end": rfc(ended_wall),
            "failure_injected": injected > 0,
            "provider_calls": calls,
            "injected_faults": injected,
            "injected_rate": injected_rate,
            "judged_band": band,
            "fault_end": if aborted_at.is_some() { "abort" } else { "planned" },
            "recovery_detected": recovery.is_some(),
            "recovery_time_seconds": secs(recovery),
            "aborted_after_seconds": secs(aborted_at),
            "pressure": pressure,
            "rss_peak_bytes": rss_peak,
            "memory_budget_bytes": budget,
            "orders": orders_check,
            "detection": {
                "first_injection_seconds": secs(first_injection),
                "first_fallback_seconds": secs(first_fallback),
                "breaker_open_seconds": secs(breaker_opened),
                "flags_on_seconds": flags_on.iter().map(|(k, v)| (k.clone(), v.as_secs_f64())).collect::<BTreeMap<_, _>>(),
                "after_fault_end": {
                    "flags_off_seconds": flags_off.iter().map(|(k, v)| (k.clone(), secs(*v))).collect::<BTreeMap<_, _>>(),
                    "breaker_closed_seconds": secs(breaker_closed),
                },
            },
        },
        "hypothesis": hypothesis,
        "metrics": {
            "before": phase(&before_stats, cost_at_fault_start.since(cost_at_start)),
            "during": phase(&during, cost_during),
            "after": phase(&after_stats, cost_at_end.since(cost_at_fault_end)),
        },
        "validation": {
            "verdict": verdict.as_str(),
            "injected_rate_in_band": in_band,
            "failure_rate_acceptable": acceptable,
            "p95_within_slo": p95_ok,
            "recovery_detected": recovery.is_some(),
            "sla_met": recovery.is_some_and(|r| r <= sla),
            "aborted": breach.is_some(),
            "abort_reason": breach.map(|b| b.to_string()),
            "passed": passed,
            "failures": failures,
        },
        "seed": chaos.snapshot().seed,
    });
    Ok(Outcome {
        report,
        verdict,
        passed,
        recovery,
        row: Row {
            injected_rate,
            during,
            cost_during,
            breaker_opened,
            sla,
            degraded: flags_on.into_iter().collect(),
            failures,
        },
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
