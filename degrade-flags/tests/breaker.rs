//! Behaviour of the circuit breaker, one test per promise. Time moves by hand ([`ManualClock`]): no sleeps.

use std::sync::Arc;
use std::time::Duration;

use brownout_degrade::breaker::{
    Backoff, BreakerConfig, BreakerMap, CircuitBreaker, ForcedState, ManualClock, Outcome, ResultClassifier,
    SlidingWindow, SlowCalls, State,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

const FAST: Duration = Duration::from_millis(5);

fn config() -> BreakerConfig {
    BreakerConfig::default()
        .failure_rate_threshold(0.5)
        .minimum_calls(10)
        .window(SlidingWindow::Count { calls: 100, buckets: 10 })
        .open_duration(Duration::from_secs(10))
        .half_open_probes(3)
}

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    (CircuitBreaker::new("test", config, clock.clone()).unwrap(), clock)
}

fn call(b: &CircuitBreaker, outcome: Outcome, elapsed: Duration) -> bool {
    match b.try_acquire() {
        Ok(permit) => {
            permit.record(outcome, elapsed);
            true
        }
        Err(_) => false,
    }
}

fn open(b: &CircuitBreaker) {
    while b.state() == State::Closed {
        assert!(call(b, Outcome::Failure, FAST));
    }
    assert_eq!(b.state(), State::Open);
}

#[test]
fn does_not_judge_before_minimum_calls() {
    let (b, _) = breaker(config());
    for _ in 0..9 {
        assert!(call(&b, Outcome::Failure, FAST));
    }
    assert_eq!(b.state(), State::Closed, "9 failures of 9 calls: under minimum_calls (10)");
    assert!(call(&b, Outcome::Failure, FAST));
    assert_eq!(b.state(), State::Open, "the 10th call reaches minimum_calls at a failure rate of 1.0");
}

#[test]
fn opens_when_failure_rate_reaches_threshold_not_below() {
    let (b, _) = breaker(config());
    for _ in 0..6 {
        call(&b, Outcome::Success, FAST);
    }
    for _ in 0..4 {
        call(&b, Outcome::Failure, FAST);
    }
    assert_eq!(b.state(), State::Closed, "4 of 10 failed: 0.4 is under 0.5");
    assert_eq!(b.snapshot().failure_rate, 0.4);
    call(&b, Outcome::Failure, FAST);
    assert_eq!(b.state(), State::Closed, "5 of 11: 0.45");
    call(&b, Outcome::Failure, FAST);
    assert_eq!(b.state(), State::Open, "6 of 12: 0.5 reaches the threshold");
    let err = b.try_acquire().unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(10)));
    assert_eq!(err.to_string(), "circuit breaker is open");
}

#[test]
fn slow_call_rate_opens_it() {
    let slow = SlowCalls::new(Duration::from_secs(1), 0.5);
    let (b, _) = breaker(config().slow_calls(slow));
    for _ in 0..6 {
        call(&b, Outcome::Success, FAST);
    }
    for _ in 0..4 {
        call(&b, Outcome::Success, Duration::from_secs(1));
    }
    assert_eq!(b.state(), State::Closed, "4 slow of 10, no failures");
    assert_eq!(b.snapshot().slow_call_rate, 0.4);
    call(&b, Outcome::Success, Duration::from_millis(1500));
    call(&b, Outcome::Success, Duration::from_secs(2));
    assert_eq!(b.state(), State::Open, "6 slow successes of 12: 0.5");
}

#[test]
fn half_open_admits_bounded_probes_and_closes_after_all_succeed() {
    let (b, clock) = breaker(config());
    open(&b);
    clock.advance(Duration::from_millis(9_999));
    assert!(b.try_acquire().is_err(), "still open 1 ms before the open duration ends");
    clock.advance(Duration::from_millis(1));
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().expect("probe")).collect();
    assert!(probes.iter().all(|p| p.is_probe()));
    assert_eq!(b.state(), State::HalfOpen);
    assert!(b.try_acquire().is_err(), "a 4th concurrent probe is refused");
    let mut probes = probes.into_iter();
    probes.next().unwrap().record(Outcome::Success, FAST);
    assert!(b.try_acquire().is_err(), "a succeeded probe does not free its slot: 3 probes in all");
    probes.next().unwrap().record(Outcome::Success, FAST);
    assert_eq!(b.state(), State::HalfOpen);
    probes.next().unwrap().record(Outcome::Success, FAST);
    assert_eq!(b.state(), State::Closed, "3 successful probes close it");
    assert_eq!(b.snapshot().calls, 0, "the window restarts when it closes");
}

#[test]
fn dropped_or_ignored_probe_gives_its_slot_back() {
    let (b, clock) = breaker(config().half_open_probes(1));
    open(&b);
    clock.advance(Duration::from_secs(10));
    let probe = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(probe);
    let probe = b.try_acquire().expect("the dropped probe's slot is free again");
    probe.record(Outcome::Ignored, FAST);
    let probe = b.try_acquire().expect("the ignored probe's slot is free again");
    probe.record(Outcome::Success, FAST);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn probe_failure_reopens_with_backoff_doubling_up_to_the_cap() {
    let backoff = Backoff::new(2.0, Duration::from_secs(35));
    let (b, clock) = breaker(config().backoff(backoff));
    open(&b);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let wait = b.try_acquire().unwrap_err().retry_after().unwrap();
        waits.push(wait.as_secs());
        clock.advance(wait);
        b.try_acquire().expect("probe").record(Outcome::Failure, FAST);
        assert_eq!(b.state(), State::Open, "a failed probe reopens it");
    }
    waits.push(b.try_acquire().unwrap_err().retry_after().unwrap().as_secs());
    assert_eq!(waits, [10, 20, 35, 35, 35]);
    // Closing resets the backoff.
    clock.advance(Duration::from_secs(35));
    for _ in 0..3 {
        b.try_acquire().unwrap().record(Outcome::Success, FAST);
    }
    assert_eq!(b.state(), State::Closed);
    open(&b);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(10)));
}

#[test]
fn time_window_forgets_old_buckets() {
    let window = SlidingWindow::Time { duration: Duration::from_secs(10), buckets: 10 };
    let (b, clock) = breaker(config().window(window).minimum_calls(100));
    for _ in 0..3 {
        call(&b, Outcome::Failure, FAST);
    }
    clock.advance(Duration::from_secs(5));
    for _ in 0..4 {
        call(&b, Outcome::Success, FAST);
    }
    clock.advance(Duration::from_millis(4_999));
    let s = b.snapshot();
    assert_eq!((s.calls, s.failures), (7, 3), "at 9.999 s every bucket is in the 10 s window");
    clock.advance(Duration::from_millis(1));
    let s = b.snapshot();
    assert_eq!((s.calls, s.failures), (4, 0), "at 10 s the first bucket has left the window");
    clock.advance(Duration::from_secs(5));
    assert_eq!(b.snapshot().calls, 0, "at 15 s so has the second");
}

#[test]
fn count_window_keeps_the_last_buckets() {
    let window = SlidingWindow::Count { calls: 20, buckets: 4 };
    let (b, _) = breaker(config().window(window).minimum_calls(20));
    b.force(ForcedState::ForcedClosed); // recorded in the window, never opened
    for _ in 0..5 {
        call(&b, Outcome::Failure, FAST);
    }
    for _ in 0..15 {
        call(&b, Outcome::Success, FAST);
    }
    assert_eq!((b.snapshot().calls, b.snapshot().failures), (20, 5));
    for _ in 0..4 {
        call(&b, Outcome::Success, FAST);
    }
    assert_eq!((b.snapshot().calls, b.snapshot().failures), (24, 5), "a partial bucket adds to 4 full ones");
    call(&b, Outcome::Success, FAST);
    assert_eq!((b.snapshot().calls, b.snapshot().failures), (20, 0), "the 5th bucket pushed out the failures");
}

#[test]
fn forced_states_override_the_machine() {
    let (b, _) = breaker(config());
    b.force(ForcedState::ForcedOpen);
    assert!(b.try_acquire().is_err(), "forced open rejects");
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), None);

    b.force(ForcedState::ForcedClosed);
    for _ in 0..50 {
        assert!(call(&b, Outcome::Failure, FAST));
    }
    assert_eq!(b.state(), State::Closed, "forced closed never opens");
    assert_eq!(b.snapshot().failure_rate, 1.0, "but records the window");

    b.force(ForcedState::Disabled);
    for _ in 0..50 {
        assert!(call(&b, Outcome::Failure, FAST));
    }
    assert_eq!(b.snapshot().calls, 0, "disabled records nothing");

    b.force(ForcedState::MetricsOnly);
    for _ in 0..10 {
        assert!(call(&b, Outcome::Failure, FAST));
    }
    assert_eq!(b.state(), State::Open, "metrics-only runs the machine");
    assert!(call(&b, Outcome::Success, FAST), "but admits while open");

    b.force(ForcedState::None);
    assert_eq!((b.state(), b.forced()), (State::Closed, ForcedState::None), "leaving restarts closed");
    open(&b);
    b.reset();
    assert_eq!(b.state(), State::Closed, "reset closes");
    assert_eq!("metrics_only".parse::<ForcedState>(), Ok(ForcedState::MetricsOnly));
    assert!("isolate".parse::<ForcedState>().is_err());
}

#[test]
fn stale_permit_does_not_count_in_the_new_window() {
    let (b, clock) = breaker(config());
    let held = b.try_acquire().unwrap();
    open(&b);
    clock.advance(Duration::from_secs(10));
    for _ in 0..3 {
        b.try_acquire().unwrap().record(Outcome::Success, FAST);
    }
    assert_eq!(b.state(), State::Closed);
    held.record(Outcome::Failure, FAST);
    assert_eq!(b.snapshot().calls, 0, "a permit from before the transitions is not in the new window");
}

#[test]
fn classifier_decides_outcomes() {
    let (b, _) = breaker(config().minimum_calls(1));
    #[derive(Debug)]
    enum E {
        Injected,
        Real,
    }
    let ignore_injected = |r: &Result<(), E>| match r {
        Ok(()) => Outcome::Success,
        Err(E::Injected) => Outcome::Ignored,
        Err(E::Real) => Outcome::Failure,
    };
    for _ in 0..5 {
        b.try_acquire().unwrap().record_with(&Err(E::Injected), &ignore_injected, FAST);
    }
    assert_eq!((b.state(), b.snapshot().calls), (State::Closed, 0), "injected faults ignored");
    b.try_acquire().unwrap().record_with(&Ok::<(), E>(()), &ResultClassifier, FAST);
    b.try_acquire().unwrap().record_with(&Err::<(), E>(E::Real), &ResultClassifier, FAST);
    assert_eq!(b.state(), State::Open, "1 of 2 real failures");
}

#[test]
fn per_key_map_stays_within_its_capacity_and_keeps_open_breakers() {
    let map = BreakerMap::new("downstreams", config(), ManualClock::new(), 3).unwrap();
    let hot = map.get(&"hot".to_string());
    open(&hot);
    for i in 0..100 {
        map.get(&format!("key-{i}"));
        assert!(map.len() <= 3);
    }
    assert_eq!(map.len(), 3);
    assert!(Arc::ptr_eq(&map.peek(&"hot".to_string()).expect("an open breaker is evicted last"), &hot));
    assert!(map.peek(&"key-0".to_string()).is_none(), "the least recently used closed key went first");
    assert!(map.peek(&"key-99".to_string()).is_some());
    map.force(ForcedState::ForcedOpen);
    assert!(map.get(&"new".to_string()).try_acquire().is_err(), "new keys get the map's forced state");
    assert_eq!(BreakerMap::<String>::new("m", config(), ManualClock::new(), 0).unwrap_err().field(), "capacity");
}

/// The debugging recorder's snapshots reset counters and gauges to zero: this sums counters over snapshots
/// and keeps the last value of each gauge.
#[derive(Default)]
struct Seen(Vec<(CompositeKey, DebugValue)>);

impl Seen {
    fn take(&mut self, snapshotter: &Snapshotter) {
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            match self.0.iter_mut().find(|(k, _)| *k == key) {
                Some((_, DebugValue::Counter(sum))) => {
                    if let DebugValue::Counter(n) = value {
                        *sum += n;
                    }
                }
                Some((_, old)) => *old = value,
                None => self.0.push((key, value)),
            }
        }
    }

    /// A counter's sum or a gauge's last value.
    fn find(&self, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0.iter().find_map(|(key, value)| {
            let k = key.key();
            let hit = key.kind() == kind
                && k.name() == name
                && labels.iter().all(|(n, v)| k.labels().any(|l| l.key() == *n && l.value() == *v))
                && k.labels().count() == labels.len();
            match value {
                DebugValue::Counter(n) if hit => Some(*n as f64),
                DebugValue::Gauge(g) if hit => Some(g.into_inner()),
                _ => None,
            }
        })
    }

    fn gauge(&mut self, snapshotter: &Snapshotter) -> Option<f64> {
        self.take(snapshotter);
        self.find(MetricKind::Gauge, "circuit_breaker_state", &[("breaker", "test")])
    }

    fn calls(&self, outcome: &str) -> Option<f64> {
        self.find(MetricKind::Counter, "circuit_breaker_calls_total", &[("breaker", "test"), ("outcome", outcome)])
    }
}

#[test]
fn metrics_report_state_transitions_and_calls() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let slow = SlowCalls::new(Duration::from_secs(1), 1.0);
        let (b, clock) = breaker(config().slow_calls(slow));
        let mut seen = Seen::default();
        let mut gauge = |snap: &Snapshotter| seen.gauge(snap);
        assert_eq!(gauge(&snap), Some(0.0));
        for _ in 0..4 {
            call(&b, Outcome::Success, FAST);
        }
        call(&b, Outcome::Success, Duration::from_secs(2));
        drop(b.try_acquire().unwrap());
        b.try_acquire().unwrap().record(Outcome::Ignored, FAST);
        open(&b); // 5 failures: 5 of 10
        assert!(b.try_acquire().is_err());
        assert!(b.try_acquire().is_err());
        assert_eq!(gauge(&snap), Some(1.0));
        clock.advance(Duration::from_secs(10));
        let probe = b.try_acquire().unwrap();
        assert_eq!(gauge(&snap), Some(2.0));
        probe.record(Outcome::Success, FAST);
        b.force(ForcedState::Disabled);
        assert_eq!(gauge(&snap), Some(5.0));
        b.publish_metrics();
        seen.take(&snap);

        let transitions = |from, to| {
            seen.find(
                MetricKind::Counter,
                "circuit_breaker_transitions_total",
                &[("breaker", "test"), ("from", from), ("to", to)],
            )
        };
        assert_eq!(transitions("closed", "open"), Some(1.0));
        assert_eq!(transitions("open", "half_open"), Some(1.0));
        assert_eq!(transitions("half_open", "disabled"), Some(1.0));
        let calls = |outcome| seen.calls(outcome);
        assert_eq!(calls("success"), Some(5.0), "4 closed + 1 probe");
        assert_eq!(calls("slow"), Some(1.0));
        assert_eq!(calls("failure"), Some(5.0));
        assert_eq!(calls("rejected"), Some(2.0), "the two calls while open");
        assert_eq!(calls("ignored"), Some(2.0), "one dropped, one recorded as ignored");
    });
}

#[test]
fn config_errors_name_the_field() {
    let bad = |f: fn(&mut BreakerConfig)| {
        let mut c = BreakerConfig::default();
        f(&mut c);
        c.validate().unwrap_err().field().to_owned()
    };
    assert_eq!(bad(|c| c.failure_rate_threshold = 1.5), "failure_rate_threshold");
    assert_eq!(bad(|c| c.failure_rate_threshold = f64::NAN), "failure_rate_threshold");
    assert_eq!(bad(|c| c.slow_calls = Some(SlowCalls::new(Duration::ZERO, 0.5))), "slow_calls.duration");
    assert_eq!(bad(|c| c.slow_calls = Some(SlowCalls::new(Duration::from_secs(1), 0.0))), "slow_calls.rate_threshold");
    assert_eq!(bad(|c| c.minimum_calls = 0), "minimum_calls");
    assert_eq!(bad(|c| c.window = SlidingWindow::Count { calls: 0, buckets: 1 }), "window.count.calls");
    assert_eq!(bad(|c| c.window = SlidingWindow::Count { calls: 10, buckets: 3 }), "window.count.buckets");
    assert_eq!(
        bad(|c| c.window = SlidingWindow::Time { duration: Duration::from_millis(5), buckets: 10 }),
        "window.time.duration"
    );
    assert_eq!(
        bad(|c| c.window = SlidingWindow::Time { duration: Duration::from_secs(5), buckets: 0 }),
        "window.time.buckets"
    );
    assert_eq!(bad(|c| c.open_duration = Duration::ZERO), "open_duration");
    assert_eq!(bad(|c| c.backoff = Some(Backoff::new(0.5, Duration::from_secs(60)))), "backoff.multiplier");
    assert_eq!(bad(|c| c.backoff = Some(Backoff::new(2.0, Duration::from_secs(1)))), "backoff.max");
    assert_eq!(bad(|c| c.half_open_probes = 0), "half_open_probes");
    let err = CircuitBreaker::new("x", config().minimum_calls(0), ManualClock::new()).unwrap_err();
    assert_eq!(err.to_string(), "circuit breaker: minimum_calls: must be at least 1");

    // Parsing: unknown fields and bad durations are refused, naming the field.
    let err = serde_json::from_str::<BreakerConfig>(r#"{"open_duraton": "30s"}"#).unwrap_err().to_string();
    assert!(err.contains("open_duraton"), "{err}");
    let err = serde_json::from_str::<BreakerConfig>(r#"{"window": {"count": {"calls": 10, "bucket": 2}}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bucket"), "{err}");
    let err = serde_json::from_str::<BreakerConfig>(r#"{"open_duration": "soon"}"#).unwrap_err().to_string();
    assert!(err.contains("soon"), "{err}");
    let ok: BreakerConfig = serde_json::from_str(r#"{"open_duration": "1m 30s"}"#).unwrap();
    assert_eq!(ok.open_duration, Duration::from_secs(90));
}

#[test]
fn two_threads_hammering_add_up() {
    const PER_THREAD: u64 = 100_000;
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        // A window longer than the test (the clock does not move), forced closed: every call stays in it.
        let window = SlidingWindow::Time { duration: Duration::from_secs(60), buckets: 6 };
        let (b, _) = breaker(config().window(window));
        b.force(ForcedState::ForcedClosed);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for i in 0..PER_THREAD {
                        let permit = b.try_acquire().expect("forced closed admits");
                        match i % 4 {
                            0 => permit.record(Outcome::Failure, FAST),
                            1 => permit.record(Outcome::Ignored, FAST),
                            _ => permit.record(Outcome::Success, FAST),
                        }
                    }
                });
            }
        });
        let s = b.snapshot();
        assert_eq!((s.calls, s.failures), (2 * PER_THREAD * 3 / 4, 2 * PER_THREAD / 4));
        b.publish_metrics();
        let mut seen = Seen::default();
        seen.take(&snap);
        let calls = |outcome| seen.calls(outcome);
        assert_eq!(calls("success"), Some((2 * PER_THREAD / 2) as f64));
        assert_eq!(calls("failure"), Some((2 * PER_THREAD / 4) as f64));
        assert_eq!(calls("ignored"), Some((2 * PER_THREAD / 4) as f64));

        // And the count window under the real machine: the window holds its calls, give or take a bucket per
        // thread, and the two threads' successes do not open it.
        let (b, _) = breaker(config());
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..PER_THREAD {
                        b.try_acquire().expect("closed").record(Outcome::Success, FAST);
                    }
                });
            }
        });
        let s = b.snapshot();
        assert_eq!(b.state(), State::Closed);
        assert!((100..=100 + 2 * 10).contains(&s.calls), "window holds {} calls", s.calls);
    });
}

#[test]
fn a_minimum_above_the_count_window_is_refused() {
    // 5 calls in the window and the default minimum of 10: the window is never judged, so it never opens.
    let config = BreakerConfig::default().window(SlidingWindow::Count { calls: 5, buckets: 5 });
    let err = config.validate().unwrap_err();
    assert_eq!(err.field(), "minimum_calls");
    assert!(err.reason().contains("never open"), "{err}");
    assert!(err.reason().contains("(5)") && err.reason().contains("got 10"), "{err}");
    assert!(CircuitBreaker::new("x", config.clone(), ManualClock::new()).is_err());
    // At the window's size it is accepted; a time window accepts any minimum (its size follows the traffic).
    let at_size = config.minimum_calls(5);
    at_size.validate().unwrap();
    let time = SlidingWindow::Time { duration: Duration::from_secs(1), buckets: 1 };
    BreakerConfig::default().window(time).minimum_calls(1_000_000).validate().unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Every count-window config that validates can open: a run of failures as long as the window opens it.
    /// Every config whose minimum is above the window's size is refused, naming `minimum_calls`.
    #[test]
    fn every_accepted_count_window_can_open(
        bucket_calls in 1u32..8,
        buckets in 1u32..8,
        minimum_calls in 1u32..80,
        threshold in 0.01f64..=1.0,
    ) {
        let calls = bucket_calls * buckets;
        let config = BreakerConfig::default()
            .window(SlidingWindow::Count { calls, buckets })
            .minimum_calls(minimum_calls)
            .failure_rate_threshold(threshold);
        match CircuitBreaker::new("p", config, ManualClock::new()) {
            Err(err) => {
                proptest::prop_assert!(minimum_calls > calls, "refused {minimum_calls} <= {calls}: {err}");
                proptest::prop_assert_eq!(err.field(), "minimum_calls");
            }
            Ok(b) => {
                proptest::prop_assert!(minimum_calls <= calls);
                for _ in 0..calls {
                    call(&b, Outcome::Failure, FAST);
                }
                proptest::prop_assert_eq!(b.state(), State::Open);
            }
        }
    }
}

#[test]
fn reset_announces_real_transitions_only() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let b = CircuitBreaker::new("r", config(), ManualClock::new())
        .unwrap()
        .with_listener(move |t| log.lock().unwrap().push((t.from.state, t.to.state)));
    for _ in 0..3 {
        call(&b, Outcome::Failure, FAST);
    }
    b.reset();
    assert!(seen.lock().unwrap().is_empty(), "closed → closed is no transition: {:?}", seen.lock().unwrap());
    assert_eq!(b.snapshot().calls, 0, "the reset still empties the window");
    open(&b);
    b.reset();
    assert_eq!(*seen.lock().unwrap(), [(State::Closed, State::Open), (State::Open, State::Closed)]);
    b.reset();
    assert_eq!(seen.lock().unwrap().len(), 2, "a second reset of a closed breaker says nothing");
    // A forced state is kept, and resetting under it announces nothing either.
    b.force(ForcedState::ForcedOpen);
    let before = seen.lock().unwrap().len();
    b.reset();
    assert_eq!(b.forced(), ForcedState::ForcedOpen);
    assert_eq!(seen.lock().unwrap().len(), before);
}

#[test]
fn a_call_of_exactly_the_slow_threshold_is_slow() {
    let slow = SlowCalls::new(Duration::from_secs(1), 1.0);
    let (b, _) = breaker(config().slow_calls(slow).minimum_calls(1));
    call(&b, Outcome::Success, Duration::from_secs(1) - Duration::from_nanos(1));
    assert_eq!(b.snapshot().slow_calls, 0);
    let (b, _) = breaker(config().slow_calls(slow).minimum_calls(1));
    call(&b, Outcome::Success, Duration::from_secs(1));
    assert_eq!(b.state(), State::Open, "exactly the threshold is slow, and 1 slow call of 1 opens it");
}
