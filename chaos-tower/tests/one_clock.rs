//! One clock for the whole pipeline: on paused tokio time, a single `tokio::time::advance` moves the rule
//! windows, a circuit breaker, a trigger on a latency window and the SLO guard together, each given
//! [`TokioClock`] (the rules and the trigger by default). A breaker left on [`SystemClock`] does not move: the
//! negative control below keeps that difference visible.

use std::sync::Arc;
use std::time::Duration;

use brownout_chaos::{SloGuard, SloLimits};
use brownout_degrade::Flags;
use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, Outcome, SlidingWindow, State};
use brownout_degrade::flags::FlagKind;
use brownout_tower::degrade::{LatencyWindow, TriggerTask};
use brownout_tower::{ChaosHandle, Clock, SystemClock, TokioClock};
use tokio::time::advance;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

const FLAG: &str = "quotes.cached";

fn breaker(clock: impl Clock) -> Arc<CircuitBreaker> {
    let config = BreakerConfig::default()
        .minimum_calls(2)
        .window(SlidingWindow::Count { calls: 4, buckets: 1 })
        .open_duration(Duration::from_secs(30))
        .half_open_probes(1);
    Arc::new(CircuitBreaker::new("provider", config, clock).unwrap())
}

/// Opens `breaker` with two failures.
fn trip(breaker: &CircuitBreaker) {
    for _ in 0..2 {
        breaker.try_acquire().unwrap().record(Outcome::Failure, Duration::from_millis(1));
    }
    assert_eq!(breaker.state(), State::Open);
}

/// Lets the spawned trigger task run its due ticks (paused time: no real waiting).
async fn settle() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// Whether one call through the chaos layer was failed by an injected fault.
async fn injected(chaos: &ChaosHandle) -> bool {
    let mut service = chaos.layer().layer(service_fn(|_: ()| async { Ok::<_, BoxError>(()) }));
    service.ready().await.unwrap().call(()).await.is_err()
}

#[tokio::test(start_paused = true)]
async fn one_advance_moves_rules_breakers_triggers_and_the_guard() {
    // Rules: a window that opens 10 s after load and lasts 20 s (ChaosHandle reads TokioClock).
    let chaos = ChaosHandle::for_test(
        "rules: [{ name: w, start_after: 10s, duration: 20s, sample: { mode: exact, rate: 1.0 }, fault: { error: {} } }]",
    )
    .unwrap();
    // The breaker, on tokio's clock.
    let breaker = breaker(TokioClock);
    // A trigger on a latency window's error rate, holding its flag at least 60 s (both on TokioClock by default).
    let flags = Flags::new();
    flags.define(FLAG, FlagKind::Bool, "false").unwrap();
    let window = LatencyWindow::new(Duration::from_secs(10)).min_calls(1);
    let _trigger = TriggerTask::builder("provider-errors", FLAG)
        .on_above(0.5)
        .off_below(0.1)
        .min_hold(Duration::from_secs(60))
        .every(Duration::from_secs(1))
        .spawn(&flags, window.error_rate_signal())
        .unwrap();
    // The SLO guard over a 60 s window, on tokio's clock.
    let limits = SloLimits::new(0.1, Duration::from_secs(1)).window(Duration::from_secs(60)).min_requests(5);
    let guard = SloGuard::new(chaos.controller().clone(), limits, TokioClock).unwrap();

    // t = 0: nothing injected yet; open the breaker; the window sees errors; the guard sees failures.
    assert!(!injected(&chaos).await, "the rule's window has not started");
    trip(&breaker);
    for _ in 0..4 {
        window.record(Duration::from_millis(5), false);
    }
    settle().await;
    assert!(flags.bool(FLAG).unwrap().get(), "the trigger flipped on the errors");
    for _ in 0..10 {
        guard.record(Duration::from_millis(1), false);
    }

    // t = 11 s: the rule's window is open.
    advance(Duration::from_secs(11)).await;
    settle().await;
    assert!(injected(&chaos).await, "the rule's window started after start_after");
    assert_eq!(breaker.state(), State::Open, "still inside the open duration");

    // t = 31 s: the rule's window is over; the breaker admits a probe and closes on its success.
    advance(Duration::from_secs(20)).await;
    settle().await;
    assert!(!injected(&chaos).await, "the rule's window ended after its duration");
    let probe = breaker.try_acquire().expect("the open duration is over: a probe is admitted");
    assert!(probe.is_probe());
    probe.record(Outcome::Success, Duration::from_millis(1));
    assert_eq!(breaker.state(), State::Closed);
    // The errors left the latency window (10 s) long ago, but the trigger holds its flag for 60 s.
    assert_eq!(window.error_rate(), None, "the window's errors aged out");
    assert!(flags.bool(FLAG).unwrap().get(), "still within the trigger's minimum hold");

    // t = 61 s: the guard's window closes and is judged at the next answer: it aborts (disarms) the chaos.
    advance(Duration::from_secs(30)).await;
    settle().await;
    assert!(chaos.is_armed());
    guard.record(Duration::from_millis(1), false);
    assert!(!chaos.is_armed(), "the guard judged its window and aborted");
    // The trigger's hold is over: with healthy calls in the window it flips back off.
    window.record(Duration::from_millis(5), true);
    advance(Duration::from_secs(1)).await;
    settle().await;
    assert!(!flags.bool(FLAG).unwrap().get(), "the trigger flipped off after its hold");
}

/// The negative control: the same breaker on [`SystemClock`] does not see paused time move, and stays open
/// after an hour of it (what the examples' breaker did before they passed `TokioClock`).
#[tokio::test(start_paused = true)]
async fn a_breaker_on_the_system_clock_ignores_paused_time() {
    let on_system = breaker(SystemClock);
    let on_tokio = breaker(TokioClock);
    trip(&on_system);
    trip(&on_tokio);
    advance(Duration::from_secs(3600)).await;
    assert!(on_system.try_acquire().is_err(), "the system clock did not move: still open");
    assert!(on_tokio.try_acquire().unwrap().is_probe(), "tokio's clock moved: half-open");
}
