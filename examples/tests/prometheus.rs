//! A real Prometheus (Debian's `prometheus` package) scraping the `http_service` example's `/metrics`.
//!
//! The test serves the example's router on `127.0.0.1:0`, starts `prometheus` on another loopback port with a
//! 1 s scrape interval and the cost-meter's generated budget rules (`cost-meter rules configs/budgets`), injects
//! faults, then polls Prometheus's HTTP API (bounded) until `sum(chaos_faults_injected_total)` there equals what
//! the service counted. It also checks that every budget's rule group loaded without error, and that
//! `promtool check metrics` accepts the exposition.
//!
//! Ignored in plain `cargo test` (it needs the binaries); `.ci/run` installs the package and runs it:
//! `cargo test -p examples --test prometheus -- --ignored --nocapture`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brownout_tower::brownout_cost::budget::{BudgetSet, rules_yaml};

#[path = "support/servers.rs"]
mod support;
use support::{Prometheus, Served, get, installed};

/// Half the provider calls answer 503, marked `x-chaos-injected: quotes-down`.
const RULES: &str = "\
experiment: prometheus
rules:
  - name: quotes-down
    match: { route: /api/quotes/** }
    sample: { mode: exact, rate: 0.5 }
    fault: { error: { status: 503, body: provider down } }
";

/// How long Prometheus may take to start, scrape and answer with the final count.
const DEADLINE: Duration = Duration::from_secs(90);

/// The scalar of a one-sample instant vector from `/api/v1/query`, if there is one.
fn single_value(body: &str) -> Option<f64> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    json["data"]["result"].get(0)?["value"].get(1)?.as_str()?.parse().ok()
}

/// Sum of `name`'s samples in a Prometheus text exposition.
fn exposition_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus and promtool (Debian package prometheus); run by .ci/run"]
async fn prometheus_scrapes_what_the_service_counted() {
    if !installed("prometheus") || !installed("promtool") {
        eprintln!("SKIPPED: `prometheus` or `promtool` is not installed (apt-get install prometheus; .ci/run does)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("brownout-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // The service, on a free port.
    let served = Served::start(&dir, RULES, None, |_| {}).await;
    let (service, addr) = (&served.service, served.addr);

    // Prometheus, scraping it every second, with the budgets' generated rules.
    let budgets = BudgetSet::load_dir(&root.join("configs/budgets")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("budgets.rules.yml"), rules_yaml(&budgets)).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules:?}\n\
         scrape_configs:\n  - job_name: http_service\n    static_configs:\n      - targets: ['{addr}']\n",
        rules = dir.join("budgets.rules.yml").display().to_string(),
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let prometheus = Prometheus::start(&dir, &dir.join("prometheus.yml"));

    // Faults: 200 quotes, half of whose provider calls the rule answers 503 (the breaker may cut some short).
    let client = support::client();
    let base = format!("http://{addr}");
    for i in 0..200 {
        let (status, _) = get(&client, &format!("{base}/quote/S{}", i % 5)).await.expect("the service answers");
        assert!(status == 200 || status == 503, "unexpected status {status}");
    }
    let counted: u64 = service.chaos.snapshot().rules.iter().map(|r| r.injected).sum();
    assert!(counted > 0, "faults were injected");
    let (_, exposition) = get(&client, &format!("{base}/metrics")).await.unwrap();
    assert_eq!(exposition_sum(&exposition, "chaos_faults_injected_total"), counted as f64, "{exposition}");

    // promtool accepts the exposition (from stdin).
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), exposition.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    // promtool's only complaint may be the unit lint on `cost_meter_cpu_nanoseconds_total`: the issue names that
    // counter, a u64 of nanoseconds, which keeps exact integer CPU time (an f64 of seconds loses nanoseconds
    // past 2^53 ns, about 104 days of CPU). Anything else fails the test.
    let report = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| *l != r#"cost_meter_cpu_nanoseconds_total use base unit "seconds" instead of "nanoseconds""#)
        .collect();
    assert!(
        problems.is_empty() && (checked.status.success() || report.contains("cost_meter_cpu_nanoseconds_total")),
        "promtool check metrics refused the exposition:\n{report}"
    );

    // Prometheus's count reaches the service's (bounded polling: it starts, then scrapes every second).
    let query = format!("{}/api/v1/query?query=sum(chaos_faults_injected_total)", prometheus.base);
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < DEADLINE {
        last = get(&client, &query).await.and_then(|(_, body)| single_value(&body));
        if last == Some(counted as f64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        last,
        Some(counted as f64),
        "Prometheus never saw {counted} injected faults within {DEADLINE:?}; its log:\n{}",
        prometheus.log()
    );
    println!("Prometheus saw {counted} injected faults after {:.1} s", started.elapsed().as_secs_f64());

    // Every budget's rule group loaded, and no rule is in error.
    let (status, body) = get(&client, &format!("{}/api/v1/rules", prometheus.base)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let groups = json["data"]["groups"].as_array().expect("rule groups");
    for budget in budgets.iter() {
        let name = format!("budget-{}", budget.name);
        let group = groups.iter().find(|g| g["name"] == name.as_str()).unwrap_or_else(|| panic!("no group {name}"));
        let rules = group["rules"].as_array().unwrap();
        assert!(!rules.is_empty(), "{name} has rules");
        for rule in rules {
            assert_ne!(rule["health"], "err", "{name}: {rule}");
        }
    }
    println!("{} budget rule groups loaded", budgets.len());

    drop(prometheus);
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without promtool: every metric the demo service exposes has a `# HELP` line (promtool refuses a metric
/// without one), rendered by a recorder local to this test.
#[test]
fn every_exposed_metric_has_help_text() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let chaos = brownout_tower::ChaosHandle::new();
        chaos.load(brownout_tower::brownout_chaos::ChaosConfig::from_yaml_str(RULES, None).unwrap()).unwrap();
        let flags = brownout_degrade::Flags::from_file(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/feature_flags.yaml"),
        )
        .unwrap();
        let _demo = examples::demo::app(&chaos, &examples::demo::Options::default());
        drop(flags);
    });
    let text = handle.render();
    let typed: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    assert!(typed.contains(&"chaos_faults_injected_total"), "{text}");
    for name in typed {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no help text:\n{text}");
    }
}
