//! The GameDay end to end, at a small time scale: its report files and verdicts, and a run without the
//! fallback that must fail (the verdict is not a constant).
//!
//! The test picks `exchange_downtime` (a 503 on every provider call): with the fallback every user still gets
//! the cached quote; without it every user request during the fault is an error, far over the 1% SLO,
//! whatever the machine's speed.

use std::path::{Path, PathBuf};

use examples::gameday::{Args, exit_status, run};
use serde_json::Value;

/// `exchange_downtime`'s 300 s fault becomes 9 s and its 60 s recovery SLA 1.8 s, `database_outage`'s 120 s
/// 3.6 s and its SLA 2.7 s: SLAs scale with the run, and below about 0.03 they would be shorter than the
/// breaker's open duration (1 s, a property of the service, not scaled), which recovery must wait out.
const TIME_SCALE: f64 = 0.03;

/// One GameDay at a time: each drives its services at the plan's 200 requests/s, and two at once on a shared
/// two-core machine would measure the machine more than the service.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gameday-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn args(out: &Path, scenarios: &[&str]) -> Args {
    Args {
        plan: Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/chaos/gameday.yaml"),
        out: Some(out.to_path_buf()),
        time_scale: TIME_SCALE,
        scenarios: Some(scenarios.iter().map(|s| (*s).to_owned()).collect()),
        seed: Some(7),
        ..Args::default()
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks the files of a run of `scenarios` in `dir` and returns each scenario's `validation.passed`.
fn check_reports(dir: &Path, scenarios: &[&str]) -> Vec<bool> {
    let summary = read_json(&dir.join("chaos_summary.json"));
    assert_eq!(summary["test_run"]["scenarios_run"], serde_json::json!(scenarios));
    assert!(summary["results"]["passed_scenarios"].is_u64(), "{summary}");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    let mut verdicts = Vec::new();
    for name in scenarios {
        let report = read_json(&dir.join(format!("{name}_report.json")));
        for section in ["scenario", "execution", "hypothesis", "metrics", "validation", "seed"] {
            assert!(report.get(section).is_some(), "{name}_report.json has no `{section}`");
        }
        assert_eq!(report["scenario"]["name"], *name);
        assert_eq!(report["seed"], 7, "the run's --seed is recorded");
        let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).expect("one chart per scenario");
        assert!(svg.starts_with("<svg"), "{name}.svg is an SVG");
        assert!(html.contains(&format!("{name}.svg")), "report.html shows {name}'s chart");
        verdicts.push(report["validation"]["passed"].as_bool().expect("validation.passed is a bool"));
    }
    verdicts
}

/// Also `--parallel`: each scenario against its own service, at once; the reports keep the plan's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_parallel_with_the_fallback_every_scenario_passes_and_writes_its_reports() {
    // In the plan's order; given in the other order, the run still reports them in the plan's.
    let scenarios = ["exchange_downtime", "database_outage"];
    let dir = out_dir("parallel");
    let _one = ONE_AT_A_TIME.lock().await;
    let result = run(&Args { parallel: true, ..args(&dir, &["database_outage", "exchange_downtime"]) }).await;
    assert!(result.is_ok(), "the run could not be made: {result:?}");
    let verdicts = check_reports(&dir, &scenarios);
    assert_eq!(verdicts, [true, true], "every scenario passes with the fallback: {result:?}");
    assert_eq!(read_json(&dir.join("chaos_summary.json"))["test_run"]["parallel"], true);
    assert_eq!(exit_status(&result), 0, "{result:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_fallback_the_outage_fails_its_scenario_and_the_run() {
    let scenarios = ["exchange_downtime"];
    let dir = out_dir("no-fallback");
    let _one = ONE_AT_A_TIME.lock().await;
    let result = run(&Args { fallback: false, ..args(&dir, &scenarios) }).await;
    assert!(result.is_ok(), "the run could not be made: {result:?}");
    let verdicts = check_reports(&dir, &scenarios);
    assert_eq!(verdicts, [false], "the outage reaches the users without the fallback");
    let report = read_json(&dir.join("exchange_downtime_report.json"));
    assert_eq!(report["validation"]["failure_rate_acceptable"], false, "{report}");
    assert_ne!(exit_status(&result), 0, "{result:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
