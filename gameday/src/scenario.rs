//! One scenario: before, during (the fault), after; what it measured, what degraded and when, whether the
//! service came back to its normal path, and its verdict.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use chaos_core::SloGuard;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::{EventLog, EventType};
use crate::load::Recorder;
use crate::plan::{Plan, Scenario};
use crate::progress::Progress;
use crate::report::{
    AfterFaultEnd, Detection, Execution, ExpectedDegradation, FaultEnd, Metrics, PhaseMetrics, PressureReport,
    ScenarioInfo, ScenarioReport, Validation, Verdict, Watchdog, WatchdogAlert,
};
use crate::stats::{Normal, PhaseStats, StateTick, judged_band, recovery_time};
use crate::target::{CostSample, Target};

/// Everything a scenario runs against.
pub(crate) struct Rig<'a> {
    pub plan: &'a Plan,
    pub target: &'a dyn Target,
    /// The switch the scenario's rules go to.
    pub switch: &'a str,
    pub guard: &'a SloGuard,
    pub recorder: &'a Recorder,
    pub epoch: Instant,
    pub baseline: &'a PhaseStats,
    pub time_scale: f64,
    pub seed: Option<u64>,
    pub events: &'a EventLog,
    /// Set when the run is interrupted: the fault ends at once and the scenario is reported as interrupted.
    pub interrupt: watch::Receiver<bool>,
}

/// A point of the scenario's time series: cumulative counters, sampled every recovery window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tick {
    pub at: Duration,
    pub calls: Option<u64>,
    pub injected: u64,
}

/// What a scenario produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The report.
    pub report: ScenarioReport,
    /// Its time series, for the charts.
    pub(crate) ticks: Vec<Tick>,
    /// The breaker and flag states sampled while it ran (the charts' lanes).
    pub(crate) states: Vec<StateTick>,
    /// Its start and the fault's start and end, from the run's epoch.
    pub(crate) start: Duration,
    pub(crate) fault: (Duration, Duration),
    pub(crate) end: Duration,
}

impl Outcome {
    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.report.validation.verdict
    }

    /// The verdict is PASS.
    pub fn passed(&self) -> bool {
        self.report.validation.passed
    }
}

/// A pressure must reach this share of its target for the scenario to say anything.
const PRESSURE_VALID: f64 = 0.9;

/// How often the service's state is read while a scenario runs.
const LOOK_EVERY: Duration = Duration::from_millis(20);

fn scaled(d: Duration, scale: f64) -> Duration {
    d.mul_f64(scale)
}

fn rfc(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

/// When things changed, from the state ticks: the first instant it holds at or after `from`.
fn first_at(states: &[StateTick], from: Duration, holds: impl Fn(&StateTick) -> bool) -> Option<Duration> {
    states.iter().find(|t| t.at >= from && holds(t)).map(|t| t.at - from)
}

/// Watches the service between two instants: state ticks every [`LOOK_EVERY`], counters every window.
struct Watch<'r, 'a> {
    rig: &'r Rig<'a>,
    progress: Progress,
    start: Duration,
    ticks: Vec<Tick>,
    states: Vec<StateTick>,
    /// Failed reads of the target (a replica not answering), in words.
    errors: Vec<String>,
}

impl Watch<'_, '_> {
    async fn state(&mut self) {
        let at = self.rig.epoch.elapsed();
        match self.rig.target.state().await {
            Ok(state) => self.states.push(StateTick {
                at,
                breaker_closed: state.breakers_open.is_empty(),
                degraded: state.degraded,
            }),
            Err(e) => self.note(format!("state: {e}")),
        }
    }

    async fn counters(&mut self) -> Option<(Option<u64>, u64)> {
        match self.rig.target.counters(self.rig.switch).await {
            Ok(c) => Some((c.calls, c.injected)),
            Err(e) => {
                self.note(format!("counters: {e}"));
                None
            }
        }
    }

    fn note(&mut self, error: String) {
        if self.errors.len() < 10 && !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    async fn tick(&mut self) -> u64 {
        let at = self.rig.epoch.elapsed();
        let (calls, injected) = self.counters().await.unwrap_or((None, self.ticks.last().map_or(0, |t| t.injected)));
        self.ticks.push(Tick { at, calls, injected });
        self.progress.show(at.saturating_sub(self.start));
        injected
    }

    fn interrupted(&self) -> bool {
        *self.rig.interrupt.borrow()
    }

    /// Sleeps `d`, or less if the run is interrupted.
    async fn sleep(&self, d: Duration) {
        let mut interrupt = self.rig.interrupt.clone();
        // A closed channel (nobody can interrupt) disables the second branch: the sleep runs its course.
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            Ok(_) = interrupt.wait_for(|i| *i) => {}
        }
    }
}

/// Runs one scenario and judges it.
pub(crate) async fn run(rig: &Rig<'_>, scenario: &Scenario, progress: Progress) -> Result<Outcome, String> {
    let Rig { plan, target, switch, guard, recorder, epoch, baseline, time_scale, seed, events, .. } = *rig;
    let window = plan.phases.window;
    let routes: Vec<String> = plan.load.routes.iter().map(|r| r.name.clone()).collect();
    // Recovery SLAs are scaled with the run, so a fast run can test them; the after phase lasts at least the
    // SLA and two windows, so a late recovery shows as late, not as missing.
    let sla = scaled(scenario.recovery_sla, time_scale);
    let (before, duration) = (scaled(plan.phases.before, time_scale), scaled(scenario.duration, time_scale));
    let after = scaled(plan.phases.after, time_scale).max(sla + 2 * window);
    let started_wall = SystemTime::now();
    let start = epoch.elapsed();
    let cost = || target.cost();
    let cost_at_start = cost();
    let mut w = Watch {
        rig,
        progress: progress.with_total(before + duration + after),
        start,
        ticks: Vec::new(),
        states: Vec::new(),
        errors: Vec::new(),
    };
    let emit = |kind, component: &str, at: SystemTime, message: String, meta| {
        events.emit(kind, &scenario.name, component, at, message, meta);
    };

    // Before: the steady state, as it is now.
    w.progress.phase("before", before);
    w.tick().await;
    while epoch.elapsed() < start + before && !w.interrupted() {
        w.sleep(window.min(start + before - epoch.elapsed())).await;
        w.tick().await;
    }
    w.state().await;
    let flags_at_start = w.states.last().map(|t| t.degraded.clone()).unwrap_or_default();

    // During: arm the scenario's rules (with the run's seed, if one was given) and watch, until the planned
    // end, an abort by the SLO guard, or an interruption, whichever comes first.
    guard.reset();
    let mut config = scenario.chaos.clone();
    if let Some(seed) = seed {
        config.seed = Some(seed);
    }
    let calls_before = w.counters().await.and_then(|c| c.0);
    let injected_before = w.ticks.last().map_or(0, |t| t.injected);
    let cost_at_fault_start = cost();
    let fault_start = epoch.elapsed();
    let mut fault_end_kind = FaultEnd::Planned;
    let (mut first_injection, mut aborted_at, mut breach) = (None, None, None);
    let mut pressure: Vec<PressureReport> = Vec::new();
    let mut pressure_short: Vec<String> = Vec::new();
    let mut probe = chaos_core::sense::Probe::new();
    let mut rss_peak = 0u64;
    let mut injected = injected_before;
    let mut base = injected_before;
    let armed_seed = if w.interrupted() {
        fault_end_kind = FaultEnd::Interrupted;
        seed.unwrap_or_default()
    } else {
        let armed = target
            .arm(switch, config)
            .await
            .map_err(|e| format!("scenario {}: arming `{switch}`: {e}", scenario.name))?;
        emit(
            EventType::ChaosArmed,
            switch,
            SystemTime::now(),
            format!("{} armed on {switch}", scenario.name),
            json!({ "seed": armed }),
        );
        if let Some((_, now)) = w.counters().await
            && now < base
        {
            base = 0;
        }
        w.progress.phase("fault armed", duration);
        let mut next_tick = fault_start + window;
        while epoch.elapsed() < fault_start + duration {
            w.sleep(LOOK_EVERY).await;
            let now = epoch.elapsed();
            if w.interrupted() {
                fault_end_kind = FaultEnd::Interrupted;
                break;
            }
            w.state().await;
            if target.in_process() {
                rss_peak = rss_peak.max(probe.sample().rss_bytes);
            }
            if let Some((_, now_injected)) = w.counters().await {
                // A changed rule set restarts its rules' counters: a count below the one before arming means
                // they started again from zero.
                if now_injected < base {
                    base = 0;
                }
                injected = now_injected;
            }
            if first_injection.is_none() && injected > base {
                first_injection = Some(now - fault_start);
                emit(
                    EventType::ChaosFailureInjected,
                    switch,
                    SystemTime::now(),
                    format!("first fault injected on {switch}"),
                    json!({}),
                );
            }
            if let Some(b) = guard.breach() {
                aborted_at = Some(now - fault_start);
                breach = Some(b.to_string());
                fault_end_kind = FaultEnd::Abort;
                break;
            }
            // What the resource pressure (if any) achieved, read while it runs.
            let statuses = target.pressure(switch).await;
            if !statuses.is_empty() {
                pressure = statuses
                    .iter()
                    .map(|p| PressureReport {
                        name: p.name.clone(),
                        kind: p.kind.as_str(),
                        target: p.target,
                        achieved: p.achieved,
                    })
                    .collect();
                pressure_short = statuses
                    .iter()
                    .filter(|p| p.achieved < PRESSURE_VALID * p.target)
                    .map(|p| format!("{} reached {:.2} of its target {:.2}", p.name, p.achieved, p.target))
                    .collect();
            }
            if now >= next_tick {
                w.tick().await;
                next_tick += window;
            }
        }
        armed
    };
    // The fault ends now: at the planned end, at the abort, or at the interruption. Its end is the instant the
    // disarm is asked for: stopping a pressure (its threads, its ballast) takes time that recovery must count.
    let fault_end = epoch.elapsed();
    let fault_end_wall = SystemTime::now();
    let disarmed = target.disarm(switch).await;
    if let Some(b) = &breach {
        emit(
            EventType::ChaosAborted,
            switch,
            fault_end_wall,
            format!("the SLO guard aborted {}: {b}", scenario.name),
            json!({ "breach": b }),
        );
    }
    if let Err(e) = &disarmed {
        w.note(format!("disarm: {e}"));
    }
    let end_injected = w.tick().await;
    if end_injected < base {
        base = 0;
    }
    injected = injected.max(end_injected);
    emit(
        EventType::ChaosDisarmed,
        switch,
        fault_end_wall,
        format!("{} disarmed on {switch}", scenario.name),
        json!({ "injected": injected.saturating_sub(base), "fault_end": fault_end_kind }),
    );
    let cost_at_fault_end = cost();
    let calls = w.counters().await.and_then(|c| c.0).zip(calls_before).map(|(now, then)| now.saturating_sub(then));
    w.state().await;
    let at_fault_end_closed = w.states.last().is_none_or(|t| t.breaker_closed);

    // After: recovery (cut short by an interruption).
    w.progress.phase("after", after);
    let mut next_tick = fault_end + window;
    while epoch.elapsed() < fault_end + after && !w.interrupted() {
        w.sleep(LOOK_EVERY).await;
        w.state().await;
        if epoch.elapsed() >= next_tick {
            w.tick().await;
            next_tick += window;
        }
    }
    let end = epoch.elapsed();
    let cost_at_end = cost();
    w.progress.clear();
    let injected = injected.saturating_sub(base);
    let interrupted = w.interrupted() || fault_end_kind == FaultEnd::Interrupted;

    let before_stats = PhaseStats::of(&recorder.between(start, fault_start), fault_start - start, &routes);
    let during_samples = recorder.between(fault_start, fault_end);
    let during = PhaseStats::of(&during_samples, fault_end - fault_start, &routes);
    let after_samples = recorder.between(fault_end, end);
    let after_stats = PhaseStats::of(&after_samples, end - fault_end, &routes);
    let states = &w.states;

    // Detection: fault start → first fallback, breaker open, each flag on; fault end → each flag off,
    // breakers closed.
    let first_fallback = during_samples.iter().filter(|s| s.fallback).map(|s| s.at).min().map(|at| at - fault_start);
    let breaker_opened = first_at(states, fault_start, |t| !t.breaker_closed).filter(|d| fault_start + *d < fault_end);
    let breaker_closed = (!at_fault_end_closed).then(|| first_at(states, fault_end, |t| t.breaker_closed)).flatten();
    let mut flags_on: BTreeMap<String, Duration> = BTreeMap::new();
    for t in states.iter().filter(|t| t.at >= fault_start) {
        for name in t.degraded.iter().filter(|n| !flags_at_start.contains(n)) {
            flags_on.entry(name.clone()).or_insert(t.at - fault_start);
        }
    }
    let flags_off: BTreeMap<String, Option<Duration>> = flags_on
        .keys()
        .map(|name| (name.clone(), first_at(states, fault_end, |t| !t.degraded.contains(name))))
        .collect();

    // The watchdog: what the service's monitoring raised, and what it logged as recovered.
    let mut alerts = Vec::new();
    if let Some(at) = breaker_opened {
        alerts.push(WatchdogAlert {
            at_seconds: at.as_secs_f64(),
            source: "breaker",
            message: "a circuit breaker opened".into(),
        });
        emit(
            EventType::ChaosFailureDetected,
            "breaker",
            fault_start_wall(started_wall, start, fault_start) + at,
            "a circuit breaker opened".into(),
            json!({ "after_seconds": at.as_secs_f64() }),
        );
    }
    for (flag, at) in &flags_on {
        alerts.push(WatchdogAlert {
            at_seconds: at.as_secs_f64(),
            source: "flag",
            message: format!("{flag} turned on"),
        });
        emit(
            EventType::ChaosFailureDetected,
            flag,
            fault_start_wall(started_wall, start, fault_start) + *at,
            format!("degrade flag {flag} turned on"),
            json!({ "after_seconds": at.as_secs_f64() }),
        );
    }
    if let (Some(at), Some(b)) = (aborted_at, &breach) {
        alerts.push(WatchdogAlert { at_seconds: at.as_secs_f64(), source: "slo_guard", message: b.clone() });
    }
    alerts.sort_by(|a, b| a.at_seconds.total_cmp(&b.at_seconds));
    let mut recovery_events = 0;
    if let Some(at) = breaker_closed {
        recovery_events += 1;
        emit(
            EventType::ChaosRecoveryEvent,
            "breaker",
            fault_end_wall + at,
            "the circuit breakers closed".into(),
            json!({ "after_fault_end_seconds": at.as_secs_f64() }),
        );
    }
    for (flag, off) in &flags_off {
        if let Some(at) = off {
            recovery_events += 1;
            emit(
                EventType::ChaosRecoveryEvent,
                flag,
                fault_end_wall + *at,
                format!("degrade flag {flag} turned off"),
                json!({ "after_fault_end_seconds": at.as_secs_f64() }),
            );
        }
    }

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
    let recovery = recovery_time(&after_samples, states, fault_end, window, &normal);
    if let Some(r) = recovery {
        recovery_events += 1;
        // Found after the fact, stamped with when it happened: the fault's end plus the recovery time.
        emit(
            EventType::ChaosRecoveryDetected,
            switch,
            fault_end_wall + r,
            format!("{} back to normal", scenario.name),
            json!({ "recovery_time_seconds": r.as_secs_f64() }),
        );
    }

    let injected_rate = calls.map(|c| if c == 0 { 0.0 } else { injected as f64 / c as f64 });
    let band = scenario.injected_band.zip(calls).map(|(b, c)| judged_band(b, c));
    let in_band = match (band, injected_rate) {
        (Some([lo, hi]), Some(rate)) => (lo..=hi).contains(&rate),
        _ => true,
    };
    let acceptable = during.worst_error_rate <= plan.slo.user_error_rate;
    let p95_ok = during.p95_ms <= plan.slo.p95.as_secs_f64() * 1e3;
    let budget = plan.service.memory_budget_mib.map(|mib| mib << 20);
    let mut failures = Vec::new();
    if let (Some([lo, hi]), Some(rate), Some(c), false) = (band, injected_rate, calls, in_band) {
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
    if let Some(budget) = budget.filter(|b| target.in_process() && rss_peak > *b) {
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
    // A self-check of the measurement: normal means the breakers closed.
    if let (Some(r), Some(closed)) = (recovery, breaker_closed)
        && r + window < closed
    {
        failures.push(format!("recovery {r:?} reported before the breaker closed ({closed:?})"));
    }
    if let Some(b) = &breach {
        failures.push(format!("aborted by the SLO guard: {b}"));
    }
    for e in &w.errors {
        failures.push(format!("the target did not answer: {e}"));
    }
    // The target's own checks (the demo: every acknowledged order applied once).
    let settled = if interrupted { Default::default() } else { target.settle().await };
    failures.extend(settled.failures.iter().cloned());
    let verdict = if interrupted {
        failures.insert(0, "INTERRUPTED: the run was stopped before the scenario ended".into());
        Verdict::Interrupted
    } else if !pressure_short.is_empty() {
        failures.insert(0, format!("INVALID: the pressure fell short: {}", pressure_short.join("; ")));
        Verdict::Invalid
    } else if failures.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let passed = verdict == Verdict::Pass;
    w.progress.phase(&format!("done: {}", verdict.as_str()), Duration::ZERO);
    let ended_wall = SystemTime::now();
    let hypothesis = hypothesis(plan, scenario, switch, sla);
    let phase = |stats: PhaseStats, cost: Option<crate::target::PhaseCost>| PhaseMetrics { stats, cost };
    let since = |a: Option<CostSample>, b: Option<CostSample>| a.zip(b).map(|(a, b)| a.since(b));
    let report = ScenarioReport {
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            target: switch.to_owned(),
            fault: scenario.chaos.rules.iter().map(|r| r.fault.clone()).collect(),
            duration_seconds: duration.as_secs_f64(),
            planned_duration_seconds: scenario.duration.as_secs_f64(),
            expected_failure_rate: scenario.injected_band.map(|[lo, hi]| (lo + hi) / 2.0 * 100.0),
            injected_band: scenario.injected_band,
            sla_recovery_time_seconds: sla.as_secs_f64(),
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
            start_time: rfc(started_wall),
            end_time: rfc(ended_wall),
            failure_injected: injected > 0 || !pressure.is_empty(),
            recovery_detected: recovery.is_some(),
            recovery_time_seconds: secs(recovery),
            dependency_calls: calls,
            injected_faults: injected,
            injected_rate,
            judged_band: band,
            fault_end: fault_end_kind,
            aborted_after_seconds: secs(aborted_at),
            pressure,
            rss_peak_bytes: target.in_process().then_some(rss_peak),
            memory_budget_bytes: budget,
            checks: settled.details,
            detection: Detection {
                first_injection_seconds: secs(first_injection),
                first_fallback_seconds: secs(first_fallback),
                breaker_open_seconds: secs(breaker_opened),
                flags_on_seconds: flags_on.iter().map(|(k, v)| (k.clone(), v.as_secs_f64())).collect(),
                after_fault_end: AfterFaultEnd {
                    flags_off_seconds: flags_off.iter().map(|(k, v)| (k.clone(), secs(*v))).collect(),
                    breaker_closed_seconds: secs(breaker_closed),
                },
            },
        },
        hypothesis,
        metrics: Metrics {
            requests_before_chaos: before_stats.requests,
            requests_during_chaos: during.requests,
            requests_after_chaos: after_stats.requests,
            failures_before_chaos: before_stats.user_errors,
            failures_during_chaos: during.user_errors,
            failures_after_chaos: after_stats.user_errors,
            chaos_failure_rate: injected_rate.map(|r| r * 100.0),
            recovery_successful: recovery.is_some_and(|r| r <= sla),
            before: phase(before_stats, since(cost_at_fault_start, cost_at_start)),
            during: phase(during, since(cost_at_fault_end, cost_at_fault_start)),
            after: phase(after_stats, since(cost_at_end, cost_at_fault_end)),
        },
        validation: Validation {
            verdict,
            recovery_detected: recovery.is_some(),
            recovery_time_seconds: secs(recovery),
            sla_met: recovery.is_some_and(|r| r <= sla),
            failure_rate_acceptable: acceptable,
            injected_rate_in_band: in_band,
            p95_within_slo: p95_ok,
            watchdog_alerts_fired: !alerts.is_empty(),
            recovery_events_logged: recovery.is_some(),
            aborted: breach.is_some(),
            abort_reason: breach,
            passed,
            failures,
        },
        watchdog: Watchdog { alerts_count: alerts.len(), recovery_events_count: recovery_events, alerts },
        seed: armed_seed,
        timestamp: rfc(SystemTime::now()),
    };
    Ok(Outcome { report, ticks: w.ticks, states: w.states, start, fault: (fault_start, fault_end), end })
}

/// The wall-clock instant of the fault's start, from the scenario's wall start and the run's offsets.
fn fault_start_wall(started_wall: SystemTime, start: Duration, fault_start: Duration) -> SystemTime {
    started_wall + fault_start.saturating_sub(start)
}

/// What the scenario sets out to show, in a sentence or two.
fn hypothesis(plan: &Plan, scenario: &Scenario, switch: &str, sla: Duration) -> String {
    let what = if scenario.description.is_empty() { "a fault".to_owned() } else { scenario.description.clone() };
    let degrades = if scenario.expect.is_empty() {
        String::new()
    } else {
        let flags: Vec<&str> = scenario.expect.iter().map(|e| e.flag.as_str()).collect();
        format!(" It degrades by itself ({}).", flags.join(", "))
    };
    let fault = match scenario.injected_band {
        Some([lo, hi]) => {
            format!("With `{switch}` failing ({what}; {:.0}-{:.0}% of its calls)", lo * 100.0, hi * 100.0)
        }
        None => format!("Under pressure ({what})"),
    };
    format!(
        "{fault}, the critical routes keep their error rate under {:.1}% and the service is back on its normal \
         path within {:.1} s of the fault's end.{degrades}",
        plan.slo.user_error_rate * 100.0,
        sla.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hypothesis_reads_as_one_sentence() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/chaos/gameday.yaml");
        let plan = crate::plan::Plan::load(&path).unwrap();
        for s in &plan.scenarios {
            let text = hypothesis(&plan, s, "provider", Duration::from_secs(3));
            assert!(!text.contains('\\') && !text.contains("  "), "{}: {text:?}", s.name);
            assert!(text.ends_with('.'), "{text}");
        }
    }
}
