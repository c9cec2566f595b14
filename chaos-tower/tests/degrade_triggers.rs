//! Triggers that flip degrade flags from real signals: a latency window behind a Tower layer, a circuit
//! breaker, the process sensor's samples, a budget. Paused tokio time throughout: the trigger ticks every
//! second at whole seconds, and the tests act at half seconds, so no tick and no test step share an instant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

mod common;

use std::io;

use brownout_chaos::sense::{Sample, Sensor};
use brownout_cost::budget::{AlertLevel, Budget, BudgetMonitor, BudgetSet};
use brownout_cost::{CpuMode, JobRecord, Labels, MemoryMode};
use brownout_degrade::breaker::{BreakerConfig, ForcedState, ManualClock, Outcome, SlidingWindow, State};
use brownout_degrade::flags::{FlagKind, Source};
use brownout_degrade::{CircuitBreaker, Flags};
use brownout_tower::degrade::signals::{breaker_open, budget_critical, cpu_share_of, memory_share, memory_share_of};
use brownout_tower::degrade::{LatencyWindow, ResultOk, Signal, TriggerTask};
use common::{dial, paused, set};
use http::{Request, Response};
use proptest::prelude::*;
use tokio::time::{Instant, sleep};
use tower::{Layer, Service, ServiceExt, service_fn};

const FLAG: &str = "quotes.cached";

fn flags() -> Flags {
    let flags = Flags::new();
    flags.define(FLAG, FlagKind::Bool, "false").unwrap();
    flags
}

fn cached(flags: &Flags) -> bool {
    flags.bool(FLAG).unwrap().get()
}

/// A quote provider that answers `status` after `latency` (paused time).
fn provider(
    status: Arc<AtomicU64>,
    latency: Duration,
) -> impl Service<Request<()>, Response = Response<()>, Error = io::Error, Future: Send> + Clone {
    service_fn(move |_: Request<()>| {
        let status = status.load(Ordering::Relaxed) as u16;
        async move {
            sleep(latency).await;
            Ok::<_, io::Error>(Response::builder().status(status).body(()).unwrap())
        }
    })
}

/// Sends `n` requests through `client`, all at once.
async fn calls<S>(client: &S, n: usize)
where
    S: Service<Request<()>, Response = Response<()>, Error = io::Error> + Clone,
{
    let mut pending = Vec::new();
    for _ in 0..n {
        pending.push(client.clone().oneshot(Request::new(())));
    }
    for call in pending {
        call.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn an_error_rate_trigger_flips_on_holds_for_min_hold_and_flips_off_with_hysteresis() {
    let t0 = Instant::now();
    let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
    let flags = flags();
    let window = LatencyWindow::new(Duration::from_secs(10)).min_calls(10);
    let status = Arc::new(AtomicU64::new(200));
    let client = window.layer().layer(provider(status.clone(), Duration::ZERO));
    let trigger = TriggerTask::builder("quotes-errors", FLAG)
        .on_above(0.5)
        .off_below(0.1)
        .min_hold(Duration::from_secs(30))
        .every(Duration::from_secs(1))
        .spawn(&flags, window.error_rate_signal())
        .unwrap();

    tokio::time::sleep_until(at(0.5)).await;
    calls(&client, 10).await; // 10 ok
    tokio::time::sleep_until(at(1.5)).await;
    assert!(!cached(&flags) && !trigger.is_on());
    assert_eq!(trigger.last_signal(), Some(0.0));

    status.store(503, Ordering::Relaxed);
    calls(&client, 20).await; // 20 of 30 fail
    tokio::time::sleep_until(at(2.5)).await; // the tick at 2 s flips it
    assert!(cached(&flags) && trigger.is_on());
    assert_eq!(flags.get(FLAG).unwrap().1, Source::Trigger("quotes-errors".into()));

    // The failures have left the window by 11 s; 20 ok calls read 0 %, below off_below, but the hold lasts to 32 s.
    tokio::time::sleep_until(at(11.5)).await;
    status.store(200, Ordering::Relaxed);
    calls(&client, 20).await;
    tokio::time::sleep_until(at(20.5)).await;
    assert_eq!(trigger.last_signal(), Some(0.0));
    assert!(cached(&flags), "flipped back within the minimum hold");

    // 2 of 12 fail (17 %): between the thresholds, so it stays on after the hold ends.
    tokio::time::sleep_until(at(25.5)).await;
    calls(&client, 10).await;
    status.store(503, Ordering::Relaxed);
    calls(&client, 2).await;
    tokio::time::sleep_until(at(33.5)).await;
    assert!(cached(&flags), "flipped back above off_below: no hysteresis");
    assert!((trigger.last_signal().unwrap() - 2.0 / 12.0).abs() < 1e-9);

    // 2 of 52 fail (3.8 %): below off_below, after the hold: off at the next tick.
    status.store(200, Ordering::Relaxed);
    calls(&client, 40).await;
    tokio::time::sleep_until(at(34.5)).await;
    assert!(!cached(&flags) && !trigger.is_on());
    assert_eq!(flags.get(FLAG).unwrap().1, Source::Default);
    assert_eq!(trigger.flips(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_layer_counts_errors_5xx_and_429_as_failures_and_times_the_calls() {
    let window = LatencyWindow::new(Duration::from_secs(10));
    let status = Arc::new(AtomicU64::new(200));
    let client = window.layer().layer(provider(status.clone(), Duration::from_millis(100)));
    for code in [200, 404, 429, 500, 503] {
        status.store(code, Ordering::Relaxed);
        calls(&client, 1).await;
    }
    let failing = window
        .layer()
        .layer(service_fn(|_: Request<()>| async { Err::<Response<()>, _>(io::Error::other("connection reset")) }));
    assert!(failing.oneshot(Request::new(())).await.is_err());
    let stats = window.stats();
    assert_eq!((stats.calls, stats.errors), (6, 4), "{stats:?}");
    let p95 = stats.p95.unwrap();
    assert!(p95.abs_diff(Duration::from_millis(100)) <= Duration::from_millis(100) / 32, "{p95:?}");

    // Any service, with a classifier of its own.
    let plain = window
        .layer()
        .classify(ResultOk)
        .layer(service_fn(|n: u32| async move { if n == 0 { Err(io::Error::other("zero")) } else { Ok(n) } }));
    assert_eq!(plain.clone().oneshot(1).await.unwrap(), 1);
    assert!(plain.oneshot(0).await.is_err());
    assert_eq!(window.stats().errors, 5);
}

#[tokio::test(start_paused = true)]
async fn a_p95_trigger_reads_seconds_from_the_window() {
    let flags = flags();
    let journal = LatencyWindow::new(Duration::from_secs(10));
    let trigger = TriggerTask::builder("journal-fsync", FLAG)
        .on_above(0.050)
        .off_below(0.020)
        .min_hold(Duration::ZERO)
        .spawn(&flags, journal.p95_seconds_signal())
        .unwrap();
    sleep(Duration::from_millis(500)).await;
    for _ in 0..100 {
        journal.record(Duration::from_millis(200), true); // slow fsyncs
    }
    sleep(Duration::from_secs(1)).await;
    assert!(cached(&flags));
    assert!((trigger.last_signal().unwrap() - 0.2).abs() <= 0.2 / 32.0);
}

fn breaker(clock: &ManualClock) -> Arc<CircuitBreaker> {
    let config = BreakerConfig::default()
        .minimum_calls(2)
        .window(SlidingWindow::Count { calls: 4, buckets: 1 })
        .open_duration(Duration::from_secs(5))
        .half_open_probes(1);
    Arc::new(CircuitBreaker::new("provider", config, clock.clone()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn the_breaker_signal_flips_the_flag_while_a_real_breaker_is_open() {
    let flags = flags();
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    let _trigger = TriggerTask::builder("provider-breaker", FLAG)
        .on_above(0.5)
        .off_below(0.5)
        .min_hold(Duration::ZERO)
        .every(Duration::from_millis(100))
        .spawn(&flags, breaker_open(breaker.clone()))
        .unwrap();
    sleep(Duration::from_millis(250)).await;
    assert!(!cached(&flags));

    for _ in 0..2 {
        breaker.try_acquire().unwrap().record(Outcome::Failure, Duration::from_millis(1));
    }
    assert_eq!(breaker.state(), State::Open);
    sleep(Duration::from_millis(100)).await;
    assert!(cached(&flags), "the breaker is open");

    clock.advance(Duration::from_secs(5));
    breaker.try_acquire().unwrap().record(Outcome::Success, Duration::from_millis(1)); // the probe
    assert_eq!(breaker.state(), State::Closed);
    sleep(Duration::from_millis(100)).await;
    assert!(!cached(&flags), "the breaker closed");

    breaker.force(ForcedState::ForcedOpen);
    sleep(Duration::from_millis(100)).await;
    assert!(cached(&flags), "forced open counts as open");
    breaker.force(ForcedState::Disabled);
    sleep(Duration::from_millis(100)).await;
    assert!(!cached(&flags), "disabled reads closed");
}

fn sample(cpu_cores: f64, interval: Duration, rss_bytes: u64, memory_limit_bytes: u64) -> Sample {
    Sample::new(std::time::Instant::now(), interval)
        .cpu(cpu_cores, Duration::from_secs(3))
        .memory(rss_bytes, memory_limit_bytes)
}

#[test]
fn cpu_and_memory_shares_are_computed_from_a_sample() {
    let s = sample(1.5, Duration::from_millis(100), 768 << 20, 1 << 30);
    assert_eq!(cpu_share_of(&s, 2.0), Some(0.75));
    assert_eq!(cpu_share_of(&s, 0.0), None, "no CPU limit");
    assert_eq!(memory_share_of(&s), Some(0.75));
    let first = sample(0.0, Duration::ZERO, 1, 0);
    assert_eq!(cpu_share_of(&first, 2.0), None, "a first sample has no rate");
    assert_eq!(memory_share_of(&first), None, "the limit is unknown");
}

#[tokio::test(start_paused = true)]
async fn a_memory_trigger_reads_a_real_sensor() {
    let flags = flags();
    let sensor = Sensor::start(Duration::from_millis(50)).unwrap();
    let mut share = memory_share(sensor.handle());
    let read = share.read().unwrap();
    let latest = sensor.latest();
    assert!(read > 0.0 && read < 1.0, "{read}");
    assert!((read - latest.memory_fraction).abs() < 0.01, "{read} vs {latest:?}");
    // Any RSS is above zero: the trigger degrades at the first tick.
    let trigger = TriggerTask::builder("memory", FLAG)
        .on_above(0.0)
        .min_hold(Duration::ZERO)
        .spawn(&flags, memory_share(sensor.handle()))
        .unwrap();
    sleep(Duration::from_millis(500)).await;
    assert!(cached(&flags) && trigger.is_on());
}

fn job(cpu_hours: f64) -> JobRecord {
    let finished = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
    JobRecord::new("backtest", Labels::new("research", "backtests"), finished - 10.0, 10.0)
        .cpu(cpu_hours * 3600.0, CpuMode::ThreadCpu)
        .memory(0.0, MemoryMode::Allocator)
}

#[tokio::test(start_paused = true)]
async fn a_budget_at_critical_flips_the_flag() {
    let flags = flags();
    let budget = Budget::parse(
        "name: research\nowner: ops@example.com\nmonthly_cpu_hours: 100\nalert_thresholds: { warn: 0.8, critical: 0.95 }\n",
        None,
    )
    .unwrap();
    let monitor = BudgetMonitor::new(Arc::new(BudgetSet::new(vec![budget]).unwrap()), SystemTime::now());
    let monitor = Arc::new(Mutex::new(monitor));
    let mut signal = budget_critical(monitor.clone());
    assert_eq!(signal.read(), Some(0.0));
    let _trigger = TriggerTask::builder("budget", FLAG)
        .on_above(0.5)
        .min_hold(Duration::ZERO)
        .spawn(&flags, budget_critical(monitor.clone()))
        .unwrap();
    sleep(Duration::from_millis(1500)).await;
    assert!(!cached(&flags));

    monitor.lock().unwrap().record(&job(90.0), SystemTime::now()).unwrap();
    assert_eq!(monitor.lock().unwrap().level("research"), AlertLevel::Warn);
    assert_eq!(signal.read(), Some(0.0), "warn is not critical");
    monitor.lock().unwrap().record(&job(6.0), SystemTime::now()).unwrap();
    assert_eq!(monitor.lock().unwrap().level("research"), AlertLevel::Critical);
    assert_eq!(signal.read(), Some(1.0));
    sleep(Duration::from_secs(1)).await;
    assert!(cached(&flags));
}

/// A signal the test sets by hand: `NaN` for no reading.

#[tokio::test(start_paused = true)]
async fn a_dropped_trigger_flips_nothing_and_lets_go_of_its_flag() {
    let flags = flags();
    let (value, signal) = dial();
    let trigger =
        TriggerTask::builder("dial", FLAG).on_above(0.5).min_hold(Duration::ZERO).spawn(&flags, signal).unwrap();
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(trigger.last_signal(), None, "NaN is no reading");
    set(&value, 1.0);
    sleep(Duration::from_secs(1)).await;
    assert!(cached(&flags));

    drop(trigger); // on: the flag goes back to its other sources
    assert!(!cached(&flags));
    assert_eq!(flags.get(FLAG).unwrap().1, Source::Default);
    set(&value, 0.0);
    sleep(Duration::from_secs(3)).await;
    set(&value, 1.0);
    sleep(Duration::from_secs(3)).await;
    assert!(!cached(&flags), "a dropped trigger flipped the flag");
}

#[tokio::test(start_paused = true)]
async fn a_manual_setting_wins_over_the_trigger() {
    let flags = flags();
    flags.set(FLAG, "false").unwrap();
    let (value, signal) = dial();
    set(&value, 1.0);
    let trigger =
        TriggerTask::builder("dial", FLAG).on_above(0.5).min_hold(Duration::ZERO).spawn(&flags, signal).unwrap();
    sleep(Duration::from_millis(500)).await;
    assert!(trigger.is_on(), "the switch is on");
    assert!(!cached(&flags), "but the operator's setting decides");
    flags.unset(FLAG).unwrap();
    assert!(cached(&flags), "the trigger's layer shows once the override is gone");
}

#[tokio::test]
async fn a_builder_refuses_what_cannot_work() {
    let flags = flags();
    flags.define("quotes.source", FlagKind::Strategy(vec!["live".into(), "cached".into()].into()), "live").unwrap();
    let spawn = |b: brownout_tower::degrade::TriggerBuilder| b.spawn(&flags, || Some(0.0)).unwrap_err().to_string();
    let b = || TriggerTask::builder("t", FLAG);
    assert_eq!(spawn(b()), "trigger `t`: on_above is required");
    assert!(spawn(b().on_above(0.1).off_below(0.2)).contains("off_below"));
    assert!(spawn(b().on_above(f64::INFINITY)).contains("finite"));
    assert!(spawn(TriggerTask::builder("t", "nope").on_above(1.0)).contains("flag `nope`: no such flag"));
    assert!(spawn(b().on_above(1.0).value("cached")).contains("not a bool"));
    let strategy = TriggerTask::builder("t", "quotes.source").on_above(1.0).value("cached");
    assert!(strategy.spawn(&flags, || None).is_ok());
    assert!(
        TriggerTask::builder("t", "quotes.source").on_above(1.0).spawn(&flags, || None).is_err(),
        "true is no strategy"
    );
}

#[test]
fn flips_and_the_signal_show_in_metrics() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let status = metrics::with_local_recorder(&recorder, || {
        paused().block_on(async {
            let flags = flags();
            let (value, signal) = dial();
            let trigger = TriggerTask::builder("dial", FLAG)
                .on_above(0.5)
                .min_hold(Duration::ZERO)
                .spawn(&flags, signal)
                .unwrap();
            for v in [1.0, 0.0, 1.0, 0.75] {
                set(&value, v);
                sleep(Duration::from_secs(1)).await;
            }
            trigger.status()
        })
    });
    assert_eq!((status.on, status.flips, status.signal), (true, 3, Some(0.75)), "{status:?}");
    let metrics: Vec<(String, Vec<String>, Option<String>, DebugValue)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name().starts_with("degrade_trigger_"))
        .map(|(key, _, description, value)| {
            let labels = key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
            (key.key().name().to_owned(), labels, description.map(|d| d.to_string()), value)
        })
        .collect();
    let find = |name: &str, labels: &[&str]| {
        metrics
            .iter()
            .find(|(n, l, ..)| n == name && l.iter().map(String::as_str).eq(labels.iter().copied()))
            .unwrap_or_else(|| panic!("{name} {labels:?} in {metrics:#?}"))
    };
    let on = find("degrade_trigger_flips_total", &["trigger=dial", "flag=quotes.cached", "state=on"]);
    assert!(matches!(on.3, DebugValue::Counter(2)), "{on:?}");
    assert!(on.2.is_some(), "described");
    let off = find("degrade_trigger_flips_total", &["trigger=dial", "flag=quotes.cached", "state=off"]);
    // Off once by the signal, once when the task, on, was dropped at the end of the block.
    assert!(matches!(off.3, DebugValue::Counter(2)), "{off:?}");
    let signal = find("degrade_trigger_signal", &["trigger=dial"]);
    assert!(matches!(signal.3, DebugValue::Gauge(g) if g.into_inner() == 0.75), "{signal:?}");
    assert!(signal.2.is_some(), "described");
}

/// One recorded call: time since the previous (ms), latency (ns), ok.
fn event() -> impl Strategy<Value = (u64, u64, bool)> {
    (0u64..1500, (0u32..46, 0u64..1 << 20), any::<bool>()).prop_map(|(gap, (exp, m), ok)| (gap, m << exp >> 20 | m, ok))
}

proptest! {
    // No regression file: tests never write into the source tree.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The error rate is exactly the count over the slots in the window; the p95 is within 1/32 of the exact
    /// p95 (rank ⌈0.95 n⌉) of the same calls.
    #[test]
    fn the_window_agrees_with_a_reference(
        slots in 1usize..16,
        slot_ms in 1u64..2000,
        events in prop::collection::vec(event(), 0..200),
        after in 0u64..5000,
    ) {
        let rt = paused();
        rt.block_on(async {
            let base = Instant::now(); // paused: the window's origin is this instant
            let window = LatencyWindow::with_slots(Duration::from_millis(slot_ms) * slots as u32, slots);
            let mut t = 0;
            let mut recorded = Vec::new();
            for (gap, nanos, ok) in events {
                t += gap;
                window.record_at(base + Duration::from_millis(t), Duration::from_nanos(nanos), ok);
                recorded.push((t / slot_ms, nanos.min(brownout_tower::degrade::MAX_LATENCY.as_nanos() as u64), ok));
            }
            let end = t + after;
            let current = end / slot_ms;
            let mut live: Vec<(u64, bool)> =
                recorded.iter().filter(|(e, ..)| current - e < slots as u64).map(|&(_, n, ok)| (n, ok)).collect();
            let stats = window.stats_at(base + Duration::from_millis(end));
            let errors = live.iter().filter(|(_, ok)| !ok).count() as u64;
            prop_assert_eq!(stats.calls, live.len() as u64);
            prop_assert_eq!(stats.errors, errors);
            prop_assert_eq!(stats.error_rate(), (!live.is_empty()).then(|| errors as f64 / live.len() as f64));
            live.sort_unstable();
            let exact = (!live.is_empty()).then(|| live[(live.len() * 95).div_ceil(100) - 1].0);
            match (stats.p95, exact) {
                (Some(p95), Some(exact)) => {
                    let got = p95.as_nanos() as u64;
                    prop_assert!(got.abs_diff(exact) * 32 <= exact, "p95 {} vs exact {}", got, exact);
                }
                (None, None) => {}
                (got, exact) => prop_assert!(false, "p95 {:?} vs exact {:?}", got, exact),
            }
            Ok(())
        })?;
    }
}
