//! chaos-core without its `yaml` feature (`cargo test -p brownout-chaos --no-default-features --test without_yaml`,
//! run by `.ci/run`): rules read from JSON, and a YAML file refused with an error that names the file and says
//! which feature reads it. Built with the feature, this file holds no test.
#![cfg(not(feature = "yaml"))]

use brownout_chaos::ChaosConfig;

const RULES: &str =
    r#"{"rules": [{"name": "down", "sample": {"mode": "exact", "rate": 1.0}, "fault": {"error": {"status": 503}}}]}"#;

#[test]
fn a_json_file_loads_without_the_yaml_feature() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.json");
    std::fs::write(&path, RULES).unwrap();
    let config = ChaosConfig::from_path(&path).expect("JSON needs no YAML parser");
    assert_eq!(config.rules.len(), 1);
    assert_eq!(config.rules[0].name, "down");
}

#[test]
fn a_yaml_file_is_refused_naming_the_file_and_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, "rules: []\n").unwrap();
    let err = ChaosConfig::from_path(&path).expect_err("no YAML parser is built");
    assert_eq!(err.file(), Some(path.as_path()));
    assert!(err.reason().contains("`yaml` feature"), "{err}");
}
