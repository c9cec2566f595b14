//! The GameDay runner: prove that a service degrades gracefully while its dependency fails.
//!
//! The `gameday` example is a thin command line over [`Args::parse`] and [`run`]; tests call [`run`] directly
//! with a small time scale and a temporary `--out` directory. See that example for what a run does.

mod charts;
mod events;
mod html;
mod load;
mod plan;
mod report;
mod scenario;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chaos_core::{Environment, SloGuard, SloLimits, SystemClock};
use chaos_tower::ChaosHandle;
use serde_json::json;
use tokio::time::Instant;

use crate::demo;
use load::Recorder;
pub use plan::Plan;
use report::PhaseStats;
use scenario::Progress;

/// The default `--time-scale`: the whole plan in about a minute.
pub const DEFAULT_TIME_SCALE: f64 = 0.05;

/// The GameDay's options: its command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// `--plan FILE`: the plan (default `configs/chaos/gameday.yaml`).
    pub plan: PathBuf,
    /// `--out DIR`: where the reports go (default `chaos_reports/chaos_run_<UTC timestamp>/`).
    pub out: Option<PathBuf>,
    /// `--mode random`: shuffle the scenarios.
    pub shuffle: bool,
    /// `--time-scale F`: multiplies every phase and fault duration of the plan (SLAs and windows are not scaled).
    pub time_scale: f64,
    /// `--scenarios a,b`: run only these.
    pub scenarios: Option<Vec<String>>,
    /// `--seed N`: the seed of every scenario's samplers.
    pub seed: Option<u64>,
    /// `--parallel`: each scenario against its own service instance, all at once.
    pub parallel: bool,
    /// Off with `--without-fallback`: the demo service without its fallbacks (the cached quote, the orders
    /// journal), a demonstration that the verdicts depend on them (the dependency scenarios then fail).
    pub fallback: bool,
    /// Off with `--without-degrade`: the demo service without its triggers, so nothing degrades by itself (the
    /// pressure scenarios then fail).
    pub degrade: bool,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            plan: PathBuf::from("configs/chaos/gameday.yaml"),
            out: None,
            shuffle: false,
            time_scale: DEFAULT_TIME_SCALE,
            scenarios: None,
            seed: None,
            parallel: false,
            fallback: true,
            degrade: true,
        }
    }
}

impl Args {
    /// Parses the command line (without the program name); errors say which argument and why.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args::default();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--plan" => parsed.plan = value("--plan")?.into(),
                "--out" => parsed.out = Some(value("--out")?.into()),
                "--mode" => match value("--mode")?.as_str() {
                    "random" => parsed.shuffle = true,
                    "ordered" => parsed.shuffle = false,
                    other => return Err(format!("--mode takes `ordered` or `random`, not `{other}`")),
                },
                "--time-scale" => {
                    let text = value("--time-scale")?;
                    parsed.time_scale = text
                        .parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && *f > 0.0 && *f <= 10.0)
                        .ok_or(format!("--time-scale takes a number in (0, 10], not `{text}`"))?;
                }
                "--scenarios" => {
                    parsed.scenarios = Some(value("--scenarios")?.split(',').map(|s| s.trim().to_owned()).collect())
                }
                "--seed" => {
                    let text = value("--seed")?;
                    parsed.seed = Some(text.parse().map_err(|_| format!("--seed takes a whole number, not `{text}`"))?);
                }
                "--parallel" => parsed.parallel = true,
                "--without-fallback" => parsed.fallback = false,
                "--without-degrade" => parsed.degrade = false,
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(parsed)
    }
}

/// The exit status of a run: 0 when every scenario passed, 1 when one failed, 2 when the run could not be
/// made (bad arguments or plan, an unhealthy steady state, a report that could not be written).
pub fn exit_status(result: &Result<bool, String>) -> u8 {
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(_) => 2,
    }
}

/// Loads the plan, picks and orders its scenarios, runs them and writes the reports. `Ok(true)` when every
/// scenario passed, `Ok(false)` when one failed; `Err` when the run could not be made.
pub async fn run(args: &Args) -> Result<bool, String> {
    let mut plan = Plan::load(&args.plan)?;
    if let Some(wanted) = &args.scenarios {
        if let Some(unknown) = wanted.iter().find(|w| !plan.scenarios.iter().any(|s| &s.name == *w)) {
            return Err(format!("--scenarios: no scenario named `{unknown}` in {}", args.plan.display()));
        }
        plan.scenarios.retain(|s| wanted.contains(&s.name));
    }
    if args.shuffle {
        let seed = args.seed.unwrap_or_else(|| {
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
        });
        shuffle(&mut plan.scenarios, seed | 1);
    }
    execute(Arc::new(plan), args).await
}

fn shuffle<T>(items: &mut [T], mut state: u64) {
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// One demo service under load: its chaos switches (the provider's, the order store's), breaker, flags,
/// triggers, SLO guards and load generator, checked healthy.
struct Instance {
    chaos: ChaosHandle,
    orders: demo::OrdersParts,
    demo: demo::Demo,
    _degradation: Option<demo::degrade::Degradation>,
    guard: SloGuard,
    store_guard: SloGuard,
    recorder: Arc<Recorder>,
    stop: tokio::sync::watch::Sender<bool>,
    epoch: Instant,
    baseline: PhaseStats,
}

impl Instance {
    /// Starts a service on a loopback port (its orders stored under `data`), drives it, and runs the
    /// pre-flight: the steady state must be healthy before any fault. `label` names the instance in its
    /// output (`None` when there is one).
    async fn start(plan: &Plan, args: &Args, label: Option<&str>, data: &std::path::Path) -> Result<Instance, String> {
        let chaos = ChaosHandle::for_environment(Environment::Test);
        let flags = degrade_flags::Flags::new();
        std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
        let orders = demo::open_orders(data, &flags, args.fallback, Environment::Test)
            .map_err(|e| format!("{}: {e}", data.display()))?;
        let options = demo::Options {
            timeout: plan.load.client_timeout,
            fallback: args.fallback,
            flags: Some(flags.clone()),
            orders: Some(orders.orders.clone()),
            ..demo::Options::default()
        };
        let demo = demo::app(&chaos, &options);
        let degradation = if args.degrade {
            let mut signals = demo::degrade::Signals::new(demo.breaker.clone(), Some(orders.store_calls.clone()));
            signals.memory_budget = plan.service.memory_budget_mib.map(|mib| mib << 20);
            Some(demo::degrade::Degradation::wire(&flags, signals)?)
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        tokio::spawn(axum::serve(listener, demo.router.clone()).into_future());
        let epoch = Instant::now();
        let a = &plan.slo.abort;
        let limits =
            SloLimits { max_error_rate: a.error_rate, max_p95: a.p95, window: a.window, min_requests: a.min_requests };
        let guard_of = |chaos: &ChaosHandle| {
            SloGuard::new(chaos.controller().clone(), limits, SystemClock).map_err(|e| format!("slo.abort: {e}"))
        };
        let (guard, store_guard) = (guard_of(&chaos)?, guard_of(&orders.store_chaos)?);
        let (recorder, stop) = load::start(
            addr,
            plan.load.rps,
            plan.load.workers,
            plan.load.mix,
            epoch,
            vec![guard.clone(), store_guard.clone()],
        );
        let prefix = label.map_or(String::new(), |l| format!("[{l}] "));
        println!(
            "{prefix}GameDay against the demo service on {addr}: {} rps from {} clients, time scale {}{}{}",
            plan.load.rps,
            plan.load.workers,
            args.time_scale,
            if args.fallback { "" } else { ", WITHOUT the fallbacks" },
            if args.degrade { "" } else { ", WITHOUT the degrade triggers" }
        );

        let warm = Duration::from_millis(500);
        let steady = plan.phases.before.mul_f64(args.time_scale).max(Duration::from_secs(1));
        tokio::time::sleep(warm + steady).await;
        let baseline = PhaseStats::of(&recorder.between(warm, epoch.elapsed()), steady);
        println!(
            "{prefix}pre-flight: {} requests, error rate {:.2}%, p95 {:.1} ms",
            baseline.requests,
            baseline.error_rate * 100.0,
            baseline.p95_ms
        );
        if baseline.error_rate > plan.slo.user_error_rate || baseline.p95_ms > plan.slo.p95.as_secs_f64() * 1e3 {
            let _ = stop.send(true);
            return Err(format!(
                "{prefix}refusing to inject: the steady state is unhealthy (error rate {:.2}% > {:.2}% or p95 \
                 {:.1} ms > {} ms)",
                baseline.error_rate * 100.0,
                plan.slo.user_error_rate * 100.0,
                baseline.p95_ms,
                plan.slo.p95.as_millis()
            ));
        }
        Ok(Instance {
            chaos,
            orders,
            demo,
            _degradation: degradation,
            guard,
            store_guard,
            recorder,
            stop,
            epoch,
            baseline,
        })
    }

    /// Runs one scenario against this instance.
    async fn scenario(
        &self,
        plan: &Plan,
        args: &Args,
        s: &plan::Scenario,
        progress: Progress,
    ) -> Result<scenario::Outcome, String> {
        let provider_calls = || self.demo.counters.provider_calls.load(std::sync::atomic::Ordering::Relaxed);
        let store_calls = || self.orders.orders.store_calls();
        let (chaos, guard, calls): (_, _, &(dyn Fn() -> u64 + Sync)) = match s.on {
            plan::Target::Provider => (&self.chaos, &self.guard, &provider_calls),
            plan::Target::Store => (&self.orders.store_chaos, &self.store_guard, &store_calls),
        };
        let rig = scenario::Rig {
            plan,
            chaos,
            calls,
            orders: Some(&self.orders.orders),
            breaker: &self.demo.breaker,
            flags: &self.demo.flags,
            guard,
            recorder: &self.recorder,
            cost: &self.demo.cost,
            epoch: self.epoch,
            baseline: &self.baseline,
            time_scale: args.time_scale,
            seed: args.seed,
        };
        scenario::run(&rig, s, progress).await
    }

    fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Runs the scenarios, one after another against one instance, or (`--parallel`) each against its own
/// instance at once; results stay in plan order.
async fn scenarios(
    plan: &Arc<Plan>,
    args: &Args,
    dir: &std::path::Path,
) -> Result<Vec<(scenario::Outcome, Arc<Recorder>)>, String> {
    if !args.parallel {
        let instance = Instance::start(plan, args, None, &dir.join("orders")).await?;
        let mut outcomes = Vec::new();
        for s in &plan.scenarios {
            match instance.scenario(plan, args, s, Progress::bar(&s.name)).await {
                Ok(o) => outcomes.push((o, instance.recorder.clone())),
                Err(e) => {
                    instance.stop();
                    return Err(e);
                }
            }
        }
        instance.stop();
        return Ok(outcomes);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..plan.scenarios.len() {
        let (plan, args, dir) = (plan.clone(), args.clone(), dir.to_path_buf());
        tasks.spawn(async move {
            let s = &plan.scenarios[index];
            let data = dir.join(format!("orders-{}", s.name));
            let instance = Instance::start(&plan, &args, Some(&s.name), &data).await?;
            let outcome = instance.scenario(&plan, &args, s, Progress::lines(&s.name)).await;
            instance.stop();
            Ok::<_, String>((index, outcome?, instance.recorder.clone()))
        });
    }
    let mut done: Vec<Option<(scenario::Outcome, Arc<Recorder>)>> = plan.scenarios.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, outcome, recorder) = joined.map_err(|e| format!("a scenario's task failed: {e}"))??;
        done[index] = Some((outcome, recorder));
    }
    Ok(done.into_iter().flatten().collect())
}

async fn execute(plan: Arc<Plan>, args: &Args) -> Result<bool, String> {
    let started = SystemTime::now();
    // The reports, and the orders' database and journal of each service, go to the run's directory.
    let dir = args.out.clone().unwrap_or_else(|| {
        let stamp = humantime::format_rfc3339_seconds(started).to_string().replace(':', "-");
        PathBuf::from("chaos_reports").join(format!("chaos_run_{stamp}"))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let results = scenarios(&plan, args, &dir).await?;
    let (outcomes, recorders): (Vec<_>, Vec<_>) = results.into_iter().unzip();

    println!(
        "\n{:<18} {:>8} {:>11} {:>7} {:>8} {:>6} {:>8} {:>8} {:>9} {:>7} {:>7}  {:<28} verdict",
        "scenario",
        "injected",
        "band",
        "errors",
        "fallback",
        "shed",
        "p95 ms",
        "breaker",
        "recovery",
        "sla",
        "cpu µs",
        "degraded"
    );
    for (s, o) in plan.scenarios.iter().zip(&outcomes) {
        let band = s.injected_band.map_or("-".to_owned(), |[lo, hi]| format!("{lo:.2}-{hi:.2}"));
        let degraded: Vec<String> =
            o.row.degraded.iter().map(|(flag, at)| format!("{flag}@{:.1}s", at.as_secs_f64())).collect();
        println!(
            "{:<18} {:>8.3} {:>11} {:>6.2}% {:>8} {:>6} {:>8.1} {:>8} {:>9} {:>7} {:>7.0}  {:<28} {}",
            s.name,
            o.row.injected_rate,
            band,
            o.row.during.worst_error_rate * 100.0,
            o.row.during.fallbacks,
            o.row.during.shed,
            o.row.during.p95_ms,
            o.row.breaker_opened.map_or("-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64())),
            o.recovery.map_or("never".to_owned(), |r| format!("{:.2}s", r.as_secs_f64())),
            format!("{:.1}s", o.row.sla.as_secs_f64()),
            o.row.cost_during.cpu_ms_per_request * 1e3,
            if degraded.is_empty() { "-".to_owned() } else { degraded.join(" ") },
            if o.passed { "PASS".to_owned() } else { format!("{}: {}", o.verdict.as_str(), o.row.failures.join("; ")) }
        );
    }

    let write = |name: String, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    for (s, o) in plan.scenarios.iter().zip(&outcomes) {
        write(format!("{}_report.json", s.name), serde_json::to_string_pretty(&o.report).map_err(|e| e.to_string())?)?;
    }
    let mut rows = Vec::new();
    for ((s, o), recorder) in plan.scenarios.iter().zip(&outcomes).zip(&recorders) {
        let chart_file = format!("{}.svg", s.name);
        write(chart_file.clone(), charts::svg(&series(s, o, recorder)))?;
        rows.push(html::Row {
            scenario: s.name.clone(),
            passed: o.passed,
            injected_rate: o.row.injected_rate,
            band: s.injected_band,
            verdict: o.verdict.as_str(),
            user_error_rate: o.row.during.worst_error_rate,
            fallbacks: o.row.during.fallbacks as u64,
            p95_ms: o.row.during.p95_ms,
            breaker_open_s: o.row.breaker_opened.map(|d| d.as_secs_f64()),
            recovery_s: o.recovery.map(|r| r.as_secs_f64()),
            recovery_sla_s: o.row.sla.as_secs_f64(),
            failures: o.row.failures.clone(),
            chart_file,
        });
    }
    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    write("report.html".into(), html::report("Brownout GameDay", &stamp, &rows))?;
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let recoveries: Vec<f64> = outcomes.iter().filter_map(|o| o.recovery.map(|r| r.as_secs_f64())).collect();
    let summary = json!({
        "test_run": {
            "timestamp": humantime::format_rfc3339_seconds(started).to_string(),
            "duration_seconds": started.elapsed().unwrap_or_default().as_secs_f64(),
            "mode": if args.shuffle { "random" } else { "ordered" },
            "time_scale": args.time_scale,
            "parallel": args.parallel,
            "fallback": args.fallback,
            "seed": args.seed,
            "scenarios_run": plan.scenarios.iter().map(|s| &s.name).collect::<Vec<_>>(),
        },
        "results": {
            "passed_scenarios": passed,
            "failed_scenarios": outcomes.len() - passed,
            "pass_rate_percent": if outcomes.is_empty() { 0.0 } else { passed as f64 * 100.0 / outcomes.len() as f64 },
            "average_recovery_time_seconds": if recoveries.is_empty() { None } else {
                Some(recoveries.iter().sum::<f64>() / recoveries.len() as f64)
            },
        },
    });
    write("chaos_summary.json".into(), serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?)?;
    let all_passed = passed == outcomes.len();
    println!("\n{} — reports in {}", if all_passed { "PASS" } else { "FAIL" }, dir.display());
    Ok(all_passed)
}

/// The chart data of one scenario: per window, throughput and user error rate from the load generator's
/// samples, injected rate and p95 from the sampled counters and samples; times from the scenario's start.
fn series(s: &plan::Scenario, o: &scenario::Outcome, recorder: &Recorder) -> charts::Series {
    let mut points = Vec::new();
    for pair in o.ticks.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let span = b.at.saturating_sub(a.at);
        // Phase boundaries can leave a sliver between two ticks: too short to say anything about rates.
        if span < Duration::from_millis(50) {
            continue;
        }
        let stats = PhaseStats::of(&recorder.between(a.at, b.at), span);
        let calls = b.provider_calls.saturating_sub(a.provider_calls);
        let injected = b.injected.saturating_sub(a.injected);
        points.push(charts::Point {
            t_s: b.at.saturating_sub(o.start).as_secs_f64(),
            throughput_rps: stats.throughput_rps,
            user_error_rate: stats.error_rate,
            // No call reached the chaos layer (the breaker was open): no rate to draw, a gap.
            injected_rate: if calls == 0 { f64::NAN } else { (injected as f64 / calls as f64).min(1.0) },
            p95_ms: stats.p95_ms,
        });
    }
    charts::Series {
        scenario: s.name.clone(),
        points,
        fault_start_s: o.fault.0.saturating_sub(o.start).as_secs_f64(),
        fault_end_s: o.fault.1.saturating_sub(o.start).as_secs_f64(),
    }
}
