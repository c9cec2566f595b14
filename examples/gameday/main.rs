//! The GameDay: prove that a service degrades gracefully while its dependency fails.
//!
//! `cargo run --release --example gameday [-- --plan configs/chaos/gameday.yaml] [--out DIR] [--mode random]`
//!
//! Starts the demo service (an axum app whose route calls a simulated quote provider through a fallback, a
//! circuit breaker, a client timeout and chaos-tower's fault layer), drives it over loopback, checks the steady state,
//! then runs each scenario of the plan: a `before` phase, the fault for its `duration`, and an `after` phase.
//! Each scenario is judged on its injected rate (inside its band), the user-visible error rate (under the SLO,
//! thanks to the fallback) and its recovery time (within its SLA). The exit status is 0 only if every scenario
//! passes; a JSON report goes to `chaos_reports/chaos_run_<UTC timestamp>/`.

mod charts;
mod html;
mod load;
mod plan;
mod report;
mod service;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chaos_core::{Environment, SloGuard, SloLimits, SystemClock};
use chaos_tower::ChaosHandle;
use degrade_flags::breaker::{CircuitBreaker, State as BreakerState};
use serde_json::json;
use tokio::time::Instant;

use crate::plan::{Plan, Scenario};
use crate::report::{PhaseStats, Verdict, recovery_time};

struct Args {
    plan: PathBuf,
    out: Option<PathBuf>,
    shuffle: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { plan: PathBuf::from("configs/chaos/gameday.yaml"), out: None, shuffle: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--plan" => args.plan = it.next().ok_or("--plan needs a path")?.into(),
            "--out" => args.out = Some(it.next().ok_or("--out needs a directory")?.into()),
            "--mode" => match it.next().as_deref() {
                Some("random") => args.shuffle = true,
                Some("ordered") => args.shuffle = false,
                other => return Err(format!("--mode takes `ordered` or `random`, not {other:?}")),
            },
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
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("gameday: {e}");
            return ExitCode::from(2);
        }
    };
    let mut plan = match Plan::load(&args.plan) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("gameday: {e}");
            return ExitCode::from(2);
        }
    };
    if args.shuffle {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        shuffle(&mut plan.scenarios, seed as u64);
    }
    match run(&plan, args.out).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gameday: {e}");
            ExitCode::from(2)
        }
    }
}

fn shuffle<T>(items: &mut [T], mut state: u64) {
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

async fn run(plan: &Plan, out: Option<PathBuf>) -> Result<bool, String> {
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
    println!("GameDay against the demo service on {addr}: {} rps from {} clients", plan.load.rps, plan.load.workers);

    // Pre-flight: the steady state must be healthy before any fault.
    let warm = Duration::from_millis(500);
    tokio::time::sleep(warm + plan.phases.before).await;
    let baseline = PhaseStats::of(&recorder.between(warm, epoch.elapsed()), plan.phases.before);
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

    let mut reports = Vec::new();
    let mut all_passed = true;
    println!(
        "\n{:<18} {:>9} {:>9} {:>8} {:>9} {:>9} {:>8} {:>10} {:>6}  verdict",
        "scenario", "injected", "band", "errors", "fallback", "p95 ms", "breaker", "recovery", "sla"
    );
    for scenario in &plan.scenarios {
        let (report, passed) =
            run_scenario(plan, scenario, &chaos, &breaker, &guard, &recorder, &counters, epoch, &baseline).await?;
        all_passed &= passed;
        reports.push(report);
    }
    let _ = stop.send(true);

    let dir = out.unwrap_or_else(|| {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "-");
        PathBuf::from("chaos_reports").join(format!("chaos_run_{stamp}"))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for report in &reports {
        let path = dir.join(format!("{}_report.json", report["scenario"].as_str().unwrap_or("scenario")));
        let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!("\n{} — reports in {}", if all_passed { "PASS" } else { "FAIL" }, dir.display());
    Ok(all_passed)
}

#[allow(clippy::too_many_arguments)]
async fn run_scenario(
    plan: &Plan,
    scenario: &Scenario,
    chaos: &ChaosHandle,
    breaker: &CircuitBreaker,
    guard: &SloGuard,
    recorder: &load::Recorder,
    counters: &service::Counters,
    epoch: Instant,
    baseline: &PhaseStats,
) -> Result<(serde_json::Value, bool), String> {
    let before_start = epoch.elapsed();
    tokio::time::sleep(plan.phases.before).await;

    guard.reset();
    let calls_before = counters.provider_calls.load(Ordering::Relaxed);
    let fault_start = epoch.elapsed();
    chaos.load(scenario.chaos.clone()).map_err(|e| format!("scenario {}: {e}", scenario.name))?;
    // Watch the breaker while the fault lasts: how fast did the service notice?
    let mut breaker_opened = None;
    let fault_until = epoch.elapsed() + scenario.duration;
    while epoch.elapsed() < fault_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if breaker_opened.is_none() && breaker.state() != BreakerState::Closed {
            breaker_opened = Some(epoch.elapsed() - fault_start);
        }
    }
    let injected: u64 = chaos.snapshot().rules.iter().map(|r| r.injected).sum();
    let aborted = guard.breach();
    chaos.disarm();
    let fault_end = epoch.elapsed();
    let calls = counters.provider_calls.load(Ordering::Relaxed) - calls_before;

    tokio::time::sleep(plan.phases.after).await;
    let after_end = epoch.elapsed();

    let before = PhaseStats::of(&recorder.between(before_start, fault_start), fault_start - before_start);
    let during_samples = recorder.between(fault_start, fault_end);
    let during = PhaseStats::of(&during_samples, fault_end - fault_start);
    let after_samples = recorder.between(fault_end, after_end);
    let after = PhaseStats::of(&after_samples, after_end - fault_end);
    let p95_limit =
        Duration::from_secs_f64(baseline.p95_ms / 1e3 * plan.slo.recovery_p95_factor).max(Duration::from_millis(5));
    let recovery = recovery_time(&after_samples, fault_end, plan.phases.window, plan.slo.user_error_rate, p95_limit);
    let first_fallback = during_samples.iter().filter(|s| s.fallback).map(|s| s.at).min().map(|at| at - fault_start);

    let injected_rate = if calls == 0 { 0.0 } else { injected as f64 / calls as f64 };
    let [lo, hi] = scenario.injected_band;
    let mut failures = Vec::new();
    if !(lo..=hi).contains(&injected_rate) {
        failures.push(format!("injected rate {injected_rate:.3} outside [{lo}, {hi}]"));
    }
    if during.error_rate > plan.slo.user_error_rate {
        failures.push(format!(
            "user error rate {:.2}% over the SLO {:.2}%",
            during.error_rate * 100.0,
            plan.slo.user_error_rate * 100.0
        ));
    }
    if let Some(breach) = aborted {
        failures.push(format!("aborted by the SLO guard: {breach}"));
    }
    match recovery {
        Some(r) if r <= scenario.recovery_sla => {}
        Some(r) => failures.push(format!("recovered in {r:?}, SLA {:?}", scenario.recovery_sla)),
        None => failures.push(format!("not recovered within the {:?} after phase", plan.phases.after)),
    }
    let verdict = Verdict { passed: failures.is_empty(), failures };
    println!(
        "{:<18} {:>9.3} {:>9} {:>7.2}% {:>9} {:>9.1} {:>8} {:>10} {:>6}  {}",
        scenario.name,
        injected_rate,
        format!("{lo:.2}-{hi:.2}"),
        during.error_rate * 100.0,
        during.fallbacks,
        during.p95_ms,
        breaker_opened.map_or("-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64())),
        recovery.map_or("never".to_owned(), |r| format!("{:.2}s", r.as_secs_f64())),
        format!("{}s", scenario.recovery_sla.as_secs()),
        if verdict.passed { "PASS".to_owned() } else { format!("FAIL: {}", verdict.failures.join("; ")) }
    );
    let report = json!({
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": chaos.snapshot().seed,
        "duration_s": scenario.duration.as_secs_f64(),
        "provider_calls": calls,
        "injected_faults": injected,
        "injected_rate": injected_rate,
        "injected_band": scenario.injected_band,
        "phases": { "before": before, "during": during, "after": after },
        "recovery_s": recovery.map(|r| r.as_secs_f64()),
        "recovery_sla_s": scenario.recovery_sla.as_secs_f64(),
        "time_to_first_fallback_s": first_fallback.map(|d| d.as_secs_f64()),
        "time_to_breaker_open_s": breaker_opened.map(|d| d.as_secs_f64()),
        "aborted": aborted.map(|b| b.to_string()),
        "verdict": verdict,
    });
    Ok((report, verdict.passed))
}
