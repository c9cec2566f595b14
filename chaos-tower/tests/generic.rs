//! The generic flavour through `tower_test::mock`, with paused time.

use std::time::Duration;

use brownout_chaos::{ChaosConfig, Environment, FaultKind};
use brownout_tower::{ChaosHandle, ChaosLayer, InjectedError};
use tokio_test::task;
use tower::{Layer, Service, ServiceExt};
use tower_test::{assert_request_eq, mock};

fn config(yaml: &str) -> ChaosConfig {
    ChaosConfig::from_yaml_str(yaml, None).expect("test config parses")
}

fn handle(yaml: &str) -> ChaosHandle {
    let handle = ChaosHandle::for_environment(Environment::Test);
    handle.load(config(yaml)).expect("test config loads");
    handle
}

#[tokio::test(start_paused = true)]
async fn nothing_armed_passes_requests_and_errors_through() {
    let handle = ChaosHandle::for_environment(Environment::Test);
    let (mut service, mut mock) = mock::spawn_layer::<u32, u32, _>(handle.layer());
    assert!(service.poll_ready().is_ready());
    let response = service.call(7);
    assert_request_eq!(mock, 7).send_response(70);
    assert_eq!(response.await.unwrap(), 70);

    assert!(service.poll_ready().is_ready());
    let response = service.call(8);
    assert_request_eq!(mock, 8).send_error("boom");
    let err = response.await.unwrap_err();
    assert_eq!(err.to_string(), "boom");
    assert!(!err.is::<InjectedError>());
}

#[tokio::test(start_paused = true)]
async fn backpressure_passes_through_and_errors_are_never_injected_in_poll_ready() {
    let handle = handle("rules: [{ name: fail-all, sample: { mode: exact, rate: 1.0 }, fault: { error: {} } }]");
    let (mut service, mut mock) = mock::spawn_layer::<u32, u32, _>(handle.layer());
    mock.allow(0);
    assert!(service.poll_ready().is_pending(), "inner not ready: neither are we");
    mock.allow(1);
    assert!(service.poll_ready().is_ready());
    // The request is answered by the fault, without calling the inner service...
    let err = service.call(1).await.unwrap_err();
    let injected = err.downcast_ref::<InjectedError>().expect("typed error");
    assert_eq!(injected.rule(), "fail-all");
    assert_eq!(injected.kind(), FaultKind::Error);
    // ...whose reserved readiness serves the next request once chaos is off.
    handle.disarm();
    assert!(service.poll_ready().is_ready());
    let response = service.call(2);
    assert_request_eq!(mock, 2).send_response(20);
    assert_eq!(response.await.unwrap(), 20);
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_switch() {
    let handle = handle("rules: [{ name: fail-all, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]");
    let (service, mut mock) = mock::pair::<u32, u32>();
    let mut a = ChaosLayer::new(handle.clone()).layer(service);
    let mut b = a.clone();
    assert!(a.ready().await.unwrap().call(1).await.unwrap_err().is::<InjectedError>());
    handle.disarm();
    mock.allow(1);
    let response = b.ready().await.unwrap().call(2);
    assert_request_eq!(mock, 2).send_response(3);
    assert_eq!(response.await.unwrap(), 3);
}

#[tokio::test(start_paused = true)]
async fn latency_waits_in_paused_time_then_calls_the_inner_service() {
    let handle =
        handle("rules: [{ name: slow, sample: { mode: exact, rate: 1.0 }, fault: { latency: { fixed: 250ms } } }]");
    let (mut service, mut mock) = mock::spawn_layer::<u32, u32, _>(handle.layer());
    assert!(service.poll_ready().is_ready());
    let start = tokio::time::Instant::now();
    let response = tokio::spawn(service.call(5));
    assert_request_eq!(mock, 5).send_response(50);
    assert_eq!(response.await.unwrap().unwrap(), 50);
    assert_eq!(start.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn the_kill_switch_cuts_a_delay_short() {
    let handle =
        handle("rules: [{ name: slow, sample: { mode: exact, rate: 1.0 }, fault: { latency: { fixed: 1h } } }]");
    let (mut service, mut mock) = mock::spawn_layer::<u32, u32, _>(handle.layer());
    assert!(service.poll_ready().is_ready());
    let start = tokio::time::Instant::now();
    let response = tokio::spawn(service.call(5));
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.disarm();
    assert_request_eq!(mock, 5).send_response(50);
    assert_eq!(response.await.unwrap().unwrap(), 50);
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_hang_gives_up_at_its_bound() {
    let handle = handle("rules: [{ name: stuck, sample: { mode: exact, rate: 1.0 }, fault: { hang: { max: 30s } } }]");
    let (mut service, _mock) = mock::spawn_layer::<u32, u32, _>(handle.layer());
    assert!(service.poll_ready().is_ready());
    // The caller's own timeout fires first.
    let timed = tokio::time::timeout(Duration::from_secs(5), service.call(1)).await;
    assert!(timed.is_err(), "a hang does not answer before the caller's timeout");
    assert!(service.poll_ready().is_ready());
    let start = tokio::time::Instant::now();
    let err = service.call(2).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(err.downcast_ref::<InjectedError>().unwrap().kind(), FaultKind::Hang);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_request_gives_its_active_slot_back() {
    let handle = handle(
        "rules: [{ name: slow, max_active: 1, sample: { mode: exact, rate: 1.0 }, fault: { latency: { fixed: 10s } } }]",
    );
    let (mut service, mut mock) = mock::spawn_layer::<u32, u32, _>(handle.layer());
    assert!(service.poll_ready().is_ready());
    let first = service.call(1);
    // The delayed request has called the inner service already; its answer waits for the delay.
    let _first_reply = assert_request_eq!(mock, 1);
    assert_eq!(handle.snapshot().rules[0].active, 1);
    // A second request while the slot is taken is not delayed (and counts as overflow).
    assert!(service.poll_ready().is_ready());
    let second = tokio::spawn(service.call(2));
    assert_request_eq!(mock, 2).send_response(2);
    assert_eq!(second.await.unwrap().unwrap(), 2);
    assert_eq!(handle.snapshot().rules[0].overflow, 1);
    drop(first);
    assert_eq!(handle.snapshot().rules[0].active, 0);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_error_carries_retry_after() {
    let handle = handle(
        "rules: [{ name: rl, sample: { mode: exact, rate: 1.0 }, fault: { rate_limit: { retry_after: 1500ms } } }]",
    );
    let (mut service, _mock) = mock::spawn_layer::<u32, u32, _>(handle.layer());
    assert!(service.poll_ready().is_ready());
    let err = service.call(1).await.unwrap_err();
    let injected = err.downcast_ref::<InjectedError>().unwrap();
    assert_eq!(injected.retry_after(), Some(Duration::from_secs(2)), "whole seconds, rounded up");
    assert_eq!(err.to_string(), "chaos rule `rl` injected rate_limit (retry after 2s)");
}

#[tokio::test(start_paused = true)]
async fn the_ttl_disarms_the_rules() {
    let handle = handle("ttl: 10s\nrules: [{ name: f, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]");
    let (mut service, mut mock) = mock::spawn_layer::<u32, u32, _>(handle.layer());
    assert!(service.poll_ready().is_ready());
    assert!(service.call(1).await.is_err());
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(service.poll_ready().is_ready());
    let response = service.call(2);
    assert_request_eq!(mock, 2).send_response(2);
    assert_eq!(response.await.unwrap(), 2);
    assert!(!handle.is_armed(), "expiry disarms the handle");
}

#[tokio::test(start_paused = true)]
async fn rule_windows_follow_the_clock() {
    let handle = handle(
        "rules: [{ name: w, start_after: 5s, duration: 5s, sample: { mode: exact, rate: 1.0 }, fault: { reset: {} } }]",
    );
    let (mut service, mut mock) = mock::spawn_layer::<u32, u32, _>(handle.layer());
    let mut outcomes = Vec::new();
    for second in 0..12u32 {
        assert!(service.poll_ready().is_ready());
        let mut response = task::spawn(service.call(second));
        let injected = match response.poll() {
            std::task::Poll::Ready(Err(e)) => e.is::<InjectedError>(),
            _ => {
                assert_request_eq!(mock, second).send_response(second);
                assert_eq!(response.await.unwrap(), second);
                false
            }
        };
        outcomes.push(injected);
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let expected: Vec<bool> = (0..12).map(|s| (5..10).contains(&s)).collect();
    assert_eq!(outcomes, expected);
}

#[test]
fn config_is_what_was_loaded() {
    let handle = handle("experiment: e1\nseed: 9\nrules: []");
    let config: ChaosConfig = handle.controller().config();
    assert_eq!(config.experiment.as_deref(), Some("e1"));
    assert_eq!(handle.snapshot().seed, 9);
}
