//! The slow-disk wrapper and the per-request CPU burn.

use std::time::Duration;

use brownout_chaos::{ChaosConfig, Environment, FaultKind};
use brownout_tower::{ChaosHandle, ChaosIo, InjectedError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, Service, ServiceExt, service_fn};

fn handle(yaml: &str) -> ChaosHandle {
    let handle = ChaosHandle::for_environment(Environment::Test);
    handle.load(ChaosConfig::from_yaml_str(yaml, None).expect("test config parses")).expect("test config loads");
    handle
}

#[tokio::test(start_paused = true)]
async fn writes_are_delayed_and_reads_are_not() {
    let handle = handle(
        "rules: [{ name: slow-writes, match: { route: io/journal/write }, sample: { mode: exact, rate: 1.0 }, \
         fault: { latency: { fixed: 40ms } } }]",
    );
    let mut file = ChaosIo::new(Vec::new(), "journal", &handle);
    let start = tokio::time::Instant::now();
    for _ in 0..5 {
        file.write_all(b"0123456789").await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_millis(200), "five writes, 40 ms each");
    assert_eq!(file.get_ref().len(), 50, "every byte written");
    assert_eq!(handle.snapshot().rules[0].injected, 5);

    let mut reader = ChaosIo::new(&b"abc"[..], "journal", &handle);
    let start = tokio::time::Instant::now();
    let mut out = String::new();
    reader.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "abc");
    assert_eq!(start.elapsed(), Duration::ZERO, "reads are not targeted");
}

#[tokio::test(start_paused = true)]
async fn an_error_fault_fails_the_operation_with_an_injected_error() {
    let handle = handle(
        "rules: [{ name: disk-full, match: { route: 'io/journal/*' }, sample: { mode: every_nth, nth: 2 }, \
         fault: { error: { message: no space left } } }]",
    );
    let mut file = ChaosIo::new(Vec::new(), "journal", &handle);
    file.write_all(b"first").await.unwrap();
    let err = file.write_all(b"second").await.unwrap_err();
    let injected = err.get_ref().and_then(|e| e.downcast_ref::<InjectedError>()).expect("an injected error");
    assert_eq!(injected.rule(), "disk-full");
    assert_eq!(file.get_ref().as_slice(), b"first", "the failed write wrote nothing");
    file.write_all(b"third").await.unwrap();
    assert_eq!(file.get_ref().as_slice(), b"firstthird");
}

#[tokio::test(start_paused = true)]
async fn the_kill_switch_cuts_a_slow_write_short() {
    let handle = handle(
        "rules: [{ name: stuck, match: { route: io/journal/write }, sample: { mode: exact, rate: 1.0 }, \
         fault: { latency: { fixed: 1h } } }]",
    );
    let mut file = ChaosIo::new(Vec::new(), "journal", &handle);
    let start = tokio::time::Instant::now();
    let killer = {
        let handle = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            handle.disarm();
        })
    };
    file.write_all(b"x").await.unwrap();
    killer.await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

/// Process CPU time, from the sensor.
fn process_cpu() -> Duration {
    brownout_chaos::sense::Probe::new().sample().cpu_time
}

#[tokio::test(flavor = "current_thread")]
async fn cpu_burn_spends_cpu_on_the_request_path() {
    let handle =
        handle("rules: [{ name: noisy, sample: { mode: exact, rate: 1.0 }, fault: { cpu_burn: { cpu: 60ms } } }]");
    let mut service = handle.layer().layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
    let before = process_cpu();
    let answer = service.ready().await.unwrap().call(7).await.unwrap();
    let spent = process_cpu() - before;
    assert_eq!(answer, 7, "the request proceeds after the burn");
    assert!(spent >= Duration::from_millis(54), "burned only {spent:?} of CPU");
    let stats = &handle.snapshot().rules[0];
    assert_eq!((stats.kind, stats.injected), (FaultKind::CpuBurn.as_str(), 1));
}

#[test]
fn cpu_burn_is_bounded_per_request() {
    let config = ChaosConfig::from_yaml_str(
        "rules: [{ name: noisy, sample: { mode: exact, rate: 1.0 }, fault: { cpu_burn: { cpu: 5s } } }]",
        None,
    )
    .unwrap();
    let err = ChaosHandle::for_environment(Environment::Test).load(config).unwrap_err();
    assert_eq!(err.field(), "rules[0].fault.cpu_burn.cpu");
}
