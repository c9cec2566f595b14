//! The GameDay end to end, at a small time scale: its report files and verdicts, and a run without the
//! fallback that must fail (the verdict is not a constant).
//!
//! The test picks `exchange_downtime` (a 503 on every provider call): with the fallback every user still gets
//! the cached quote; without it every user request during the fault is an error, far over the 1% SLO,
//! whatever the machine's speed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use brownout_gameday::{Options, Plan, Run, Target, exit_status, run, run_parallel};
use examples::demo::gameday::{DemoOptions, target};
use serde_json::Value;

/// `exchange_downtime`'s 300 s fault becomes 9 s and its 60 s recovery SLA 1.8 s, `database_outage`'s 120 s
/// 3.6 s and its SLA 2.7 s: SLAs scale with the run, and below about 0.03 they would be shorter than the
/// breaker's open duration (1 s, a property of the service, not scaled), which recovery must wait out.
const TIME_SCALE: f64 = 0.03;

/// The pressure scenarios run at the default scale (0.05): their recovery SLAs (60 s) scaled to 0.03 are 1.8 s,
/// about what the service's own unscaled reactions take to clear a slow disk (the store window of 1 s, the
/// trigger's 500 ms hold and 100 ms polling, 250 ms recovery windows): at that scale the test would measure the
/// machine's load, not the service.
const PRESSURE_TIME_SCALE: f64 = brownout_gameday::DEFAULT_TIME_SCALE;

/// One GameDay at a time: each drives its services at the plan's 200 requests/s, and two at once on a shared
/// two-core machine would measure the machine more than the service.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gameday-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn plan() -> Plan {
    Plan::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/chaos/gameday.yaml")).unwrap()
}

fn options(out: &Path, scenarios: &[&str]) -> Options {
    Options::default()
        .output_dir(out.to_path_buf())
        .time_scale(TIME_SCALE)
        .scenarios(scenarios.iter().map(|s| (*s).to_owned()).collect())
        .seed(7)
        .junit(out.join("junit.xml"))
}

/// The demo, one scenario after another.
async fn run_demo(out: &Path, scenarios: &[&str], demo: DemoOptions) -> Result<Run, String> {
    run_demo_at(out, scenarios, demo, TIME_SCALE).await
}

/// [`run_demo`] at `time_scale`.
async fn run_demo_at(out: &Path, scenarios: &[&str], demo: DemoOptions, time_scale: f64) -> Result<Run, String> {
    let plan = plan();
    let target = target(&plan, &out.join("orders"), &demo).await?;
    run(&plan, Arc::new(target), &options(out, scenarios).time_scale(time_scale)).await
}

/// The N1V1 suite's fields of a scenario report (JSON pointers).
const SEED_REPORT_FIELDS: &[&str] = &[
    "/scenario/name",
    "/scenario/description",
    "/scenario/duration_seconds",
    "/scenario/expected_failure_rate",
    "/scenario/sla_recovery_time_seconds",
    "/execution/start_time",
    "/execution/end_time",
    "/execution/recovery_time_seconds",
    "/execution/failure_injected",
    "/execution/recovery_detected",
    "/metrics/failures_before_chaos",
    "/metrics/failures_during_chaos",
    "/metrics/failures_after_chaos",
    "/metrics/chaos_failure_rate",
    "/metrics/recovery_successful",
    "/validation/recovery_detected",
    "/validation/recovery_time_seconds",
    "/validation/sla_met",
    "/validation/failure_rate_acceptable",
    "/validation/watchdog_alerts_fired",
    "/validation/recovery_events_logged",
    "/watchdog/alerts_count",
    "/watchdog/recovery_events_count",
    "/timestamp",
];

/// The N1V1 suite's fields of `chaos_summary.json`.
const SEED_SUMMARY_FIELDS: &[&str] = &[
    "/test_run/timestamp",
    "/test_run/duration_seconds",
    "/test_run/mode",
    "/test_run/parallel",
    "/test_run/total_scenarios",
    "/test_run/scenarios_run",
    "/results/passed_scenarios",
    "/results/failed_scenarios",
    "/results/pass_rate_percent",
    "/results/average_recovery_time_seconds",
];

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks the files of a run of `scenarios` in `dir` and returns each scenario's `validation.passed`.
fn check_reports(dir: &Path, scenarios: &[&str]) -> Vec<bool> {
    let summary = read_json(&dir.join("chaos_summary.json"));
    assert_eq!(summary["test_run"]["scenarios_run"], serde_json::json!(scenarios));
    assert!(summary["results"]["passed_scenarios"].is_u64(), "{summary}");
    for field in SEED_SUMMARY_FIELDS {
        assert!(summary.pointer(field).is_some(), "chaos_summary.json has no `{field}`");
    }
    assert_eq!(summary["test_run"]["total_scenarios"], scenarios.len());
    // The JUnit file parses, and holds one test case per scenario, failures counted.
    let xml = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("junit.xml does not parse: {e}\n{xml}"));
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).expect("a testsuite");
    assert_eq!(suite.attribute("tests"), Some(scenarios.len().to_string().as_str()));
    let cases: Vec<_> = suite.children().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.iter().map(|c| c.attribute("name").unwrap()).collect::<Vec<_>>(), scenarios);
    let failed =
        cases.iter().filter(|c| c.children().any(|n| n.has_tag_name("failure") || n.has_tag_name("error"))).count();
    assert_eq!(
        suite.attribute("failures").unwrap().parse::<usize>().unwrap()
            + suite.attribute("errors").unwrap().parse::<usize>().unwrap(),
        failed
    );
    assert_eq!(summary["results"]["failed_scenarios"], failed, "JUnit and the summary agree");
    let drill = std::fs::read_to_string(dir.join("drill_report.md")).expect("drill_report.md");
    for heading in [
        "## Summary",
        "## Environment",
        "### Hypothesis",
        "### Timeline",
        "### Degradations seen",
        "### Recovery",
        "## Action items",
    ] {
        assert!(drill.contains(heading), "drill_report.md has no `{heading}`");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    let mut verdicts = Vec::new();
    for name in scenarios {
        let report = read_json(&dir.join(format!("{name}_report.json")));
        for section in ["scenario", "execution", "hypothesis", "metrics", "validation", "seed"] {
            assert!(report.get(section).is_some(), "{name}_report.json has no `{section}`");
        }
        assert_eq!(report["scenario"]["name"], *name);
        assert_eq!(report["seed"], 7, "the run's --seed is recorded");
        for field in SEED_REPORT_FIELDS {
            assert!(report.pointer(field).is_some(), "{name}_report.json has no `{field}` (the N1V1 structure)");
        }
        assert!(!report["hypothesis"].as_str().unwrap().contains("  "), "{}", report["hypothesis"]);
        let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).expect("one chart per scenario");
        assert!(svg.starts_with("<svg"), "{name}.svg is an SVG");
        assert!(html.contains(&format!("{name}.svg")), "report.html shows {name}'s chart");
        verdicts.push(report["validation"]["passed"].as_bool().expect("validation.passed is a bool"));
    }
    verdicts
}

/// Each scenario's verdict and failures, from its report.
fn verdicts(dir: &Path, scenarios: &[&str]) -> Vec<(String, Vec<String>)> {
    scenarios
        .iter()
        .map(|name| {
            let report = read_json(&dir.join(format!("{name}_report.json")));
            let verdict = report["validation"]["verdict"].as_str().expect("a verdict").to_owned();
            let failures = report["validation"]["failures"]
                .as_array()
                .expect("failures")
                .iter()
                .map(|f| f.as_str().unwrap_or_default().to_owned())
                .collect();
            (verdict, failures)
        })
        .collect()
}

/// Also `--parallel`: each scenario against its own service, at once; the reports keep the plan's order.
/// The degradation is observed (the flag each scenario expects turned on and off), and recovery waits for
/// the breaker that opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_parallel_with_the_fallback_every_scenario_passes_and_writes_its_reports() {
    // In the plan's order; given in the other order, the run still reports them in the plan's.
    let scenarios = ["exchange_downtime", "database_outage"];
    let dir = out_dir("parallel");
    let _one = ONE_AT_A_TIME.lock().await;
    let plan = plan();
    let make = |_: usize, s: brownout_gameday::Scenario| {
        let (plan, data) = (plan.clone(), dir.join(format!("orders-{}", s.name)));
        async move { Ok(Arc::new(target(&plan, &data, &DemoOptions::default()).await?) as Arc<dyn Target>) }
    };
    let result = run_parallel(&plan, make, &options(&dir, &["database_outage", "exchange_downtime"])).await;
    assert!(result.is_ok(), "the run could not be made: {result:?}");
    let passed = check_reports(&dir, &scenarios);
    assert_eq!(passed, [true, true], "every scenario passes with the fallback: {:?}", verdicts(&dir, &scenarios));
    assert_eq!(read_json(&dir.join("chaos_summary.json"))["test_run"]["parallel"], true);
    assert_eq!(exit_status(&result), 0, "{result:?}");
    let exchange = read_json(&dir.join("exchange_downtime_report.json"));
    let detection = &exchange["execution"]["detection"];
    assert!(detection["flags_on_seconds"]["quotes.source"].is_f64(), "{detection}");
    assert!(detection["after_fault_end"]["flags_off_seconds"]["quotes.source"].is_f64(), "{detection}");
    let recovery = exchange["execution"]["recovery_time_seconds"].as_f64().expect("recovered");
    let closed = detection["after_fault_end"]["breaker_closed_seconds"].as_f64();
    assert!(closed.is_none_or(|c| recovery >= c - 0.25), "recovery {recovery} s before the breaker closed {closed:?}");
    let orders = &read_json(&dir.join("database_outage_report.json"))["execution"]["checks"]["orders"];
    let (accepted, applied) = (orders["accepted"].as_u64().unwrap(), orders["applied"].as_u64().unwrap());
    assert!(applied >= accepted, "every acknowledged order applied: {orders}");
    assert_eq!(orders["backlog"], 0, "{orders}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--without-fallback`: no cached quote, no orders journal behind a failing call. Every dependency scenario
/// fails: its users see the faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_fallbacks_every_dependency_scenario_fails() {
    let scenarios = ["network_partition", "rate_limit_flood", "exchange_downtime", "database_outage"];
    let dir = out_dir("no-fallback");
    let _one = ONE_AT_A_TIME.lock().await;
    // One after another: four services at once on a busy two-core machine could fail their pre-flight.
    let result = run_demo(&dir, &scenarios, DemoOptions { fallback: false, ..DemoOptions::default() }).await;
    assert!(result.is_ok(), "the run could not be made: {result:?}");
    let passed = check_reports(&dir, &scenarios);
    let verdicts = verdicts(&dir, &scenarios);
    assert_eq!(passed, [false; 4], "the faults reach the users without the fallbacks: {verdicts:?}");
    for (name, (_, failures)) in scenarios.iter().zip(&verdicts) {
        assert!(failures.iter().any(|f| f.contains("over the SLO")), "{name}: {failures:?}");
    }
    assert_ne!(exit_status(&result), 0, "{result:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--without-degrade`: the triggers are not wired, so nothing degrades by itself. Every pressure scenario
/// fails its expected degradation (or, on a machine too busy to reach the pressure, is INVALID: never a pass).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_degrade_triggers_every_pressure_scenario_fails() {
    let scenarios = ["cpu_saturation", "memory_pressure", "disk_slow"];
    let dir = out_dir("no-degrade");
    let _one = ONE_AT_A_TIME.lock().await;
    let demo = DemoOptions { degrade: false, ..DemoOptions::default() };
    let result = run_demo_at(&dir, &scenarios, demo, PRESSURE_TIME_SCALE).await;
    assert!(result.is_ok(), "the run could not be made: {result:?}");
    let verdicts = verdicts(&dir, &scenarios);
    for (name, (verdict, failures)) in scenarios.iter().zip(&verdicts) {
        assert_ne!(verdict, "PASS", "{name}: {failures:?}");
        if verdict == "FAIL" {
            assert!(failures.iter().any(|f| f.contains("never turned on")), "{name}: {failures:?}");
        }
    }
    assert!(verdicts.iter().filter(|(v, _)| v == "FAIL").count() >= 2, "{verdicts:?}");
    assert_ne!(exit_status(&result), 0, "{result:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// With the triggers the same pressure scenarios pass (or, on a machine too busy to reach the pressure, are
/// INVALID), each showing its degradation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_degrade_triggers_the_pressure_scenarios_degrade_and_pass() {
    let scenarios = ["cpu_saturation", "memory_pressure", "disk_slow"];
    let dir = out_dir("degrade");
    let _one = ONE_AT_A_TIME.lock().await;
    let result = run_demo_at(&dir, &scenarios, DemoOptions::default(), PRESSURE_TIME_SCALE).await;
    assert!(result.is_ok(), "the run could not be made: {result:?}");
    let verdicts = verdicts(&dir, &scenarios);
    for (name, (verdict, failures)) in scenarios.iter().zip(&verdicts) {
        assert!(verdict == "PASS" || verdict == "INVALID", "{name}: {failures:?}");
    }
    assert!(verdicts.iter().filter(|(v, _)| v == "PASS").count() >= 2, "{verdicts:?}");
    // A pressure's flag is timed from the moment the pressure was in place, which the report says.
    for (name, (verdict, _)) in scenarios.iter().zip(&verdicts).filter(|(n, _)| **n != "disk_slow") {
        let detection = &read_json(&dir.join(format!("{name}_report.json")))["execution"]["detection"];
        if verdict == "PASS" {
            assert!(detection["pressure_in_place_seconds"].is_f64(), "{name}: {detection}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
