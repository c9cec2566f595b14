//! The reports, as typed structures: `<scenario>_report.json` ([`ScenarioReport`]) and
//! `chaos_summary.json` ([`Summary`]) carry the N1V1 suite's fields, with its names and units, beside
//! Brownout's per-phase data.

use std::collections::BTreeMap;

use brownout_chaos::FaultConfig;
use serde::Serialize;

use crate::stats::PhaseStats;
use crate::target::PhaseCost;

/// One scenario's report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ScenarioReport {
    /// What was planned.
    pub scenario: ScenarioInfo,
    /// What ran, and when.
    pub execution: Execution,
    /// What the scenario set out to show.
    pub hypothesis: String,
    /// What the load measured, per phase.
    pub metrics: Metrics,
    /// The judgement.
    pub validation: Validation,
    /// What the service's own monitoring did.
    pub watchdog: Watchdog,
    /// The samplers' seed (write it into the plan, or pass `--seed`, to replay).
    pub seed: u64,
    /// When the report was written (RFC 3339, UTC).
    pub timestamp: String,
}

/// The planned scenario.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ScenarioInfo {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The fault switch its rules went to.
    pub target: String,
    /// Its rules' faults.
    pub fault: Vec<FaultConfig>,
    /// How long the fault was planned to last at this run's time scale.
    pub duration_seconds: f64,
    /// The plan's duration, unscaled.
    pub planned_duration_seconds: f64,
    /// The share of the dependency's calls the faults should hit, in percent (the middle of the band); `null`
    /// for a pressure-only scenario.
    pub expected_failure_rate: Option<f64>,
    /// The band, as fractions.
    pub injected_band: Option<[f64; 2]>,
    /// The recovery SLA at this run's time scale.
    pub sla_recovery_time_seconds: f64,
    /// The plan's SLA, unscaled.
    pub planned_sla_recovery_time_seconds: f64,
    /// The degradation the scenario expects.
    pub expected_degradation: Vec<ExpectedDegradation>,
}

/// A flag the scenario expects to turn on and off.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ExpectedDegradation {
    /// The flag.
    pub flag: String,
    /// On within this of the fault's start.
    pub on_within_seconds: f64,
    /// Off within this of its end.
    pub off_within_seconds: f64,
}

/// How the fault ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaultEnd {
    /// At its planned end.
    Planned,
    /// The SLO guard disarmed it.
    Abort,
    /// The run was interrupted (Ctrl-C, SIGTERM).
    Interrupted,
}

/// What ran.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Execution {
    /// The scenario's start (its before phase), RFC 3339 UTC.
    pub start_time: String,
    /// Its end (the end of its after phase).
    pub end_time: String,
    /// At least one fault was injected (or a pressure ran).
    pub failure_injected: bool,
    /// The service was back on its normal path before the after phase ended.
    pub recovery_detected: bool,
    /// From the fault's actual end to the first window back on the normal path.
    pub recovery_time_seconds: Option<f64>,
    /// Calls that reached the switch's fault layer during the fault (`null`: the target cannot count them).
    pub dependency_calls: Option<u64>,
    /// Faults injected.
    pub injected_faults: u64,
    /// Injected over calls.
    pub injected_rate: Option<f64>,
    /// The band the rate was judged against (the plan's, widened by sampling noise).
    pub judged_band: Option<[f64; 2]>,
    /// How the fault ended.
    pub fault_end: FaultEnd,
    /// When the SLO guard aborted, from the fault's start.
    pub aborted_after_seconds: Option<f64>,
    /// Each resource pressure's target and what it achieved.
    pub pressure: Vec<PressureReport>,
    /// The process's peak resident memory during the fault (in-process targets).
    pub rss_peak_bytes: Option<u64>,
    /// The plan's memory budget.
    pub memory_budget_bytes: Option<u64>,
    /// The target's own checks after the scenario (the demo: its orders).
    pub checks: serde_json::Value,
    /// When the service reacted.
    pub detection: Detection,
}

/// A resource pressure's target and what it achieved.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PressureReport {
    /// Its name.
    pub name: String,
    /// `cpu`, `memory` or `io`.
    pub kind: &'static str,
    /// Its target (cores, bytes, bytes per second).
    pub target: f64,
    /// What it achieved, in the same unit.
    pub achieved: f64,
}

/// When the service reacted, from the fault's start (and after its end).
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Detection {
    /// The first injected fault.
    pub first_injection_seconds: Option<f64>,
    /// Every resource pressure of the scenario at its target (90% of it or more): what `on_within` is timed
    /// from when the scenario applies a pressure.
    pub pressure_in_place_seconds: Option<f64>,
    /// The first fallback answer.
    pub first_fallback_seconds: Option<f64>,
    /// A breaker opened.
    pub breaker_open_seconds: Option<f64>,
    /// Each degrade flag that turned on.
    pub flags_on_seconds: BTreeMap<String, f64>,
    /// After the fault's end.
    pub after_fault_end: AfterFaultEnd,
}

/// What changed back after the fault's end, from its end.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct AfterFaultEnd {
    /// Each flag that had turned on: when it turned off (`null`: not within the after phase).
    pub flags_off_seconds: BTreeMap<String, Option<f64>>,
    /// When every breaker was closed again.
    pub breaker_closed_seconds: Option<f64>,
}

/// One phase's measurements and cost.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PhaseMetrics {
    /// What the load measured.
    #[serde(flatten)]
    pub stats: PhaseStats,
    /// What the finished requests cost (in-process targets with a cost meter).
    pub cost: Option<PhaseCost>,
}

/// The load's measurements: the seed's totals, then each phase.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Metrics {
    /// Requests started before the fault.
    pub requests_before_chaos: usize,
    /// During it.
    pub requests_during_chaos: usize,
    /// After it.
    pub requests_after_chaos: usize,
    /// Critical requests that failed before the fault.
    pub failures_before_chaos: usize,
    /// During it.
    pub failures_during_chaos: usize,
    /// After it.
    pub failures_after_chaos: usize,
    /// The injected share of the dependency's calls, in percent.
    pub chaos_failure_rate: Option<f64>,
    /// Back on the normal path within the SLA.
    pub recovery_successful: bool,
    /// The before phase.
    pub before: PhaseMetrics,
    /// The fault.
    pub during: PhaseMetrics,
    /// The after phase.
    pub after: PhaseMetrics,
}

/// The verdict of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
#[allow(clippy::exhaustive_enums, reason = "a scenario passes or fails")]
pub enum Verdict {
    /// Every check held.
    Pass,
    /// A check failed.
    Fail,
    /// The fault was not what the plan asked for (a pressure below 90% of its target): no conclusion.
    Invalid,
    /// The run was interrupted before the scenario could be judged.
    Interrupted,
}

impl Verdict {
    /// `PASS`, `FAIL`, `INVALID` or `INTERRUPTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Invalid => "INVALID",
            Verdict::Interrupted => "INTERRUPTED",
        }
    }
}

/// The judgement.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Validation {
    /// The verdict.
    pub verdict: Verdict,
    /// Back on the normal path before the after phase ended.
    pub recovery_detected: bool,
    /// How long that took.
    pub recovery_time_seconds: Option<f64>,
    /// Within the SLA.
    pub sla_met: bool,
    /// The critical routes' error rate stayed under the SLO.
    pub failure_rate_acceptable: bool,
    /// The injected rate was inside its band (true when not judged).
    pub injected_rate_in_band: bool,
    /// The critical routes' p95 stayed under the SLO.
    pub p95_within_slo: bool,
    /// The service's monitoring reacted: a breaker opened, a degrade flag turned on, or the SLO guard
    /// aborted (reported, not judged: a fault a fallback absorbs may rightly raise nothing).
    pub watchdog_alerts_fired: bool,
    /// A recovery event was logged (`CHAOS_EVENT` `chaos_recovery_detected`).
    pub recovery_events_logged: bool,
    /// The SLO guard aborted the fault.
    pub aborted: bool,
    /// Why.
    pub abort_reason: Option<String>,
    /// The verdict is PASS.
    pub passed: bool,
    /// Every check that failed, in words.
    pub failures: Vec<String>,
}

/// What the service's monitoring did during the scenario.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Watchdog {
    /// Alerts: breakers opened, flags turned on, the SLO guard's abort.
    pub alerts_count: usize,
    /// Recovery events: breakers closed, flags turned off, back to normal.
    pub recovery_events_count: usize,
    /// The alerts, in order.
    pub alerts: Vec<WatchdogAlert>,
}

/// One alert.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct WatchdogAlert {
    /// From the fault's start.
    pub at_seconds: f64,
    /// `breaker`, `flag` or `slo_guard`.
    pub source: &'static str,
    /// What fired.
    pub message: String,
}

/// `chaos_summary.json`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// How the run was made.
    pub test_run: TestRun,
    /// Its results.
    pub results: Results,
}

/// How the run was made.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TestRun {
    /// When it ended (RFC 3339 UTC).
    pub timestamp: String,
    /// Its length.
    pub duration_seconds: f64,
    /// `sequential` (plan order) or `random`.
    pub mode: &'static str,
    /// Each scenario against its own instance, all at once.
    pub parallel: bool,
    /// How many scenarios were planned.
    pub total_scenarios: usize,
    /// Their names, in the order they ran.
    pub scenarios_run: Vec<String>,
    /// The time scale.
    pub time_scale: f64,
    /// The run's seed (`null`: each scenario drew its own, in its report).
    pub seed: Option<u64>,
    /// What ran against (`the demo service on …`).
    pub target: String,
    /// The run was interrupted: later scenarios did not run.
    pub interrupted: bool,
}

/// The results.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Results {
    /// Scenarios that passed.
    pub passed_scenarios: usize,
    /// That did not (failed, invalid or interrupted).
    pub failed_scenarios: usize,
    /// Passed over run, in percent.
    pub pass_rate_percent: f64,
    /// The mean recovery time of the scenarios that recovered.
    pub average_recovery_time_seconds: Option<f64>,
    /// Each scenario's verdict.
    pub verdicts: BTreeMap<String, Verdict>,
}
