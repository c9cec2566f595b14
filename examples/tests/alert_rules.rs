//! The shipped alerting rules (`configs/prometheus/brownout.rules.yml`) hang together with their unit tests
//! and their documentation: every alert has a severity, a summary, a runbook link to its own section of
//! `docs/alerts.md`, and promtool unit tests (`brownout.rules.test.yml`) that see it both quiet and firing.
//! promtool itself runs them in `.ci/run`; this test needs no binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

fn read_yaml(relative: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn alerts() -> Vec<Value> {
    read_yaml("configs/prometheus/brownout.rules.yml")["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter().cloned())
        .collect()
}

#[test]
fn every_alert_has_a_severity_a_summary_and_its_own_runbook_section() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/alerts.md")).unwrap();
    let alerts = alerts();
    assert!(alerts.len() >= 12, "{} alerts", alerts.len());
    for alert in &alerts {
        let name = alert["alert"].as_str().expect("alerting rules only");
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default();
        assert!(["info", "warning", "critical"].contains(&severity), "{name}: severity `{severity}`");
        assert!(!alert["annotations"]["summary"].as_str().unwrap_or_default().is_empty(), "{name}: a summary");
        let runbook = format!("docs/alerts.md#{}", name.to_lowercase());
        assert_eq!(alert["annotations"]["runbook"], runbook.as_str(), "{name}: its runbook link");
        assert!(docs.contains(&format!("\n### {name}\n")), "{name}: a section in docs/alerts.md");
    }
}

#[test]
fn every_alert_is_unit_tested_quiet_and_firing() {
    let names: BTreeSet<String> = alerts().iter().map(|a| a["alert"].as_str().unwrap().to_owned()).collect();
    let tests = read_yaml("configs/prometheus/brownout.rules.test.yml");
    assert_eq!(tests["rule_files"][0], "brownout.rules.yml");
    // alert name → (seen quiet, seen firing)
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for test in tests["tests"].as_array().unwrap() {
        for case in test["alert_rule_test"].as_array().unwrap() {
            let name = case["alertname"].as_str().unwrap();
            assert!(names.contains(name), "the tests name an alert the rules do not have: {name}");
            let firing = !case["exp_alerts"].as_array().unwrap().is_empty();
            let entry = seen.entry(name.to_owned()).or_default();
            if firing {
                entry.1 = true;
            } else {
                entry.0 = true;
            }
        }
    }
    for name in &names {
        assert_eq!(seen.get(name), Some(&(true, true)), "{name}: a quiet case and a firing case");
    }
}
