//! The GameDay: prove that a service degrades gracefully while its dependency fails.
//!
//! ```text
//! cargo run --release --example gameday -- [--plan configs/chaos/gameday.yaml] [--out DIR]
//!     [--mode ordered|random] [--time-scale F] [--scenarios a,b] [--seed N]
//! ```
//!
//! Starts the demo service (an axum app whose route calls a simulated quote provider through a fallback, a
//! circuit breaker, a client timeout and chaos-tower's fault layer), drives it over loopback, checks the steady
//! state, then runs each scenario of the plan: a `before` phase, the fault for its `duration`, and an `after`
//! phase, every one multiplied by `--time-scale` (default 0.05). Each scenario is judged on its injected rate
//! (inside its band), the user-visible error rate (under the SLO, thanks to the fallback), its recovery time
//! (within its SLA), and the SLO guard (never tripped). The exit status is 0 only if every scenario passes;
//! reports go to `chaos_reports/chaos_run_<UTC timestamp>/`.

mod charts;
mod events;
mod html;
mod load;
mod plan;
mod report;
mod scenario;
mod service;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use chaos_core::{Environment, SloGuard, SloLimits, SystemClock};
use chaos_tower::ChaosHandle;
use serde_json::json;
use tokio::time::Instant;

use crate::plan::Plan;
use crate::report::PhaseStats;

/// The default `--time-scale`: the whole plan in about a minute.
const DEFAULT_TIME_SCALE: f64 = 0.05;

struct Args {
    plan: PathBuf,
    out: Option<PathBuf>,
    shuffle: bool,
    time_scale: f64,
    scenarios: Option<Vec<String>>,
    seed: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        plan: PathBuf::from("configs/chaos/gameday.yaml"),
        out: None,
        shuffle: false,
        time_scale: DEFAULT_TIME_SCALE,
        scenarios: None,
        seed: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--plan" => args.plan = value("--plan")?.into(),
            "--out" => args.out = Some(value("--out")?.into()),
            "--mode" => match value("--mode")?.as_str() {
                "random" => args.shuffle = true,
                "ordered" => args.shuffle = false,
                other => return Err(format!("--mode takes `ordered` or `random`, not `{other}`")),
            },
            "--time-scale" => {
                let text = value("--time-scale")?;
                args.time_scale = text
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f > 0.0 && *f <= 10.0)
                    .ok_or(format!("--time-scale takes a number in (0, 10], not `{text}`"))?;
            }
            "--scenarios" => {
                args.scenarios = Some(value("--scenarios")?.split(',').map(|s| s.trim().to_owned()).collect())
            }
            "--seed" => {
                let text = value("--seed")?;
                args.seed = Some(text.parse().map_err(|_| format!("--seed takes a whole number, not `{text}`"))?);
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .init();
    let result = match parse_args() {
        Ok(args) => prepare(args).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gameday: {e}");
            ExitCode::from(2)
        }
    }
}

async fn prepare(args: Args) -> Result<bool, String> {
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
    run(&plan, &args).await
}

fn shuffle<T>(items: &mut [T], mut state: u64) {
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

async fn run(plan: &Plan, args: &Args) -> Result<bool, String> {
    let started = SystemTime::now();
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let (app, counters, breaker) = service::app(&chaos, plan.load.client_timeout);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(axum::serve(listener, app).into_future());
    let epoch = Instant::now();
    let a = &plan.slo.abort;
    let limits =
        SloLimits { max_error_rate: a.error_rate, max_p95: a.p95, window: a.window, min_requests: a.min_requests };
    let guard =
        SloGuard::new(chaos.controller().clone(), limits, SystemClock).map_err(|e| format!("slo.abort: {e}"))?;
    let (recorder, stop) = load::start(addr, plan.load.rps, plan.load.workers, epoch, guard.clone());
    println!(
        "GameDay against the demo service on {addr}: {} rps from {} clients, time scale {}",
        plan.load.rps, plan.load.workers, args.time_scale
    );

    // Pre-flight: the steady state must be healthy before any fault.
    let warm = Duration::from_millis(500);
    let steady = plan.phases.before.mul_f64(args.time_scale).max(Duration::from_secs(1));
    tokio::time::sleep(warm + steady).await;
    let baseline = PhaseStats::of(&recorder.between(warm, epoch.elapsed()), steady);
    println!(
        "pre-flight: {} requests, error rate {:.2}%, p95 {:.1} ms",
        baseline.requests,
        baseline.error_rate * 100.0,
        baseline.p95_ms
    );
    if baseline.error_rate > plan.slo.user_error_rate || baseline.p95_ms > plan.slo.p95.as_secs_f64() * 1e3 {
        let _ = stop.send(true);
        return Err(format!(
            "refusing to inject: the steady state is unhealthy (error rate {:.2}% > {:.2}% or p95 {:.1} ms > {} ms)",
            baseline.error_rate * 100.0,
            plan.slo.user_error_rate * 100.0,
            baseline.p95_ms,
            plan.slo.p95.as_millis()
        ));
    }

    let rig = scenario::Rig {
        plan,
        chaos: &chaos,
        breaker: &breaker,
        guard: &guard,
        recorder: &recorder,
        counters: &counters,
        epoch,
        baseline: &baseline,
        time_scale: args.time_scale,
        seed: args.seed,
    };
    let mut outcomes = Vec::new();
    for s in &plan.scenarios {
        outcomes.push(scenario::run(&rig, s).await?);
    }
    let _ = stop.send(true);

    println!(
        "\n{:<18} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8} {:>10} {:>6}  verdict",
        "scenario", "injected", "band", "errors", "fallback", "p95 ms", "breaker", "recovery", "sla"
    );
    for (s, o) in plan.scenarios.iter().zip(&outcomes) {
        let [lo, hi] = s.injected_band;
        println!(
            "{:<18} {:>9.3} {:>9} {:>7.2}% {:>9} {:>9.1} {:>8} {:>10} {:>6}  {}",
            s.name,
            o.row.injected_rate,
            format!("{lo:.2}-{hi:.2}"),
            o.row.during.error_rate * 100.0,
            o.row.during.fallbacks,
            o.row.during.p95_ms,
            o.row.breaker_opened.map_or("-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64())),
            o.recovery.map_or("never".to_owned(), |r| format!("{:.2}s", r.as_secs_f64())),
            format!("{}s", s.recovery_sla.as_secs()),
            if o.passed { "PASS".to_owned() } else { format!("FAIL: {}", o.row.failures.join("; ")) }
        );
    }

    let dir = args.out.clone().unwrap_or_else(|| {
        let stamp = humantime::format_rfc3339_seconds(started).to_string().replace(':', "-");
        PathBuf::from("chaos_reports").join(format!("chaos_run_{stamp}"))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let write = |name: String, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    for (s, o) in plan.scenarios.iter().zip(&outcomes) {
        write(format!("{}_report.json", s.name), serde_json::to_string_pretty(&o.report).map_err(|e| e.to_string())?)?;
    }
    let mut rows = Vec::new();
    for (s, o) in plan.scenarios.iter().zip(&outcomes) {
        let chart_file = format!("{}.svg", s.name);
        write(chart_file.clone(), charts::svg(&series(s, o, &recorder)))?;
        rows.push(html::Row {
            scenario: s.name.clone(),
            passed: o.passed,
            injected_rate: o.row.injected_rate,
            band: s.injected_band,
            user_error_rate: o.row.during.error_rate,
            fallbacks: o.row.during.fallbacks as u64,
            p95_ms: o.row.during.p95_ms,
            breaker_open_s: o.row.breaker_opened.map(|d| d.as_secs_f64()),
            recovery_s: o.recovery.map(|r| r.as_secs_f64()),
            recovery_sla_s: s.recovery_sla.as_secs_f64(),
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
fn series(s: &plan::Scenario, o: &scenario::Outcome, recorder: &load::Recorder) -> charts::Series {
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
