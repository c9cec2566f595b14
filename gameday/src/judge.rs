//! What a scenario's phases found, judged: the per-phase statistics, when the service reacted (detection),
//! what its monitoring raised (the watchdog), when it was back on its normal path (recovery), every check,
//! the verdict, and the report.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::events::EventType;
use crate::load::{Recorder, Sample};
use crate::plan::{Plan, Scenario};
use crate::report::{
    AfterFaultEnd, Detection, Execution, ExpectedDegradation, Metrics, PhaseMetrics, ScenarioInfo, ScenarioReport,
    Validation, Verdict, Watchdog, WatchdogAlert,
};
use crate::scenario::{Fault, Timing, hypothesis};
use crate::stats::{Normal, PhaseStats, StateTick, judged_band, recovery_time};
use crate::target::{CostSample, Settled};

/// Records a chaos event: `(kind, component, at, message, metadata)`.
pub(crate) type Emit<'a> = dyn Fn(EventType, &str, SystemTime, String, Value) + 'a;

/// Everything a scenario measured, for the judgement.
pub(crate) struct Measured<'a> {
    pub plan: &'a Plan,
    pub scenario: &'a Scenario,
    pub switch: &'a str,
    pub timing: Timing,
    pub baseline: &'a PhaseStats,
    pub recorder: &'a Recorder,
    pub in_process: bool,
    pub start: Duration,
    pub started_wall: SystemTime,
    pub end: Duration,
    pub fault: &'a Fault,
    pub states: &'a [StateTick],
    pub flags_at_start: &'a [String],
    /// Failed reads of the target.
    pub errors: &'a [String],
    pub interrupted: bool,
    pub settled: Settled,
    pub cost_at_start: Option<CostSample>,
    pub cost_at_end: Option<CostSample>,
}

fn rfc(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

/// The first instant at or after `from` where `holds`, from `from`.
fn first_at(states: &[StateTick], from: Duration, holds: impl Fn(&StateTick) -> bool) -> Option<Duration> {
    states.iter().find(|t| t.at >= from && holds(t)).map(|t| t.at - from)
}

/// When the service reacted: from the fault's start the first fallback, a breaker opening and each flag
/// turning on; from its end each of those flags turning off and the breakers closing.
struct Detected {
    first_fallback: Option<Duration>,
    breaker_opened: Option<Duration>,
    breaker_closed: Option<Duration>,
    flags_on: BTreeMap<String, Duration>,
    flags_off: BTreeMap<String, Option<Duration>>,
}

impl Detected {
    fn of(m: &Measured<'_>, during: &[Sample]) -> Detected {
        let (f, states) = (m.fault, m.states);
        let first_fallback = during.iter().filter(|s| s.fallback).map(|s| s.at).min().map(|at| at - f.start);
        let breaker_opened = first_at(states, f.start, |t| !t.breaker_closed).filter(|d| f.start + *d < f.end);
        let breaker_closed = (!f.closed_at_end).then(|| first_at(states, f.end, |t| t.breaker_closed)).flatten();
        let mut flags_on: BTreeMap<String, Duration> = BTreeMap::new();
        for t in states.iter().filter(|t| t.at >= f.start) {
            for name in t.degraded.iter().filter(|n| !m.flags_at_start.contains(n)) {
                flags_on.entry(name.clone()).or_insert(t.at - f.start);
            }
        }
        let flags_off = flags_on
            .keys()
            .map(|name| (name.clone(), first_at(states, f.end, |t| !t.degraded.contains(name))))
            .collect();
        Detected { first_fallback, breaker_opened, breaker_closed, flags_on, flags_off }
    }
}

/// The watchdog: what the service's monitoring raised (a breaker opened, a flag on, the guard's abort) and
/// what it logged as recovered, each also a chaos event stamped with when it happened.
fn watchdog(m: &Measured<'_>, d: &Detected, recovery: Option<Duration>, emit: &Emit<'_>) -> Watchdog {
    let f = m.fault;
    let mut alerts = Vec::new();
    if let Some(at) = d.breaker_opened {
        alerts.push(WatchdogAlert {
            at_seconds: at.as_secs_f64(),
            source: "breaker",
            message: "a circuit breaker opened".into(),
        });
        let meta = json!({ "after_seconds": at.as_secs_f64() });
        emit(EventType::ChaosFailureDetected, "breaker", f.start_wall + at, "a circuit breaker opened".into(), meta);
    }
    for (flag, at) in &d.flags_on {
        alerts.push(WatchdogAlert {
            at_seconds: at.as_secs_f64(),
            source: "flag",
            message: format!("{flag} turned on"),
        });
        let meta = json!({ "after_seconds": at.as_secs_f64() });
        emit(EventType::ChaosFailureDetected, flag, f.start_wall + *at, format!("degrade flag {flag} turned on"), meta);
    }
    if let (Some(at), Some(b)) = (f.aborted_at, &f.breach) {
        alerts.push(WatchdogAlert { at_seconds: at.as_secs_f64(), source: "slo_guard", message: b.clone() });
    }
    alerts.sort_by(|a, b| a.at_seconds.total_cmp(&b.at_seconds));
    let mut recovery_events = 0;
    if let Some(at) = d.breaker_closed {
        recovery_events += 1;
        let meta = json!({ "after_fault_end_seconds": at.as_secs_f64() });
        emit(EventType::ChaosRecoveryEvent, "breaker", f.end_wall + at, "the circuit breakers closed".into(), meta);
    }
    for (flag, at) in d.flags_off.iter().filter_map(|(flag, off)| Some((flag, (*off)?))) {
        recovery_events += 1;
        let meta = json!({ "after_fault_end_seconds": at.as_secs_f64() });
        emit(EventType::ChaosRecoveryEvent, flag, f.end_wall + at, format!("degrade flag {flag} turned off"), meta);
    }
    if let Some(r) = recovery {
        recovery_events += 1;
        // Found after the fact, stamped with when it happened: the fault's end plus the recovery time.
        let meta = json!({ "recovery_time_seconds": r.as_secs_f64() });
        let message = format!("{} back to normal", m.scenario.name);
        emit(EventType::ChaosRecoveryDetected, m.switch, f.end_wall + r, message, meta);
    }
    Watchdog { alerts_count: alerts.len(), recovery_events_count: recovery_events, alerts }
}

/// Every check of the scenario, in words: empty when it passes.
struct Checks {
    injected_rate: Option<f64>,
    band: Option<[f64; 2]>,
    in_band: bool,
    acceptable: bool,
    p95_ok: bool,
    failures: Vec<String>,
}

fn check(m: &Measured<'_>, during: &PhaseStats, d: &Detected, recovery: Option<Duration>) -> Checks {
    let (plan, scenario, f, timing) = (m.plan, m.scenario, m.fault, &m.timing);
    let injected_rate = f.calls.map(|c| if c == 0 { 0.0 } else { f.injected as f64 / c as f64 });
    let band = scenario.injected_band.zip(f.calls).map(|(b, c)| judged_band(b, c));
    let in_band = match (band, injected_rate) {
        (Some([lo, hi]), Some(rate)) => (lo..=hi).contains(&rate),
        _ => true,
    };
    let acceptable = during.worst_error_rate <= plan.slo.user_error_rate;
    let p95_ok = during.p95_ms <= plan.slo.p95.as_secs_f64() * 1e3;
    let mut failures = Vec::new();
    if let (Some([lo, hi]), Some(rate), Some(c), false) = (band, injected_rate, f.calls, in_band) {
        failures.push(format!("injected rate {rate:.3} of {c} calls outside [{lo:.3}, {hi:.3}]"));
    }
    if !acceptable {
        let route = during.worst_route.clone().unwrap_or_else(|| "critical".to_owned());
        failures.push(format!(
            "{route} error rate {:.2}% over the SLO {:.2}%",
            during.worst_error_rate * 100.0,
            plan.slo.user_error_rate * 100.0
        ));
    }
    if !p95_ok {
        failures.push(format!("critical p95 {:.1} ms over the SLO {} ms", during.p95_ms, plan.slo.p95.as_millis()));
    }
    let budget = plan.service.memory_budget_mib.map(|mib| mib << 20);
    if let Some(budget) = budget.filter(|b| m.in_process && f.rss_peak > *b) {
        failures.push(format!("RSS reached {} MiB, over the {} MiB budget", f.rss_peak >> 20, budget >> 20));
    }
    for expect in &scenario.expect {
        let Some(on) = d.flags_on.get(&expect.flag) else {
            failures.push(format!("{} never turned on", expect.flag));
            continue;
        };
        if let Some(late) = late_on(&expect.flag, *on, f.pressure_in_place, expect.on_within) {
            failures.push(late);
            continue;
        }
        match d.flags_off.get(&expect.flag).copied().flatten() {
            None => failures.push(format!("{} still on at the end of the after phase", expect.flag)),
            Some(off) if off > expect.off_within => failures.push(format!(
                "{} turned off {:.2}s after the fault, expected within {:.2}s",
                expect.flag,
                off.as_secs_f64(),
                expect.off_within.as_secs_f64()
            )),
            Some(_) => {}
        }
    }
    match recovery {
        Some(r) if r <= timing.sla => {}
        Some(r) => {
            failures.push(format!("back to normal after {:.2}s, SLA {:.2}s", r.as_secs_f64(), timing.sla.as_secs_f64()))
        }
        None => failures.push(format!("not back to normal within the {:.2}s after phase", timing.after.as_secs_f64())),
    }
    // A self-check of the measurement: normal means the breakers closed.
    if let (Some(r), Some(closed)) = (recovery, d.breaker_closed)
        && r + timing.window < closed
    {
        failures.push(format!("recovery {r:?} reported before the breaker closed ({closed:?})"));
    }
    if let Some(b) = &f.breach {
        failures.push(format!("aborted by the SLO guard: {b}"));
    }
    for e in m.errors {
        failures.push(format!("the target did not answer: {e}"));
    }
    failures.extend(m.settled.failures.iter().cloned());
    Checks { injected_rate, band, in_band, acceptable, p95_ok, failures }
}

/// Why `flag`, on `on` after the fault's start, came on too late (`None`: in time). The reaction is timed from
/// the fault's start, or, when the scenario applies a resource pressure, from the moment every pressure was in
/// place (`pressure_in_place`, from the fault's start): building a 700 MiB ballast or spinning burners up takes
/// longer on a busy machine, and that is the fault's ramp, not the service's reaction time.
fn late_on(flag: &str, on: Duration, pressure_in_place: Option<Duration>, within: Duration) -> Option<String> {
    let reaction = on.saturating_sub(pressure_in_place.unwrap_or_default());
    (reaction > within).then(|| {
        let from = match pressure_in_place {
            Some(_) => format!("the pressure was in place ({:.2}s after the fault's start)", on.as_secs_f64()),
            None => "the fault's start".to_owned(),
        };
        format!(
            "{flag} turned on {:.2}s after {from}, expected within {:.2}s",
            reaction.as_secs_f64(),
            within.as_secs_f64()
        )
    })
}

/// Judges what the scenario measured and writes its report; the watchdog's events go to `emit`.
pub(crate) fn report(m: &Measured<'_>, emit: &Emit<'_>) -> ScenarioReport {
    let (plan, scenario, f, timing) = (m.plan, m.scenario, m.fault, &m.timing);
    let routes: Vec<String> = plan.load.routes.iter().map(|r| r.name.clone()).collect();
    let before = PhaseStats::of(&m.recorder.between(m.start, f.start), f.start - m.start, &routes);
    let during_samples = m.recorder.between(f.start, f.end);
    let during = PhaseStats::of(&during_samples, f.end - f.start, &routes);
    let after_samples = m.recorder.between(f.end, m.end);
    let after = PhaseStats::of(&after_samples, m.end - f.end, &routes);
    let detected = Detected::of(m, &during_samples);

    // Recovery: the first window back on the normal path, from the fault's actual end.
    let normal = Normal {
        max_error_rate: plan.slo.user_error_rate,
        p95_limit: Duration::from_secs_f64(m.baseline.p95_ms / 1e3 * plan.slo.recovery_p95_factor)
            .max(Duration::from_millis(5))
            .min(plan.slo.recovery_p95),
        baseline_fallback_rate: m.baseline.fallback_rate,
        baseline_shed_rate: m.baseline.shed_rate,
        tolerance: 0.01,
    };
    let recovery = recovery_time(&after_samples, m.states, f.end, timing.window, &normal);
    let watchdog = watchdog(m, &detected, recovery, emit);
    let mut checks = check(m, &during, &detected, recovery);
    let verdict = if m.interrupted {
        checks.failures.insert(0, "INTERRUPTED: the run was stopped before the scenario ended".into());
        Verdict::Interrupted
    } else if !f.pressure_short.is_empty() {
        checks.failures.insert(0, format!("INVALID: the pressure fell short: {}", f.pressure_short.join("; ")));
        Verdict::Invalid
    } else if checks.failures.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let since = |a: Option<CostSample>, b: Option<CostSample>| a.zip(b).map(|(a, b)| a.since(b));
    let d = &detected;
    ScenarioReport {
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            target: m.switch.to_owned(),
            fault: scenario.chaos.rules.iter().map(|r| r.fault.clone()).collect(),
            duration_seconds: timing.duration.as_secs_f64(),
            planned_duration_seconds: scenario.duration.as_secs_f64(),
            expected_failure_rate: scenario.injected_band.map(|[lo, hi]| (lo + hi) / 2.0 * 100.0),
            injected_band: scenario.injected_band,
            sla_recovery_time_seconds: timing.sla.as_secs_f64(),
            planned_sla_recovery_time_seconds: scenario.recovery_sla.as_secs_f64(),
            expected_degradation: scenario
                .expect
                .iter()
                .map(|e| ExpectedDegradation {
                    flag: e.flag.clone(),
                    on_within_seconds: e.on_within.as_secs_f64(),
                    off_within_seconds: e.off_within.as_secs_f64(),
                })
                .collect(),
        },
        execution: Execution {
            start_time: rfc(m.started_wall),
            end_time: rfc(SystemTime::now()),
            failure_injected: f.injected > 0 || !f.pressure.is_empty(),
            recovery_detected: recovery.is_some(),
            recovery_time_seconds: secs(recovery),
            dependency_calls: f.calls,
            injected_faults: f.injected,
            injected_rate: checks.injected_rate,
            judged_band: checks.band,
            fault_end: f.ended,
            aborted_after_seconds: secs(f.aborted_at),
            pressure: f.pressure.clone(),
            rss_peak_bytes: m.in_process.then_some(f.rss_peak),
            memory_budget_bytes: plan.service.memory_budget_mib.map(|mib| mib << 20),
            checks: m.settled.details.clone(),
            detection: Detection {
                first_injection_seconds: secs(f.first_injection),
                pressure_in_place_seconds: secs(f.pressure_in_place),
                first_fallback_seconds: secs(d.first_fallback),
                breaker_open_seconds: secs(d.breaker_opened),
                flags_on_seconds: d.flags_on.iter().map(|(k, v)| (k.clone(), v.as_secs_f64())).collect(),
                after_fault_end: AfterFaultEnd {
                    flags_off_seconds: d.flags_off.iter().map(|(k, v)| (k.clone(), secs(*v))).collect(),
                    breaker_closed_seconds: secs(d.breaker_closed),
                },
            },
        },
        hypothesis: hypothesis(plan, scenario, m.switch, timing.sla),
        metrics: Metrics {
            requests_before_chaos: before.requests,
            requests_during_chaos: during.requests,
            requests_after_chaos: after.requests,
            failures_before_chaos: before.user_errors,
            failures_during_chaos: during.user_errors,
            failures_after_chaos: after.user_errors,
            chaos_failure_rate: checks.injected_rate.map(|r| r * 100.0),
            recovery_successful: recovery.is_some_and(|r| r <= timing.sla),
            before: PhaseMetrics { stats: before, cost: since(f.cost_at_start, m.cost_at_start) },
            during: PhaseMetrics { stats: during, cost: since(f.cost_at_end, f.cost_at_start) },
            after: PhaseMetrics { stats: after, cost: since(m.cost_at_end, f.cost_at_end) },
        },
        validation: Validation {
            verdict,
            recovery_detected: recovery.is_some(),
            recovery_time_seconds: secs(recovery),
            sla_met: recovery.is_some_and(|r| r <= timing.sla),
            failure_rate_acceptable: checks.acceptable,
            injected_rate_in_band: checks.in_band,
            p95_within_slo: checks.p95_ok,
            watchdog_alerts_fired: !watchdog.alerts.is_empty(),
            recovery_events_logged: recovery.is_some(),
            aborted: f.breach.is_some(),
            abort_reason: f.breach.clone(),
            passed: verdict == Verdict::Pass,
            failures: checks.failures,
        },
        watchdog,
        seed: f.seed,
        timestamp: rfc(SystemTime::now()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(f64) -> Duration = Duration::from_secs_f64;

    #[test]
    fn a_flag_is_timed_from_the_fault_or_from_the_pressure_in_place() {
        // A rule fault: from the fault's start.
        assert_eq!(late_on("f", S(1.9), None, S(2.0)), None);
        assert_eq!(
            late_on("f", S(2.06), None, S(2.0)).as_deref(),
            Some("f turned on 2.06s after the fault's start, expected within 2.00s")
        );
        // A pressure that took 1.8 s to build: the service reacted in 0.26 s.
        assert_eq!(late_on("f", S(2.06), Some(S(1.8)), S(2.0)), None);
        assert_eq!(
            late_on("f", S(4.3), Some(S(1.8)), S(2.0)).as_deref(),
            Some(
                "f turned on 2.50s after the pressure was in place (4.30s after the fault's start), expected within 2.00s"
            )
        );
        // On before the pressure was complete (the trigger fired at 60%): in time.
        assert_eq!(late_on("f", S(0.5), Some(S(1.0)), S(2.0)), None);
    }
}
