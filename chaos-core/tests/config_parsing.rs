//! Config input, hostile or not: never a panic; errors name the file, the field and the reason.

use brownout_chaos::{ChaosConfig, Controller, Environment};
use proptest::prelude::*;

const VALID: &str = r#"
experiment: demo
seed: 7
ttl: 10m
blast_radius: 0.5
max_active_faults: 10
rules:
  - name: slow
    match: { route: "/api/**", method: [GET, HEAD], headers: { x-tenant: acme }, key: { header: x-user } }
    sample: { mode: hash, rate: 0.25 }
    fault: { latency: { log_normal: { median: 80ms, sigma: 0.6, max: 2s } } }
    start_after: 1s
    duration: 30s
    max_injections: 1000
    max_active: 5
  - name: limited
    sample: { mode: exact, rate: 0.1 }
    fault: { rate_limit: { retry_after: 2s, limit: 50 } }
"#;

fn test_controller() -> Controller {
    Controller::builder().environment(Environment::Test).build()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any string: a config or an error, never a panic; and a parsed config loads or is refused cleanly.
    #[test]
    fn any_string_parses_or_errors(text in "\\PC{0,400}") {
        if let Ok(config) = ChaosConfig::from_yaml_str(&text, None) {
            let _ = test_controller().load(config);
        }
        let _ = ChaosConfig::from_json_str(&text, None);
    }

    /// Mutations of a valid config (a byte replaced, inserted or removed): never a panic.
    #[test]
    fn mutated_configs_never_panic(at in 0usize..VALID.len(), byte in proptest::sample::select(
        b" :{}[],-#&*!|>'\"\n\t0123456789.abcxyz".to_vec()), op in 0u8..3) {
        let mut bytes = VALID.as_bytes().to_vec();
        match op {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ => { bytes.remove(at); }
        }
        if let Ok(text) = String::from_utf8(bytes)
            && let Ok(config) = ChaosConfig::from_yaml_str(&text, None)
        {
            let _ = test_controller().load(config);
        }
    }

    /// Rates outside [0, 1] are refused, naming the field.
    #[test]
    fn rates_outside_the_unit_interval_are_refused(rate in prop_oneof![-1e9f64..-1e-9, 1.000001f64..1e9]) {
        let text = format!("rules: [{{ name: r, sample: {{ mode: random, rate: {rate} }}, fault: {{ reset: {{}} }} }}]");
        let config = ChaosConfig::from_yaml_str(&text, None).unwrap();
        let err = test_controller().load(config).unwrap_err();
        prop_assert_eq!(err.field(), "rules[0].sample.rate");
    }
}

#[test]
fn the_valid_example_loads() {
    let controller = test_controller();
    controller.load(ChaosConfig::from_yaml_str(VALID, None).unwrap()).unwrap();
    assert_eq!(controller.snapshot().rules.len(), 2);
}

#[test]
fn alias_bombs_are_refused_not_expanded() {
    // A billion-laughs document hung under a known field: refused with a short error at that field.
    let mut bomb = String::from("rules:\n  - &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (name, prev) in [("b", "a"), ("c", "b"), ("d", "c"), ("e", "d"), ("f", "e"), ("g", "f")] {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("  - &{name} [{refs}]\n"));
    }
    let err = ChaosConfig::from_yaml_str(&bomb, None).unwrap_err();
    assert!(err.field().starts_with("rules"), "{err}");
    assert!(err.to_string().len() < 1_000, "the error is short, not an expansion: {err}");
}
