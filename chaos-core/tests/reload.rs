//! What a reload does to an armed, disarmed or latched rule set: the kill switch latches until an explicit
//! arm, an identical config changes nothing, and a changed config restarts only the rules that changed.

use std::time::Duration;

use brownout_chaos::{ChaosConfig, Controller, Environment, ManualClock, RequestFacts};
use proptest::prelude::*;

fn controller(clock: &ManualClock) -> Controller {
    Controller::builder().environment(Environment::Dev).clock(clock.clone()).build()
}

fn config(yaml: &str) -> ChaosConfig {
    ChaosConfig::from_yaml_str(yaml, None).expect("valid config")
}

/// Two always-firing error rules that each inject at most `cap` times, each in its own window.
fn two_rules(b_status: u16) -> ChaosConfig {
    config(&format!(
        "ttl: 1h\nrules:\n  - name: a\n    sample: {{ mode: exact, rate: 1.0 }}\n    start_after: 10s\n    fault: {{ error: {{ status: 503 }} }}\n  - name: b\n    sample: {{ mode: exact, rate: 1.0 }}\n    start_after: 10s\n    fault: {{ latency: {{ fixed: 1ms }} }}\n    max_injections: 1000\n    # b's status: {b_status}\n    match: {{ headers: {{ x-b: \"{b_status}\" }} }}\n"
    ))
}

fn injected(controller: &Controller, rule: &str) -> u64 {
    controller.snapshot().rules.iter().find(|r| r.name == rule).map_or(0, |r| r.injected)
}

#[test]
fn the_kill_switch_latches_until_an_explicit_arm() {
    let clock = ManualClock::new();
    let controller = controller(&clock);
    controller.load(config("rules: [{ name: x, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]")).unwrap();
    assert!(controller.is_armed());

    controller.disarm();
    assert_eq!(controller.latched().as_deref(), Some("kill switch"));

    // A changed config loads, and stays disarmed: the operator's kill switch wins over `armed: true`.
    let edited = config("rules: [{ name: y, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]");
    let report = controller.load(edited.clone()).unwrap();
    assert!(report.changed && !report.armed, "{report:?}");
    assert_eq!(report.held_by.as_deref(), Some("kill switch"));
    assert!(!controller.is_armed());
    let snapshot = controller.snapshot();
    assert_eq!(snapshot.latched.as_deref(), Some("kill switch"));
    assert_eq!(snapshot.rules[0].name, "y", "the edited rules are loaded, held disarmed");
    assert!(controller.decider().decide(&RequestFacts::NONE).is_none(), "nothing fires while latched");

    // Only an explicit arm lifts it, with the edited rules in force.
    controller.arm().unwrap();
    assert!(controller.is_armed() && controller.latched().is_none());
    let injection = controller.decider().decide(&RequestFacts::NONE).expect("the edited rule fires");
    assert_eq!(injection.outcome().unwrap().rule(), "y");
}

#[test]
fn the_ttl_latches_too_and_a_reload_never_extends_it() {
    let clock = ManualClock::new();
    let controller = controller(&clock);
    let mut decider = controller.decider();
    controller
        .load(config("ttl: 5s\nrules: [{ name: x, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]"))
        .unwrap();
    clock.advance(Duration::from_secs(4));
    // A changed config 4 s in: the TTL still counts from the arming.
    let report = controller
        .load(config("ttl: 5s\nrules: [{ name: x2, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]"))
        .unwrap();
    assert!(report.armed && report.changed);
    assert!(decider.decide(&RequestFacts::NONE).is_some());
    clock.advance(Duration::from_secs(2));
    assert!(decider.decide(&RequestFacts::NONE).is_none(), "6 s after arming, past the 5 s TTL");
    assert!(!controller.is_armed());
    assert_eq!(controller.latched().as_deref(), Some("ttl expired"));
    // Another edit does not bring the expired experiment back.
    controller
        .load(config("ttl: 5s\nrules: [{ name: x3, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]"))
        .unwrap();
    assert!(!controller.is_armed());
}

#[test]
fn an_identical_config_changes_nothing() {
    let clock = ManualClock::new();
    let controller = controller(&clock);
    let yaml = "rules: [{ name: x, sample: { mode: exact, rate: 0.5 }, fault: { reset: {} }, max_injections: 3 }]";
    controller.load(config(yaml)).unwrap();
    let mut decider = controller.decider();
    for _ in 0..4 {
        decider.decide(&RequestFacts::NONE);
    }
    let before = controller.snapshot();
    assert_eq!(before.rules[0].injected, 2);
    let report = controller.load(config(yaml)).unwrap();
    assert!(!report.changed && report.restarted.is_empty(), "{report:?}");
    assert_eq!(controller.snapshot(), before, "counters, seed and arming kept");
    // The exact sampler goes on where it was: 2 of the next 4, then the cap of 3 holds.
    let fired = (0..4).filter(|_| decider.decide(&RequestFacts::NONE).is_some()).count();
    assert_eq!(fired, 1, "the injection budget was not reset by the reload");
}

#[test]
fn a_changed_config_restarts_only_the_rules_that_changed() {
    let clock = ManualClock::new();
    let controller = controller(&clock);
    controller.load(two_rules(1)).unwrap();
    let seed = controller.snapshot().seed;
    let mut decider = controller.decider();
    let b_request = http::Request::builder().header("x-b", "1").body(()).unwrap();
    clock.advance(Duration::from_secs(11));
    decider.decide(&RequestFacts::http(&b_request)).expect("both rules are in their window");
    assert_eq!((injected(&controller, "a"), injected(&controller, "b")), (1, 1));

    // Rule b changes 11 s after arming; rule a does not.
    let report = controller.load(two_rules(2)).unwrap();
    assert_eq!(report.restarted, vec!["b".to_owned()]);
    assert_eq!(controller.snapshot().seed, seed, "a config without `seed` keeps the running seed");
    assert_eq!(injected(&controller, "a"), 1, "a kept its counters");
    assert_eq!(injected(&controller, "b"), 0, "b starts afresh");

    let b_request = http::Request::builder().header("x-b", "2").body(()).unwrap();
    let injection = decider.decide(&RequestFacts::http(&b_request)).expect("a is still in its window");
    assert!(injection.outcome().is_some(), "a (its window kept) fires");
    assert!(injection.delay().is_none(), "b's window restarted: 10 s from the reload");
    clock.advance(Duration::from_secs(10));
    let injection = decider.decide(&RequestFacts::http(&b_request)).expect("fires");
    assert!(injection.delay().is_some(), "b is in its window 10 s after the reload");
}

#[test]
fn an_empty_file_is_refused_and_the_last_good_rules_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    let controller = controller(&ManualClock::new());
    std::fs::write(&path, "rules: [{ name: x, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]\n").unwrap();
    controller.load_path(&path).unwrap();
    for empty in ["", "\n  \n", "# only a comment\n---\n"] {
        std::fs::write(&path, empty).unwrap();
        let err = controller.load_path(&path).expect_err("an empty file is not a rule set");
        let text = err.to_string();
        assert!(text.contains("rules.yaml") && text.contains("empty"), "{text}");
        assert_eq!(controller.snapshot().rules.len(), 1, "the last good rules stay");
        assert!(controller.is_armed());
    }
    // `rules: []` says "no rules" on purpose, and is loaded.
    std::fs::write(&path, "rules: []\n").unwrap();
    controller.load_path(&path).unwrap();
    assert!(controller.snapshot().rules.is_empty());
}

/// One step an operator or a file watcher can take.
#[derive(Debug, Clone)]
enum Step {
    /// Load a config: its variant (0–2) and whether it says `armed: true`.
    Load(u8, bool),
    Disarm,
    Arm,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..3, any::<bool>()).prop_map(|(v, armed)| Step::Load(v, armed)),
        2 => Just(Step::Disarm),
        1 => Just(Step::Arm),
    ]
}

fn variant(v: u8, armed: bool) -> ChaosConfig {
    config(&format!(
        "armed: {armed}\nrules: [{{ name: r{v}, sample: {{ mode: exact, rate: 1.0 }}, fault: {{ reset: {{}} }} }}]"
    ))
}

proptest! {
    /// Against a two-bit model: after a kill switch nothing but `arm` arms; a load arms only what says
    /// `armed: true` while nothing latched; a load of what is already loaded changes nothing.
    #[test]
    fn only_an_explicit_arm_undoes_the_kill_switch(steps in proptest::collection::vec(step(), 1..40)) {
        let controller = controller(&ManualClock::new());
        let (mut armed, mut latched) = (false, false);
        let mut loaded: Option<(u8, bool)> = None;
        for step in steps {
            match step {
                Step::Load(v, wants) => {
                    let report = controller.load(variant(v, wants)).unwrap();
                    let same = loaded == Some((v, wants));
                    prop_assert_eq!(report.changed, !same);
                    if !same {
                        armed = wants && !latched;
                    }
                    loaded = Some((v, wants));
                }
                Step::Disarm => {
                    controller.disarm();
                    armed = false;
                    latched = true;
                }
                Step::Arm => {
                    controller.arm().unwrap();
                    armed = true;
                    latched = false;
                }
            }
            prop_assert_eq!(controller.is_armed(), armed);
            prop_assert_eq!(controller.latched().is_some(), latched);
        }
    }
}

/// A decider that is only ever cloned (the prototype in a `BoxCloneService`) never decides itself: its clones
/// still follow every reload, the kill switch and a re-arm.
#[test]
fn clones_of_a_prototype_decider_follow_reloads_and_the_kill_switch() {
    let clock = ManualClock::new();
    let controller = controller(&clock);
    let always = |name: &str| {
        config(&format!("rules: [{{ name: {name}, sample: {{ mode: exact, rate: 1.0 }}, fault: {{ reset: {{}} }} }}]"))
    };
    let prototype = controller.decider();
    let fires = |prototype: &brownout_chaos::Decider| prototype.clone().decide(&RequestFacts::NONE).is_some();
    assert!(!fires(&prototype), "nothing armed when it was made");

    controller.load(always("a")).unwrap();
    assert!(fires(&prototype), "armed after it was made");
    let prototype = controller.decider();
    assert!(fires(&prototype), "made while armed");

    controller.load(config("rules: [{ name: b, sample: { mode: exact, rate: 0.0 }, fault: { reset: {} } }]")).unwrap();
    assert!(!fires(&prototype), "a reload to a rule that never fires");
    controller.load(always("c")).unwrap();
    assert!(fires(&prototype));
    controller.disarm();
    assert!(!fires(&prototype), "the kill switch");
    controller.arm().unwrap();
    assert!(fires(&prototype), "re-armed");
}
