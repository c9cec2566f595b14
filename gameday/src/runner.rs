//! Runs a plan against a target: the pre-flight, the scenarios (one after another, or each against its own
//! target at once), the reports.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use brownout_chaos::{Controller, Environment, SloGuard, SloLimits};
use brownout_tower::TokioClock;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::charts;
use crate::events::EventLog;
use crate::load::{self, Recorder};
use crate::plan::{Plan, Scenario};
use crate::progress::{Progress, Style};
use crate::report::{Results, Summary, TestRun, Verdict};
use crate::scenario::{self, Outcome, Rig};
use crate::stats::PhaseStats;
use crate::target::Target;
use crate::write;

/// The default `--time-scale`: the whole shipped plan in a few minutes.
pub const DEFAULT_TIME_SCALE: f64 = 0.05;

/// The order scenarios run in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// The plan's order.
    #[default]
    Sequential,
    /// Shuffled (by `seed`, or by the clock).
    Random,
}

impl Mode {
    /// `sequential` or `random`, as the summary says.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Random => "random",
        }
    }
}

/// How a run is made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Multiplies every phase, fault duration and recovery SLA of the plan.
    pub time_scale: f64,
    /// Run each scenario's fault this long instead of its planned duration (not scaled).
    pub duration: Option<Duration>,
    /// The samplers' seed of every scenario (and the shuffle's).
    pub seed: Option<u64>,
    /// The order.
    pub mode: Mode,
    /// Only these scenarios (by name).
    pub scenarios: Option<Vec<String>>,
    /// Where the reports go; `None`: nowhere (a library run that only wants the [`Run`]).
    pub output_dir: Option<PathBuf>,
    /// A JUnit XML file, one test case per scenario.
    pub junit: Option<PathBuf>,
    /// The run's title in its reports.
    pub title: String,
    /// Where `CHAOS_EVENT` lines go.
    pub events: EventLog,
    /// How progress is shown.
    pub style: Style,
    /// Set to `true` to interrupt the run: the fault in progress is disarmed at once, later scenarios are
    /// skipped, and the reports so far are written, marked interrupted.
    pub interrupt: Option<watch::Receiver<bool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_scale: DEFAULT_TIME_SCALE,
            duration: None,
            seed: None,
            mode: Mode::Sequential,
            scenarios: None,
            output_dir: None,
            junit: None,
            title: "Brownout GameDay".into(),
            events: EventLog::quiet(),
            style: Style::Off,
            interrupt: None,
        }
    }
}

brownout_foundation::setters! {
    impl Options {
        time_scale: f64,
        duration: Some(Duration),
        seed: Some(u64),
        mode: Mode,
        scenarios: Some(Vec<String>),
        output_dir: Some(PathBuf),
        junit: Some(PathBuf),
        title: String,
        events: EventLog,
        style: Style,
        interrupt: Some(watch::Receiver<bool>),
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Run {
    /// Each scenario that ran, in the order it ran.
    pub outcomes: Vec<Outcome>,
    /// `chaos_summary.json`.
    pub summary: Summary,
    /// Where the reports went.
    pub dir: Option<PathBuf>,
    /// What ran against.
    pub target: String,
    /// The run's start.
    pub started: SystemTime,
    /// The plan's time scale.
    pub time_scale: f64,
    /// The scenarios planned (selected and ordered), whether they ran or not.
    pub planned: Vec<String>,
    /// The chart series of each outcome.
    pub(crate) charts: Vec<charts::Series>,
}

impl Run {
    /// Every scenario passed, and the run was not interrupted.
    pub fn passed(&self) -> bool {
        !self.summary.test_run.interrupted && self.outcomes.iter().all(Outcome::passed)
    }

    /// The run was interrupted.
    pub fn interrupted(&self) -> bool {
        self.summary.test_run.interrupted
    }

    /// The outcome of scenario `name`.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.report.scenario.name == name)
    }
}

/// Checks the options against the plan before anything starts (an unknown `--scenarios` name).
pub fn check(plan: &Plan, options: &Options) -> Result<(), String> {
    select(plan, options).map(drop)
}

/// Picks and orders the plan's scenarios by the options; errors name an unknown scenario.
fn select(plan: &Plan, options: &Options) -> Result<Plan, String> {
    let mut plan = plan.clone();
    if let Some(wanted) = &options.scenarios {
        if let Some(unknown) = wanted.iter().find(|w| !plan.scenarios.iter().any(|s| &s.name == *w)) {
            let known: Vec<&str> = plan.scenarios.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("--scenarios: no scenario named `{unknown}` (the plan has: {})", known.join(", ")));
        }
        plan.scenarios.retain(|s| wanted.contains(&s.name));
    }
    if options.mode == Mode::Random {
        let seed = options.seed.unwrap_or_else(|| {
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
        });
        shuffle(&mut plan.scenarios, seed | 1);
    }
    if let Some(d) = options.duration {
        for s in &mut plan.scenarios {
            // `--duration` is the fault's real length: undo the time scale the scenario applies.
            s.duration = d.div_f64(options.time_scale);
        }
    }
    Ok(plan)
}

fn shuffle<T>(items: &mut [T], mut state: u64) {
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// The switch a scenario's rules go to: its `on`, or the target's first.
fn switch_of(s: &Scenario, switches: &[String]) -> Result<String, String> {
    match &s.on {
        Some(on) if switches.contains(on) => Ok(on.clone()),
        Some(on) => Err(format!(
            "scenario {}: `on: {on}`: the target has no such fault switch (it has: {})",
            s.name,
            switches.join(", ")
        )),
        None => switches.first().cloned().ok_or_else(|| format!("scenario {}: the target has no fault switch", s.name)),
    }
}

/// One target under load: its SLO guards (one per switch), the load's recorder and the steady state.
struct Session {
    target: Arc<dyn Target>,
    guards: Vec<(String, SloGuard)>,
    recorder: Arc<Recorder>,
    stop: watch::Sender<bool>,
    epoch: Instant,
    baseline: PhaseStats,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Session {
    /// Starts the load on `target` and runs the pre-flight: the steady state must be healthy before any fault.
    async fn start(
        plan: &Plan,
        options: &Options,
        target: Arc<dyn Target>,
        label: Option<&str>,
    ) -> Result<Session, String> {
        target.check().await?;
        let epoch = Instant::now();
        let a = &plan.slo.abort;
        let limits = SloLimits::new(a.error_rate, a.p95).window(a.window).min_requests(a.min_requests);
        let mut guards = Vec::new();
        for switch in target.switches() {
            // In process, the guard disarms the switch itself; otherwise the runner does, at its next look.
            let controller = target
                .controller(&switch)
                .unwrap_or_else(|| Controller::builder().environment(Environment::Test).build());
            // On tokio's clock, as the runner: its windows follow paused time in a user's test.
            let guard = SloGuard::new(controller, limits, TokioClock).map_err(|e| format!("slo.abort: {e}"))?;
            guards.push((switch, guard));
        }
        let all: Vec<SloGuard> = guards.iter().map(|(_, g)| g.clone()).collect();
        let (recorder, stop) = load::start(target.client(), &plan.load, epoch, all);
        let prefix = label.map_or(String::new(), |l| format!("[{l}] "));
        let say = |text: String| {
            if options.style != Style::Off {
                crate::progress::line(&text);
            }
        };
        say(format!(
            "{prefix}GameDay against {}: {} rps from {} clients, time scale {}",
            target.describe(),
            plan.load.rps,
            plan.load.workers,
            options.time_scale
        ));
        let warm = Duration::from_millis(500);
        let steady = plan.phases.before.mul_f64(options.time_scale).max(Duration::from_secs(1));
        tokio::time::sleep(warm + steady).await;
        let routes: Vec<String> = plan.load.routes.iter().map(|r| r.name.clone()).collect();
        let baseline = PhaseStats::of(&recorder.between(warm, epoch.elapsed()), steady, &routes);
        say(format!(
            "{prefix}pre-flight: {} requests, error rate {:.2}%, p95 {:.1} ms",
            baseline.requests,
            baseline.error_rate * 100.0,
            baseline.p95_ms
        ));
        let session = Session { target, guards, recorder, stop, epoch, baseline };
        let b = &session.baseline;
        if b.requests == 0 || b.error_rate > plan.slo.user_error_rate || b.p95_ms > plan.slo.p95.as_secs_f64() * 1e3 {
            return Err(format!(
                "{prefix}refusing to inject: the steady state is unhealthy ({} requests, error rate {:.2}% > {:.2}% or \
                 p95 {:.1} ms > {} ms)",
                b.requests,
                b.error_rate * 100.0,
                plan.slo.user_error_rate * 100.0,
                b.p95_ms,
                plan.slo.p95.as_millis()
            ));
        }
        Ok(session)
    }

    async fn scenario(
        &self,
        plan: &Plan,
        options: &Options,
        s: &Scenario,
        progress: Progress,
        interrupt: watch::Receiver<bool>,
    ) -> Result<(Outcome, charts::Series), String> {
        let switch = switch_of(s, &self.target.switches())?;
        let guard = &self.guards.iter().find(|(n, _)| *n == switch).expect("a guard per switch").1;
        let rig = Rig {
            plan,
            target: self.target.as_ref(),
            switch: &switch,
            guard,
            recorder: &self.recorder,
            epoch: self.epoch,
            baseline: &self.baseline,
            time_scale: options.time_scale,
            seed: options.seed,
            events: &options.events,
            interrupt,
        };
        let outcome = scenario::run(&rig, s, progress).await;
        if outcome.is_err() {
            // Whatever failed, the fault does not outlive the scenario.
            let _ = self.target.disarm(&switch).await;
        }
        let outcome = outcome?;
        let series = series(plan, &outcome, &self.recorder, &options.events);
        Ok((outcome, series))
    }
}

fn interrupt_of(options: &Options) -> watch::Receiver<bool> {
    options.interrupt.clone().unwrap_or_else(|| watch::channel(false).1)
}

/// Runs `plan` against `target`, the scenarios one after another, and writes the reports to
/// `options.output_dir` (when set). `Err` when the run could not be made (an unknown scenario or switch, an
/// unhealthy steady state, a target that refused to arm, a report that could not be written).
pub async fn run(plan: &Plan, target: Arc<dyn Target>, options: &Options) -> Result<Run, String> {
    let started = SystemTime::now();
    let plan = select(plan, options)?;
    let switches = target.switches();
    for s in &plan.scenarios {
        switch_of(s, &switches)?;
    }
    let interrupt = interrupt_of(options);
    let describe = target.describe();
    let session = Session::start(&plan, options, target, None).await?;
    let mut outcomes = Vec::new();
    let mut charts = Vec::new();
    let count = plan.scenarios.len();
    for (i, s) in plan.scenarios.iter().enumerate() {
        if *interrupt.borrow() {
            break;
        }
        let progress = Progress::new(&s.name, i, count, options.style);
        let (outcome, series) = session.scenario(&plan, options, s, progress, interrupt.clone()).await?;
        outcomes.push(outcome);
        charts.push(series);
    }
    drop(session);
    finish(&plan, options, describe, started, outcomes, charts, *interrupt.borrow(), false)
}

/// Runs each scenario against its own target, all at once: `make(index, scenario)` builds scenario
/// `index`'s target. Results stay in the plan's order.
pub async fn run_parallel<F, Fut>(plan: &Plan, make: F, options: &Options) -> Result<Run, String>
where
    F: Fn(usize, Scenario) -> Fut,
    Fut: Future<Output = Result<Arc<dyn Target>, String>> + Send + 'static,
{
    let started = SystemTime::now();
    let plan = Arc::new(select(plan, options)?);
    let interrupt = interrupt_of(options);
    let mut tasks = tokio::task::JoinSet::new();
    let count = plan.scenarios.len();
    let mut describe = String::new();
    for (index, s) in plan.scenarios.iter().enumerate() {
        let target = make(index, s.clone()).await?;
        switch_of(s, &target.switches())?;
        if describe.is_empty() {
            describe = format!("{} (one instance per scenario)", target.describe());
        }
        let (plan, options, interrupt) = (plan.clone(), options.clone(), interrupt.clone());
        tasks.spawn(async move {
            let s = &plan.scenarios[index];
            let session = Session::start(&plan, &options, target, Some(&s.name)).await?;
            let progress = Progress::new(&s.name, index, count, Style::Lines);
            let done = session.scenario(&plan, &options, s, progress, interrupt).await?;
            Ok::<_, String>((index, done))
        });
    }
    let mut done: Vec<Option<(Outcome, charts::Series)>> = plan.scenarios.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, result) = joined.map_err(|e| format!("a scenario's task failed: {e}"))??;
        done[index] = Some(result);
    }
    let (outcomes, charts) = done.into_iter().flatten().unzip();
    finish(&plan, options, describe, started, outcomes, charts, *interrupt.borrow(), true)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    plan: &Plan,
    options: &Options,
    target: String,
    started: SystemTime,
    outcomes: Vec<Outcome>,
    charts: Vec<charts::Series>,
    interrupted: bool,
    parallel: bool,
) -> Result<Run, String> {
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    let recoveries: Vec<f64> = outcomes.iter().filter_map(|o| o.report.validation.recovery_time_seconds).collect();
    let summary = Summary {
        test_run: TestRun {
            timestamp: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            duration_seconds: started.elapsed().unwrap_or_default().as_secs_f64(),
            mode: options.mode.as_str(),
            parallel,
            total_scenarios: plan.scenarios.len(),
            scenarios_run: outcomes.iter().map(|o| o.report.scenario.name.clone()).collect(),
            time_scale: options.time_scale,
            seed: options.seed,
            target: target.clone(),
            interrupted,
        },
        results: Results {
            passed_scenarios: passed,
            failed_scenarios: outcomes.len() - passed,
            pass_rate_percent: if outcomes.is_empty() { 0.0 } else { passed as f64 * 100.0 / outcomes.len() as f64 },
            average_recovery_time_seconds: (!recoveries.is_empty())
                .then(|| recoveries.iter().sum::<f64>() / recoveries.len() as f64),
            verdicts: outcomes.iter().map(|o| (o.report.scenario.name.clone(), o.verdict())).collect(),
        },
    };
    let run = Run {
        outcomes,
        summary,
        dir: options.output_dir.clone(),
        target,
        started,
        time_scale: options.time_scale,
        planned: plan.scenarios.iter().map(|s| s.name.clone()).collect(),
        charts,
    };
    if let Some(dir) = &options.output_dir {
        write::all(dir, plan, &run, options)?;
    }
    if let Some(junit) = &options.junit {
        write::file(junit, &crate::junit::xml(&run))?;
    }
    Ok(run)
}

/// The chart data of one scenario: per window, throughput, the user error rate and the fallback and shed
/// shares from the load's samples, the injected share of dependency calls from the sampled counters; the
/// breaker and flag lanes from the sampled states; the scenario's chaos events from `events`; the plan's SLO
/// and abort limits. Times are from the scenario's start.
fn series(plan: &Plan, o: &Outcome, recorder: &Recorder, events: &EventLog) -> charts::Series {
    let routes: Vec<String> = plan.load.routes.iter().map(|r| r.name.clone()).collect();
    let since_start = |at: Duration| at.saturating_sub(o.start).as_secs_f64();
    let mut points = Vec::new();
    for pair in o.ticks.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let span = b.at.saturating_sub(a.at);
        // Phase boundaries can leave a sliver between two ticks: too short to say anything about rates.
        if span < Duration::from_millis(50) {
            continue;
        }
        let stats = PhaseStats::of(&recorder.between(a.at, b.at), span, &routes);
        let calls = b.calls.zip(a.calls).map(|(b, a)| b.saturating_sub(a));
        let injected = b.injected.saturating_sub(a.injected);
        // A window without critical (or non-critical) requests has no share to show: a gap.
        let share = |rate: f64, whole: usize| if whole > 0 { rate } else { f64::NAN };
        points.push(charts::Point {
            t_s: since_start(b.at),
            throughput_rps: stats.throughput_rps,
            user_error_rate: stats.error_rate,
            fallback_rate: share(stats.fallback_rate, stats.critical_requests),
            shed_rate: share(stats.shed_rate, stats.non_critical_requests),
            // No call reached the fault layer (the breaker was open), or none counted: a gap.
            injected_rate: match calls {
                Some(c) if c > 0 => (injected as f64 / c as f64).min(1.0),
                _ => f64::NAN,
            },
            p95_ms: stats.p95_ms,
        });
    }
    // The lanes: when a breaker was not closed, and when each flag was on (in the order they first turned on).
    let breaker_open =
        (!o.states.is_empty()).then(|| charts::spans(o.states.iter().map(|t| (since_start(t.at), !t.breaker_closed))));
    let mut names: Vec<&String> = Vec::new();
    for name in o.states.iter().flat_map(|t| &t.degraded) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let flags = names
        .into_iter()
        .map(|flag| charts::FlagLane {
            flag: flag.clone(),
            on: charts::spans(o.states.iter().map(|t| (since_start(t.at), t.degraded.contains(flag)))),
        })
        .collect();
    // The events, placed by their timestamps against the scenario's wall-clock start.
    let started = humantime::parse_rfc3339(&o.report.execution.start_time).ok();
    let events = events
        .of(&o.report.scenario.name)
        .into_iter()
        .map(|e| {
            let at = humantime::parse_rfc3339(&e.timestamp).ok();
            let t_s = match (started, at) {
                (Some(s), Some(at)) => match at.duration_since(s) {
                    Ok(d) => d.as_secs_f64(),
                    Err(early) => -early.duration().as_secs_f64(),
                },
                _ => f64::NAN,
            };
            charts::Marker { t_s, label: format!("{} · {}", e.event_type.label(), e.component_id) }
        })
        .collect();
    let slo = &plan.slo;
    charts::Series {
        scenario: o.report.scenario.name.clone(),
        points,
        fault_start_s: since_start(o.fault.0),
        fault_end_s: since_start(o.fault.1),
        breaker_open,
        flags,
        events,
        thresholds: charts::Thresholds {
            user_error_rate: slo.user_error_rate,
            abort_error_rate: slo.abort.error_rate,
            p95_ms: slo.p95.as_secs_f64() * 1e3,
        },
        injected_band: o.report.scenario.injected_band,
    }
}

/// The exit status of a run: 0 when every scenario passed, 1 when one did not, 2 when the run could not be
/// made, 130 when it was interrupted.
pub fn exit_status(result: &Result<Run, String>) -> u8 {
    match result {
        Ok(run) if run.interrupted() => 130,
        Ok(run) if run.passed() => 0,
        Ok(_) => 1,
        Err(_) => 2,
    }
}

/// Writes the run's tables to standard output: one row per scenario.
pub fn print_table(run: &Run) {
    let mut text = format!(
        "\n{:<18} {:>8} {:>7} {:>8} {:>6} {:>8} {:>8} {:>9} {:>7}  {:<28} verdict",
        "scenario", "injected", "errors", "fallback", "shed", "p95 ms", "breaker", "recovery", "sla", "degraded"
    );
    for o in &run.outcomes {
        let r = &o.report;
        let degraded: Vec<String> =
            r.execution.detection.flags_on_seconds.iter().map(|(flag, at)| format!("{flag}@{at:.1}s")).collect();
        let v = &r.validation;
        text.push_str(&format!(
            "\n{:<18} {:>8} {:>6.2}% {:>8} {:>6} {:>8.1} {:>8} {:>9} {:>7}  {:<28} {}",
            r.scenario.name,
            r.execution.injected_rate.map_or("-".to_owned(), |x| format!("{x:.3}")),
            r.metrics.during.stats.worst_error_rate * 100.0,
            r.metrics.during.stats.fallbacks,
            r.metrics.during.stats.shed,
            r.metrics.during.stats.p95_ms,
            r.execution.detection.breaker_open_seconds.map_or("-".to_owned(), |d| format!("{d:.2}s")),
            v.recovery_time_seconds.map_or("never".to_owned(), |r| format!("{r:.2}s")),
            format!("{:.1}s", r.scenario.sla_recovery_time_seconds),
            if degraded.is_empty() { "-".to_owned() } else { degraded.join(" ") },
            match v.verdict {
                Verdict::Pass => "PASS".to_owned(),
                // INVALID and INTERRUPTED lead their failures with their own name.
                Verdict::Fail => format!("FAIL: {}", v.failures.join("; ")),
                _ => v.failures.join("; "),
            }
        ));
    }
    crate::progress::line(&text);
}

/// The directory a run writes to by default: `chaos_reports/chaos_run_<UTC timestamp>`.
pub fn default_output_dir(now: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(now).to_string().replace(':', "-");
    Path::new("chaos_reports").join(format!("chaos_run_{stamp}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/chaos/gameday.yaml");
        Plan::load(&path).unwrap()
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.scenarios.iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn duration_sets_each_faults_real_length_whatever_the_time_scale() {
        let options = Options { duration: Some(Duration::from_secs(3600)), time_scale: 0.05, ..Options::default() };
        let selected = select(&plan(), &options).unwrap();
        for s in &selected.scenarios {
            // The scenario multiplies by the time scale: an hour, as `--duration 1h` says.
            let scaled = s.duration.mul_f64(options.time_scale);
            assert!((scaled.as_secs_f64() - 3600.0).abs() < 1e-6, "{}: {scaled:?}", s.name);
        }
    }

    #[test]
    fn scenarios_are_picked_by_name_and_shuffled_by_the_seed() {
        let plan = plan();
        let pick =
            Options { scenarios: Some(vec!["disk_slow".into(), "network_partition".into()]), ..Options::default() };
        // Picked, in the plan's order.
        assert_eq!(names(&select(&plan, &pick).unwrap()), ["network_partition", "disk_slow"]);
        let unknown = Options { scenarios: Some(vec!["nope".into()]), ..Options::default() };
        let err = check(&plan, &unknown).unwrap_err();
        assert!(err.contains("`nope`") && err.contains("network_partition"), "{err}");
        let random = |seed| Options { mode: Mode::Random, seed: Some(seed), ..Options::default() };
        let a = names(&select(&plan, &random(1)).unwrap());
        assert_eq!(a, names(&select(&plan, &random(1)).unwrap()), "the same seed, the same order");
        let mut sorted = a.clone();
        sorted.sort();
        let mut all = names(&plan);
        all.sort();
        assert_eq!(sorted, all, "a shuffle keeps every scenario once");
        assert!((2..20).any(|seed| names(&select(&plan, &random(seed)).unwrap()) != a), "seeds change the order");
    }
}
