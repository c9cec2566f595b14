//! A service that embeds the fault layer logs `CHAOS_EVENT:` lines in the N1V1 suite's shape: when its rules
//! are armed, at each rule's first injected fault (once, however many follow), when they are disarmed, and on
//! the SLO guard's abort; at INFO, so the default log level carries them.

mod common;

use std::time::Duration;

use brownout_chaos::{ChaosConfig, Environment, ManualClock, SloGuard, SloLimits};
use brownout_tower::{ChaosHandle, HttpChaosLayer};
use common::Logs;
use serde_json::Value;
use tower::{Layer, ServiceExt, service_fn};

/// The CHAOS_EVENT lines `work` logs through an INFO subscriber, parsed.
fn events(work: impl FnOnce()) -> Vec<Value> {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, work);
    logs.lines()
        .iter()
        .filter_map(|l| l.split_once("CHAOS_EVENT: ").map(|(_, json)| serde_json::from_str(json).unwrap()))
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["event_type"].as_str().unwrap()).collect()
}

const RULES: &str = "
experiment: quote provider
rules:
  - name: outage
    sample: { mode: random, rate: 1.0 }
    fault: { error: { status: 503 } }
";

#[test]
fn arm_first_fault_and_disarm_are_one_line_each() {
    let events = events(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let chaos = ChaosHandle::for_environment(Environment::Test);
            chaos.load(ChaosConfig::from_yaml_str(RULES, None).unwrap()).unwrap();
            let svc = HttpChaosLayer::new(chaos.clone()).layer(service_fn(|_: http::Request<String>| async {
                Ok::<_, std::io::Error>(http::Response::new(String::new()))
            }));
            for _ in 0..50 {
                let answer = svc.clone().oneshot(http::Request::new(String::new())).await.unwrap();
                assert_eq!(answer.status(), 503);
            }
            chaos.disarm();
            // Armed again: the first fault of the new arming is announced again.
            chaos.arm().unwrap();
            let _ = svc.clone().oneshot(http::Request::new(String::new())).await.unwrap();
            chaos.disarm();
        });
    });
    assert_eq!(
        kinds(&events),
        [
            "chaos_armed",
            "chaos_failure_injected",
            "chaos_disarmed",
            "chaos_armed",
            "chaos_failure_injected",
            "chaos_disarmed"
        ],
        "{events:#?}"
    );
    for e in &events {
        for field in brownout_chaos::event::FIELDS {
            assert!(e.get(field).is_some(), "no `{field}` in {e}");
        }
        assert_eq!(e["failure_type"], "CHAOS_QUOTE_PROVIDER");
        assert_eq!(e["metadata"]["chaos_scenario"], "quote provider");
    }
    assert_eq!(events[1]["component_id"], "outage");
    assert_eq!(events[1]["metadata"]["kind"], "error");
    assert_eq!(events[2]["metadata"]["reason"], "kill switch");
}

#[test]
fn the_slo_guards_abort_is_an_event() {
    let events = events(|| {
        let chaos = ChaosHandle::for_environment(Environment::Test);
        chaos.load(ChaosConfig::from_yaml_str(RULES, None).unwrap()).unwrap();
        let limits = SloLimits::new(0.1, Duration::from_secs(1)).window(Duration::from_secs(60)).min_requests(5);
        let clock = ManualClock::new();
        let guard = SloGuard::new(chaos.controller().clone(), limits, clock.clone()).unwrap();
        for _ in 0..10 {
            guard.record(Duration::from_millis(1), false);
        }
        // The window is judged when it closes: at the first answer after it.
        clock.advance(Duration::from_secs(61));
        guard.record(Duration::from_millis(1), false);
        assert!(!chaos.is_armed());
    });
    assert_eq!(kinds(&events), ["chaos_armed", "chaos_aborted", "chaos_disarmed"], "{events:#?}");
    assert_eq!(events[2]["metadata"]["reason"], "slo guard");
}
