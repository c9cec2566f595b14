//! Absurd durations in a config parse or are refused with their field, and never panic on `Instant`
//! arithmetic: a TTL of `u64::MAX` seconds, rule windows and faults as long, a clock moved that far.

use std::time::Duration;

use brownout_chaos::{ChaosConfig, Clock, Controller, ManualClock, RequestFacts};

const HUGE: &str = "18446744073709551615s";

#[test]
fn a_ttl_of_u64_max_seconds_loads_arms_and_decides_without_panicking() {
    let yaml = format!(
        "ttl: {HUGE}\nrules:\n  - name: slow\n    sample: {{ mode: exact, rate: 1.0 }}\n    \
         fault: {{ latency: {{ fixed: {HUGE} }} }}\n    start_after: 0s\n    duration: {HUGE}\n  \
         - name: hang\n    sample: {{ mode: exact, rate: 1.0 }}\n    fault: {{ hang: {{ max: {HUGE} }} }}\n"
    );
    let config = ChaosConfig::from_yaml_str(&yaml, None).unwrap();
    assert_eq!(config.ttl, Duration::from_secs(u64::MAX));
    let clock = ManualClock::new();
    let controller = Controller::builder().clock(clock.clone()).build();
    controller.load(config).unwrap();
    let mut decider = controller.decider();
    let injection = decider.decide(&RequestFacts::NONE).expect("rate 1.0 fires");
    assert_eq!(injection.delay().unwrap().fault().duration(), Duration::from_secs(u64::MAX));
    drop(injection);
    // Time moves by more than an `Instant` can hold: the clock stops short instead of panicking, and the
    // rules stay within their (huge) TTL.
    let before = clock.now();
    clock.advance(Duration::MAX);
    assert!(clock.now() > before);
    assert!(decider.decide(&RequestFacts::NONE).is_some());
    assert!(controller.is_armed());
    controller.disarm();
    assert!(decider.decide(&RequestFacts::NONE).is_none(), "the kill switch wins over any TTL");
}

#[test]
fn a_duration_past_u64_seconds_is_refused_with_its_field() {
    let e = ChaosConfig::from_yaml_str("ttl: 18446744073709551616s\n", None).unwrap_err();
    assert_eq!(e.field(), "ttl", "{e}");
    assert!(e.reason().contains("not a duration"), "{e}");
    let e = ChaosConfig::from_json_str(r#"{"ttl": "99999999999999999999999h"}"#, None).unwrap_err();
    assert_eq!(e.field(), "ttl", "{e}");
}
