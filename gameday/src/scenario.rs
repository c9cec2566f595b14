//! One scenario: before, during (the fault), after; what it measured, what degraded and when, whether the
//! service came back to its normal path, and its verdict. The phases run here; what they found is judged in
//! [`crate::judge`].

use std::time::{Duration, SystemTime};

use brownout_chaos::SloGuard;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::events::{EventLog, EventType};
use crate::judge::{self, Measured};
use crate::load::Recorder;
use crate::plan::{Plan, Scenario};
use crate::progress::Progress;
use crate::report::{FaultEnd, PressureReport, ScenarioReport, Verdict};
use crate::stats::{PhaseStats, StateTick};
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
    /// The breaker and flag states sampled while it ran (the HTML report's lanes).
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

/// The scenario's phases at this run's time scale.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub before: Duration,
    pub duration: Duration,
    pub after: Duration,
    /// The recovery SLA, scaled with the run so a fast run can test it.
    pub sla: Duration,
    /// Recovery windows (not scaled: a property of the service).
    pub window: Duration,
}

impl Timing {
    fn of(plan: &Plan, scenario: &Scenario, scale: f64) -> Timing {
        let window = plan.phases.window;
        let sla = scenario.recovery_sla.mul_f64(scale);
        Timing {
            before: plan.phases.before.mul_f64(scale),
            duration: scenario.duration.mul_f64(scale),
            // At least the SLA and two windows, so a late recovery shows as late, not as missing.
            after: plan.phases.after.mul_f64(scale).max(sla + 2 * window),
            sla,
            window,
        }
    }
}

/// Watches the service: state ticks every [`LOOK_EVERY`], counters every window, the progress, the events.
struct Watch<'r, 'a> {
    rig: &'r Rig<'a>,
    scenario: &'r Scenario,
    progress: Progress,
    start: Duration,
    ticks: Vec<Tick>,
    states: Vec<StateTick>,
    /// Failed reads of the target (a replica not answering), in words.
    errors: Vec<String>,
}

impl Watch<'_, '_> {
    fn now(&self) -> Duration {
        self.rig.epoch.elapsed()
    }

    async fn state(&mut self) {
        let at = self.now();
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
        let at = self.now();
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

    /// Records a chaos event of this scenario.
    fn emit(&self, kind: EventType, component: &str, at: SystemTime, message: String, metadata: Value) {
        self.rig.events.emit(kind, &self.scenario.name, component, at, message, metadata);
    }
}

/// What the fault phase did.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub start: Duration,
    pub start_wall: SystemTime,
    /// The instant the disarm was asked for.
    pub end: Duration,
    pub end_wall: SystemTime,
    pub ended: FaultEnd,
    /// The samplers' seed the rules ran with.
    pub seed: u64,
    /// Faults injected during it (re-based when a new rule set restarted its counters).
    pub injected: u64,
    /// Calls that reached the switch's fault layer during it, when the target counts them.
    pub calls: Option<u64>,
    pub first_injection: Option<Duration>,
    /// When every pressure first reached [`PRESSURE_VALID`] of its target, from the fault's start.
    pub pressure_in_place: Option<Duration>,
    pub aborted_at: Option<Duration>,
    pub breach: Option<String>,
    pub pressure: Vec<PressureReport>,
    /// Pressures below [`PRESSURE_VALID`] of their target, in words.
    pub pressure_short: Vec<String>,
    pub rss_peak: u64,
    pub cost_at_start: Option<CostSample>,
    pub cost_at_end: Option<CostSample>,
    /// Every breaker was closed when the fault ended.
    pub closed_at_end: bool,
}

/// Counts injected faults across a rule set's restart: a count below the one before arming means the rules
/// started again from zero.
#[derive(Debug, Clone, Copy)]
struct Injected {
    base: u64,
    last: u64,
}

impl Injected {
    fn see(&mut self, count: u64) {
        if count < self.base {
            self.base = 0;
        }
        self.last = count;
    }

    fn since_arming(&self) -> u64 {
        self.last.saturating_sub(self.base)
    }
}

/// Runs one scenario and judges it.
pub(crate) async fn run(rig: &Rig<'_>, scenario: &Scenario, progress: Progress) -> Result<Outcome, String> {
    let timing = Timing::of(rig.plan, scenario, rig.time_scale);
    let started_wall = SystemTime::now();
    let start = rig.epoch.elapsed();
    let cost_at_start = rig.target.cost();
    let mut w = Watch {
        rig,
        scenario,
        progress: progress.with_total(timing.before + timing.duration + timing.after),
        start,
        ticks: Vec::new(),
        states: Vec::new(),
        errors: Vec::new(),
    };
    let flags_at_start = before_phase(&mut w, &timing).await;
    let fault = fault_phase(&mut w, &timing).await?;
    after_phase(&mut w, &timing, fault.end).await;
    let end = w.now();
    let cost_at_end = rig.target.cost();
    w.progress.clear();
    let interrupted = w.interrupted() || fault.ended == FaultEnd::Interrupted;
    // The target's own checks (the demo: every acknowledged order applied once); not after an interruption.
    let settled = if interrupted { Default::default() } else { rig.target.settle().await };
    let measured = Measured {
        plan: rig.plan,
        scenario,
        switch: rig.switch,
        timing,
        baseline: rig.baseline,
        recorder: rig.recorder,
        in_process: rig.target.in_process(),
        start,
        started_wall,
        end,
        fault: &fault,
        states: &w.states,
        flags_at_start: &flags_at_start,
        errors: &w.errors,
        interrupted,
        settled,
        cost_at_start,
        cost_at_end,
    };
    let report = judge::report(&measured, &|kind, component, at, message, metadata| {
        w.emit(kind, component, at, message, metadata)
    });
    w.progress.phase(&format!("done: {}", report.validation.verdict.as_str()), Duration::ZERO);
    Ok(Outcome { report, ticks: w.ticks, states: w.states, start, fault: (fault.start, fault.end), end })
}

/// The steady state before the fault, as it is now; returns the flags already away from their default.
async fn before_phase(w: &mut Watch<'_, '_>, timing: &Timing) -> Vec<String> {
    let until = w.start + timing.before;
    w.progress.phase("before", timing.before);
    w.tick().await;
    while w.now() < until && !w.interrupted() {
        w.sleep(timing.window.min(until.saturating_sub(w.now()))).await;
        w.tick().await;
    }
    w.state().await;
    w.states.last().map(|t| t.degraded.clone()).unwrap_or_default()
}

/// Arms the scenario's rules (with the run's seed, if one was given) and watches until the planned end, an abort
/// by the SLO guard, or an interruption, whichever comes first; then disarms.
async fn fault_phase(w: &mut Watch<'_, '_>, timing: &Timing) -> Result<Fault, String> {
    let (rig, scenario) = (w.rig, w.scenario);
    let (target, switch) = (rig.target, rig.switch);
    rig.guard.reset();
    let mut config = scenario.chaos.clone();
    if let Some(seed) = rig.seed {
        config.seed = Some(seed);
    }
    let calls_before = w.counters().await.and_then(|c| c.0);
    let before = w.ticks.last().map_or(0, |t| t.injected);
    let mut injected = Injected { base: before, last: before };
    let mut fault = Fault {
        start: w.now(),
        start_wall: SystemTime::now(),
        end: Duration::ZERO,
        end_wall: SystemTime::now(),
        ended: FaultEnd::Planned,
        seed: rig.seed.unwrap_or_default(),
        injected: 0,
        calls: None,
        first_injection: None,
        pressure_in_place: None,
        aborted_at: None,
        breach: None,
        pressure: Vec::new(),
        pressure_short: Vec::new(),
        rss_peak: 0,
        cost_at_start: target.cost(),
        cost_at_end: None,
        closed_at_end: true,
    };
    if w.interrupted() {
        fault.ended = FaultEnd::Interrupted;
    } else {
        fault.seed = target
            .arm(switch, config)
            .await
            .map_err(|e| format!("scenario {}: arming `{switch}`: {e}", scenario.name))?;
        let message = format!("{} armed on {switch}", scenario.name);
        w.emit(EventType::ChaosArmed, switch, SystemTime::now(), message, json!({ "seed": fault.seed }));
        if let Some((_, now)) = w.counters().await {
            injected.see(now);
        }
        w.progress.phase("fault armed", timing.duration);
        watch_fault(w, timing, &mut fault, &mut injected).await;
    }
    // The fault ends now. Its end is the instant the disarm is asked for: stopping a pressure (its threads, its
    // ballast) or a slow replica's kill switch takes time that recovery must count.
    fault.end = w.now();
    fault.end_wall = SystemTime::now();
    let disarmed = target.disarm(switch).await;
    if let Some(b) = fault.breach.clone() {
        let message = format!("the SLO guard aborted {}: {b}", scenario.name);
        w.emit(EventType::ChaosAborted, switch, fault.end_wall, message, json!({ "breach": b }));
    }
    if let Err(e) = &disarmed {
        w.note(format!("disarm: {e}"));
    }
    injected.see(w.tick().await);
    fault.injected = injected.since_arming();
    let message = format!("{} disarmed on {switch}", scenario.name);
    let metadata = json!({ "injected": fault.injected, "fault_end": fault.ended });
    w.emit(EventType::ChaosDisarmed, switch, fault.end_wall, message, metadata);
    fault.cost_at_end = target.cost();
    fault.calls = w.counters().await.and_then(|c| c.0).zip(calls_before).map(|(now, then)| now.saturating_sub(then));
    w.state().await;
    fault.closed_at_end = w.states.last().is_none_or(|t| t.breaker_closed);
    Ok(fault)
}

/// The watch while the fault is armed: state, RSS, injected faults, the guard, the pressure.
async fn watch_fault(w: &mut Watch<'_, '_>, timing: &Timing, fault: &mut Fault, injected: &mut Injected) {
    let (target, switch) = (w.rig.target, w.rig.switch);
    let mut probe = brownout_chaos::sense::Probe::new();
    let mut next_tick = fault.start + timing.window;
    while w.now() < fault.start + timing.duration {
        w.sleep(LOOK_EVERY).await;
        let now = w.now();
        if w.interrupted() {
            fault.ended = FaultEnd::Interrupted;
            return;
        }
        w.state().await;
        if target.in_process() {
            fault.rss_peak = fault.rss_peak.max(probe.sample().rss_bytes);
        }
        if let Some((_, count)) = w.counters().await {
            injected.see(count);
        }
        if fault.first_injection.is_none() && injected.since_arming() > 0 {
            fault.first_injection = Some(now - fault.start);
            let message = format!("first fault injected on {switch}");
            w.emit(EventType::ChaosFailureInjected, switch, SystemTime::now(), message, json!({}));
        }
        if let Some(b) = w.rig.guard.breach() {
            fault.aborted_at = Some(now - fault.start);
            fault.breach = Some(b.to_string());
            fault.ended = FaultEnd::Abort;
            return;
        }
        // What the resource pressure (if any) achieved, read while it runs.
        let statuses = target.pressure(switch).await;
        if !statuses.is_empty() {
            fault.pressure = statuses
                .iter()
                .map(|p| PressureReport {
                    name: p.name.clone(),
                    kind: p.kind.as_str(),
                    target: p.target,
                    achieved: p.achieved,
                })
                .collect();
            fault.pressure_short = statuses
                .iter()
                .filter(|p| p.achieved < PRESSURE_VALID * p.target)
                .map(|p| format!("{} reached {:.2} of its target {:.2}", p.name, p.achieved, p.target))
                .collect();
            if fault.pressure_in_place.is_none() && fault.pressure_short.is_empty() {
                fault.pressure_in_place = Some(now - fault.start);
            }
        }
        if now >= next_tick {
            w.tick().await;
            next_tick += timing.window;
        }
    }
}

/// Recovery: watched from the fault's end for the after phase (cut short by an interruption).
async fn after_phase(w: &mut Watch<'_, '_>, timing: &Timing, fault_end: Duration) {
    w.progress.phase("after", timing.after);
    let mut next_tick = fault_end + timing.window;
    while w.now() < fault_end + timing.after && !w.interrupted() {
        w.sleep(LOOK_EVERY).await;
        w.state().await;
        if w.now() >= next_tick {
            w.tick().await;
            next_tick += timing.window;
        }
    }
}

/// What the scenario sets out to show, in a sentence or two.
pub(crate) fn hypothesis(plan: &Plan, scenario: &Scenario, switch: &str, sla: Duration) -> String {
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
