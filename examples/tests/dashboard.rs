//! The Grafana dashboard (`configs/grafana/brownout.json`) and the alerting rules
//! (`configs/prometheus/brownout.rules.yml`) against a real Prometheus scraping the demo service under load.
//!
//! The ignored test serves the `http_service` router on `127.0.0.1:0` with chaos armed (an error rule on the
//! provider, so its breaker opens and the fallback answers, and a small memory ballast), the admin API (one
//! change, one refused token), the shipped budgets, and shedding on; keeps requests flowing; starts
//! `prometheus` scraping it every second with the alerting rules and the budgets' generated rules; then runs
//! every panel's every query, read from the JSON, until each returns series (bounded). A panel with a wrong
//! metric name fails it. It also checks that every metric the alerting rules name exists in Prometheus.
//!
//! `.ci/run` installs Debian's `prometheus` package and runs it:
//! `cargo test -p examples --test dashboard -- --ignored --nocapture`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use brownout_tower::brownout_cost::budget::{BudgetSet, rules_yaml};

#[path = "support/servers.rs"]
mod support;
use support::{Prometheus, Served, get, installed, instant_query, send};

/// Six provider calls in ten answer 503 (the breaker opens, the fallback answers from the cache); a small
/// memory ballast so the pressure metrics exist.
const RULES: &str = "\
experiment: dashboard
ttl: 1h
rules:
  - name: quotes-down
    match: { route: /api/quotes/** }
    sample: { mode: exact, rate: 0.6 }
    fault: { error: { status: 503, body: provider down } }
pressure:
  - name: ballast
    memory: { bytes: 4MiB }
    duration: 1h
";

const TOKEN: &str = "dashboard-test-token-0123456789abcdef";

/// How long Prometheus may take to start, scrape, evaluate the budget rules (every minute) and answer.
const DEADLINE: Duration = Duration::from_secs(150);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dashboard() -> serde_json::Value {
    let path = root().join("configs/grafana/brownout.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        out.push(panel.clone());
        out.extend(panel["panels"].as_array().into_iter().flatten().cloned());
    }
    out
}

/// Each query of each panel as Prometheus would get it from Grafana: `(panel title, expression)`, the
/// dashboard's variables replaced (`$instance`: every instance; `$__rate_interval`: one minute).
fn queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    panels(dashboard)
        .iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            p["targets"].as_array().into_iter().flatten().map(move |t| {
                let expr = t["expr"].as_str().unwrap_or_default();
                (title.clone(), expr.replace("$__rate_interval", "1m").replace("$instance", ".*"))
            })
        })
        .collect()
}

/// The metric names an expression reads: identifiers with one of Brownout's prefixes.
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| {
            ["chaos_", "degrade_", "circuit_breaker_", "cost_meter_", "budget_", "budget:"]
                .iter()
                .any(|p| w.starts_with(p))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_panel_has_a_prometheus_query_and_a_place_on_the_grid() {
    let dashboard = dashboard();
    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().expect("a title");
        assert!(ids.insert(panel["id"].as_u64().expect("an id")), "{title}: duplicate id");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(w > 0 && x + w <= 24, "{title}: outside the 24 columns");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}: the dashboard's data source variable");
        assert!(!panel["description"].as_str().unwrap_or_default().is_empty(), "{title}: a description");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title}: targets"));
        assert!(!targets.is_empty(), "{title}: a query");
        let exprs: Vec<&str> =
            targets.iter().map(|t| t["expr"].as_str().unwrap_or_else(|| panic!("{title}: an expr"))).collect();
        assert!(exprs.iter().any(|e| !metric_names(e).is_empty()), "{title}: {exprs:?} read no Brownout metric");
    }
}

#[test]
fn the_budget_burn_down_is_on_the_dashboard() {
    let dashboard = dashboard();
    let burn_down = panels(&dashboard).into_iter().find(|p| p["title"] == "Budget burn-down").expect("the panel");
    let exprs: Vec<&str> = burn_down["targets"].as_array().unwrap().iter().filter_map(|t| t["expr"].as_str()).collect();
    assert!(exprs.iter().any(|e| e.contains("1 - max by (budget, resource) (budget_utilization_ratio")), "{exprs:?}");
    assert!(exprs.iter().any(|e| e.contains("days_in_month()")), "the on-budget line: {exprs:?}");
}

/// The expressions of `configs/prometheus/brownout.rules.yml`.
fn alert_exprs() -> Vec<String> {
    let path = root().join("configs/prometheus/brownout.rules.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let rules: serde_json::Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter().map(|r| r["expr"].as_str().unwrap().to_owned()))
        .collect()
}

/// Requests on every demo route until `stop`: quotes (provider faults, breaker, fallback), reports (shed by
/// `api.shed_percent`), recommendations.
async fn load(base: String, stop: Arc<AtomicBool>) {
    let client = support::client();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for path in [format!("/quote/S{}", i % 5), format!("/reports/r{}", i % 3), format!("/recommendations/u{i}")] {
            let _ = get(&client, &format!("{base}{path}")).await;
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs prometheus (Debian package prometheus); run by .ci/run"]
async fn every_dashboard_query_returns_series_from_a_real_prometheus() {
    if !installed("prometheus") {
        eprintln!("SKIPPED: `prometheus` is not installed (apt-get install prometheus; .ci/run does)");
        return;
    }
    let root = root();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // The service, armed, with the admin API and the shipped budgets.
    let budgets_dir = root.join("configs/budgets");
    let served = Served::start(dir, RULES, Some(TOKEN), |o| o.budgets = Some(budgets_dir)).await;
    let (addr, base) = (served.addr, served.base());

    // Shedding on through the admin API (a change), and one refused token.
    let client = support::client();
    let url = format!("{base}/admin/flags/api.shed_percent");
    let (status, body) = send(&client, http::Method::PUT, &url, Some(TOKEN), r#"{"value": 50}"#).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _) =
        send(&client, http::Method::GET, &format!("{base}/admin/flags"), Some("wrong"), "").await.unwrap();
    assert_eq!(status, 401);

    // Load, until the queries are done.
    let stop_load = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(load(base.clone(), stop_load.clone()));

    // Prometheus, scraping every second, with the alerting rules and the budgets' generated rules.
    let budgets = BudgetSet::load_dir(&root.join("configs/budgets")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("budgets.rules.yml"), rules_yaml(&budgets)).unwrap();
    let alerts = root.join("configs/prometheus/brownout.rules.yml").canonicalize().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {budgets:?}\n  - {alerts:?}\n\
         scrape_configs:\n  - job_name: http_service\n    static_configs:\n      - targets: ['{addr}']\n",
        budgets = dir.join("budgets.rules.yml").display().to_string(),
        alerts = alerts.display().to_string(),
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let prometheus = Prometheus::start(dir, &dir.join("prometheus.yml"));

    // Every panel's queries, and every metric the alerts read, until each returns series.
    let mut pending: Vec<(String, String)> = queries(&dashboard());
    assert!(pending.len() >= 20, "the dashboard's queries: {pending:?}");
    let names: BTreeSet<String> = alert_exprs().iter().flat_map(|e| metric_names(e)).collect();
    assert!(names.len() >= 10, "the alerts' metrics: {names:?}");
    pending.extend(names.iter().map(|n| ("alerting rules".to_owned(), format!("count({n})"))));
    let total = pending.len();
    let started = Instant::now();
    let mut last: Vec<String> = Vec::new();
    while !pending.is_empty() && started.elapsed() < DEADLINE {
        last.clear();
        let mut still = Vec::new();
        for (title, expr) in pending {
            match instant_query(&client, &prometheus.base, &expr).await {
                Ok(result) if !result.is_empty() => {}
                outcome => {
                    last.push(format!("{title}: `{expr}`: {outcome:?}"));
                    still.push((title, expr));
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(
        pending.is_empty(),
        "{} of {total} queries returned no series within {DEADLINE:?}:\n{}\nPrometheus's log:\n{}",
        pending.len(),
        last.join("\n"),
        prometheus.log()
    );
    println!("{total} queries returned series after {:.1} s", started.elapsed().as_secs_f64());

    // The alerting rules loaded, none in error.
    let (status, body) = get(&client, &format!("{}/api/v1/rules", prometheus.base)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let groups = json["data"]["groups"].as_array().expect("rule groups");
    for name in ["brownout-chaos", "brownout-breakers", "brownout-degrade", "brownout-cost"] {
        let group = groups.iter().find(|g| g["name"] == name).unwrap_or_else(|| panic!("no group {name}"));
        for rule in group["rules"].as_array().unwrap() {
            assert_ne!(rule["health"], "err", "{name}: {rule}");
        }
    }

    stop_load.store(true, Ordering::Relaxed);
    let _ = loader.await;
    drop(prometheus);
    drop(served);
}
