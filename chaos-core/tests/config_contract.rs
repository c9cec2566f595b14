//! The config contract: bad input gets an error naming the file, the field and the reason, and the last
//! good rules stay active; the production guard holds.

use std::path::PathBuf;

use brownout_chaos::{ChaosConfig, Controller, Environment, RequestFacts};

fn controller(env: Environment) -> Controller {
    Controller::builder().environment(env).build()
}

fn load(env: Environment, yaml: &str) -> Result<Controller, brownout_chaos::ConfigError> {
    let c = controller(env);
    c.load(ChaosConfig::from_yaml_str(yaml, None)?)?;
    Ok(c)
}

fn error_of(yaml: &str) -> (String, String) {
    let err = load(Environment::Test, yaml).unwrap_err();
    (err.field().to_owned(), err.reason().to_owned())
}

const FAULT: &str = "fault: { reset: {} }";

#[test]
fn unknown_fields_are_named() {
    let (field, reason) =
        error_of(&format!("rules: [{{ name: a, sample: {{ mode: random, rate: 0.1 }}, {FAULT}, colour: red }}]"));
    assert_eq!(field, "rules[0].colour");
    assert!(reason.contains("unknown field `colour`"), "{reason}");
}

#[test]
fn rates_statuses_durations_and_names_are_checked() {
    let cases = [
        (
            "rules: [{ name: a, sample: { mode: random, rate: 1.5 }, fault: { reset: {} } }]",
            "rules[0].sample.rate",
            "within [0, 1]",
        ),
        (
            "rules: [{ name: a, sample: { mode: exact, rate: -0.1 }, fault: { reset: {} } }]",
            "rules[0].sample.rate",
            "within [0, 1]",
        ),
        (
            "rules: [{ name: a, sample: { mode: random, rate: 0.1 }, fault: { error: { status: 600 } } }]",
            "rules[0].fault.error.status",
            "100–599",
        ),
        (
            "rules: [{ name: a, sample: { mode: random, rate: 0.1 }, fault: { error: { status: 42 } } }]",
            "rules[0].fault.error.status",
            "100–599",
        ),
        (
            "rules: [{ name: a, sample: { mode: random, rate: 0.1 }, fault: { latency: { fixed: -5s } } }]",
            "rules[0].fault.latency.fixed",
            "negative",
        ),
        (
            "rules: [{ name: a, sample: { mode: random, rate: 0.1 }, fault: { reset: {} }, duration: soon }]",
            "rules[0].duration",
            "not a duration",
        ),
        (
            "rules: [{ name: a, sample: { mode: random, rate: 0.1 }, fault: { reset: {} } }, { name: a, sample: { mode: random, rate: 0.1 }, fault: { reset: {} } }]",
            "rules[1].name",
            "duplicate rule name `a`",
        ),
        (
            "rules: [{ name: a, sample: { mode: hash, rate: 0.1 }, fault: { reset: {} } }]",
            "rules[0].sample",
            "request key",
        ),
        (
            "rules: [{ name: a, sample: { mode: every_nth, nth: 0 }, fault: { reset: {} } }]",
            "rules[0].sample.nth",
            "at least 1",
        ),
        (
            "rules: [{ name: a, sample: { mode: random, rate: 0.1 }, fault: { latency: { uniform: { min: 2s, max: 1s } } } }]",
            "rules[0].fault.latency.uniform",
            "must not exceed",
        ),
        (
            "rules: [{ name: a, match: { method: 'G T' }, sample: { mode: random, rate: 0.1 }, fault: { reset: {} } }]",
            "rules[0].match.method",
            "not an HTTP method",
        ),
        (
            "rules: [{ name: header, sample: { mode: random, rate: 0.1 }, fault: { reset: {} } }]",
            "rules[0].name",
            "reserved",
        ),
        (
            "blast_radius: 0.2\nrules: [{ name: a, sample: { mode: random, rate: 0.5 }, fault: { reset: {} } }]",
            "rules[0].sample",
            "exceeds the blast radius 0.2",
        ),
        ("ttl: 0s\nrules: []", "ttl", "longer than zero"),
        (
            "rules: [{ name: a, max_active: 0, sample: { mode: random, rate: 0.1 }, fault: { reset: {} } }]",
            "rules[0].max_active",
            "at least 1",
        ),
        ("header_faults: { enabled: true }\nrules: []", "header_faults", "token"),
    ];
    for (yaml, field, reason) in cases {
        let (got_field, got_reason) = error_of(yaml);
        assert_eq!(got_field, field, "for {yaml}");
        assert!(got_reason.contains(reason), "for {yaml}: {got_reason}");
    }
}

#[test]
fn file_errors_name_the_file_and_keep_the_last_good_rules() {
    let dir = std::env::temp_dir().join(format!("brownout-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good: PathBuf = dir.join("good.yaml");
    let bad: PathBuf = dir.join("bad.yaml");
    std::fs::write(&good, "rules: [{ name: keep-me, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]")
        .unwrap();
    std::fs::write(&bad, "rules: [{ name: new, sample: { mode: exact, rate: 2.0 }, fault: { reset: {} } }]").unwrap();

    let controller = controller(Environment::Test);
    controller.load_path(&good).unwrap();
    let err = controller.load_path(&bad).unwrap_err();
    assert_eq!(err.file(), Some(bad.as_path()));
    assert_eq!(err.field(), "rules[0].sample.rate");
    let shown = err.to_string();
    assert!(shown.starts_with(&format!("{}: rules[0].sample.rate: ", bad.display())), "{shown}");

    // The last good rules are still the ones in force, and still fire.
    assert_eq!(controller.snapshot().rules[0].name, "keep-me");
    let injection = controller.decider().decide(&RequestFacts::NONE).expect("still armed and firing");
    assert_eq!(injection.outcome().unwrap().rule(), "keep-me");

    let missing = controller.load_path(dir.join("missing.yaml")).unwrap_err();
    assert!(missing.reason().contains("cannot read"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_configs_work_too() {
    let json = r#"{"rules":[{"name":"j","sample":{"mode":"exact","rate":0.5},"fault":{"error":{"status":503}}}]}"#;
    let config = ChaosConfig::from_json_str(json, None).unwrap();
    assert_eq!(config.rules[0].name, "j");
    let err = ChaosConfig::from_json_str(r#"{"rules":[{"name":1}]}"#, None).unwrap_err();
    assert_eq!(err.field(), "rules[0].name");
}

mod prod_guard {
    use super::*;

    const ALLOWED: &str = "allow_prod: true\nexperiment: EXP\nrules: [{ name: a, sample: { mode: random, rate: 0.1 }, fault: { reset: {} } }]";

    #[test]
    fn nothing_arms_in_prod_without_allow_prod() {
        let err =
            load(Environment::Prod, "rules: [{ name: a, sample: { mode: random, rate: 0.1 }, fault: { reset: {} } }]")
                .unwrap_err();
        assert_eq!(err.field(), "allow_prod");
        // A disarmed config may load (to be armed later by someone who sets allow_prod).
        let c = load(Environment::Prod, "armed: false\nrules: []").unwrap();
        assert!(!c.is_armed());
        assert_eq!(c.arm().unwrap_err().field(), "allow_prod");
    }

    #[test]
    fn prod_caps_the_blast_radius_at_30_percent() {
        let yaml = "allow_prod: true\nrules: [{ name: a, sample: { mode: random, rate: 0.31 }, fault: { reset: {} } }]";
        let err = load(Environment::Prod, yaml).unwrap_err();
        assert!(err.reason().contains("prod allows at most 0.3"), "{err}");
        let yaml = "allow_prod: true\nrules: [{ name: a, sample: { mode: every_nth, nth: 3 }, fault: { reset: {} } }]";
        assert!(load(Environment::Prod, yaml).is_err(), "every 3rd request is 33%");
        let yaml = "allow_prod: true\nheader_faults: { enabled: true, token_env: X }\nrules: []";
        assert_eq!(load(Environment::Prod, yaml).unwrap_err().field(), "header_faults.enabled");
    }

    #[test]
    fn one_experiment_at_a_time_in_prod() {
        // Both controllers live in this one test, so the process-wide slot is ours to observe.
        let first = load(Environment::Prod, &ALLOWED.replace("EXP", "first")).unwrap();
        let err = load(Environment::Prod, &ALLOWED.replace("EXP", "second")).unwrap_err();
        assert!(err.reason().contains("`first` is already armed"), "{err}");
        first.disarm();
        let second = load(Environment::Prod, &ALLOWED.replace("EXP", "second")).unwrap();
        assert!(second.is_armed());
        drop(second);
        // Dropping the controller frees the slot too.
        load(Environment::Prod, &ALLOWED.replace("EXP", "third")).unwrap();
    }
}
