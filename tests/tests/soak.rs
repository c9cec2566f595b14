//! Soak: two threads push requests through the whole degradation stack (cost → fallback → breaker → chaos →
//! provider) while a third reloads the chaos rules and flips the degrade flags every millisecond.
//!
//! It checks that nothing panics, that the run finishes (a watchdog fails it after a generous deadline instead
//! of hanging), and that every counter adds up: each request gets exactly one response; the chaos layer answers
//! every call it gets; per rule, the faults the metrics counted equal the responses marked
//! `x-chaos-injected: <rule>`; the cost meter wrote one record per request; the fallback's answers are those
//! the fallback service gave. A last, quiet phase checks the controller's own per-rule counters (a reload
//! starts them afresh, so they are compared once the reloads stop).
//!
//! `cargo test -p tests --test soak` runs 20 000 requests; the million-request run is
//! `cargo test --release -p tests --test soak -- --ignored --nocapture`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use brownout_chaos::{ChaosConfig, Environment, INJECTED_HEADER};
use brownout_cost::{JobRecord, Labels, Meter};
use brownout_degrade::Flags;
use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, Outcome, SlidingWindow, SystemClock};
use brownout_degrade::flags::FlagKind;
use brownout_tower::{ChaosBody, ChaosHandle, CircuitBreakerLayer, CostLayer, FallbackLayer, HttpChaosLayer};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

type Body = ChaosBody<Full<Bytes>>;
type Reply = http::Response<Body>;

/// The rule names every rule set may use; the tally keeps one counter per name.
const RULES: [&str; 4] = ["errors-a", "limit-b", "errors-c", "final"];

/// Two valid rule sets the reloader alternates between, and one it must see refused.
fn rule_sets(tag: &str) -> (ChaosConfig, ChaosConfig, ChaosConfig) {
    let a = format!(
        "experiment: soak-a\nrules:\n\
         - {{ name: {tag}errors-a, sample: {{ mode: exact, rate: 0.3 }}, fault: {{ error: {{ status: 503 }} }} }}\n\
         - {{ name: {tag}limit-b, sample: {{ mode: random, rate: 0.1 }}, fault: {{ rate_limit: {{ retry_after: 1s }} }} }}\n"
    );
    let b = format!(
        "experiment: soak-b\nrules:\n\
         - {{ name: {tag}errors-c, sample: {{ mode: every_nth, nth: 4 }}, fault: {{ error: {{ status: 500 }} }} }}\n"
    );
    let bad = format!(
        "experiment: soak-bad\nrules:\n\
         - {{ name: {tag}errors-a, sample: {{ mode: exact, rate: 1.5 }}, fault: {{ error: {{ status: 503 }} }} }}\n"
    );
    let parse = |yaml: &str| ChaosConfig::from_yaml_str(yaml, None).unwrap_or_else(|e| panic!("{e}"));
    (parse(&a), parse(&b), parse(&bad))
}

/// What the test itself counts, at each layer.
struct Tally {
    /// Calls that reached the chaos layer, and the responses it gave.
    chaos_calls: AtomicU64,
    chaos_responses: AtomicU64,
    /// Responses marked `x-chaos-injected`, per rule (the tagged names of [`RULES`]), and any other name.
    injected: HashMap<String, AtomicU64>,
    unknown_injected: AtomicU64,
    /// Answers given by the fallback service.
    fallbacks: AtomicU64,
    /// Records the cost meter wrote.
    cost_records: AtomicU64,
}

impl Tally {
    fn new(tag: &str) -> Tally {
        Tally {
            chaos_calls: AtomicU64::new(0),
            chaos_responses: AtomicU64::new(0),
            injected: RULES.iter().map(|r| (format!("{tag}{r}"), AtomicU64::new(0))).collect(),
            unknown_injected: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            cost_records: AtomicU64::new(0),
        }
    }

    fn injected(&self, rule: &str) -> u64 {
        self.injected[rule].load(Relaxed)
    }

    fn injected_total(&self) -> u64 {
        self.injected.values().map(|c| c.load(Relaxed)).sum()
    }
}

/// The process's debugging recorder, installed once: the drivers run on their own threads, so a local
/// recorder would not see them. Each test tags its rule names, so their counters do not mix.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("no other recorder in this test binary");
        snapshotter
    })
}

/// Sum of a counter over the label sets where `label` has `value`.
fn counter_sum(snapshot: &[(CompositeKey, DebugValue)], name: &str, label: &str, value: &str) -> u64 {
    snapshot
        .iter()
        .filter(|(key, _)| {
            key.kind() == MetricKind::Counter
                && key.key().name() == name
                && key.key().labels().any(|l| l.key() == label && l.value() == value)
        })
        .map(|(_, v)| match v {
            DebugValue::Counter(n) => *n,
            other => panic!("{name} is not a counter: {other:?}"),
        })
        .sum()
}

/// The shared parts of the stack: the chaos switch, the breaker, the flags and the meter.
struct Rig {
    chaos: ChaosHandle,
    breaker: Arc<CircuitBreaker>,
    flags: Flags,
    meter: Meter,
    tally: Arc<Tally>,
}

const FALLBACK_FLAG: &str = "soak.fallback";
const BREAKER_FLAG: &str = "soak.breaker";

impl Rig {
    fn new(tag: &str) -> Rig {
        let tally = Arc::new(Tally::new(tag));
        let chaos = ChaosHandle::for_environment(Environment::Test);
        let config = BreakerConfig::default()
            .minimum_calls(20)
            .window(SlidingWindow::Count { calls: 50, buckets: 5 })
            .open_duration(Duration::from_millis(2))
            .half_open_probes(3);
        let breaker = Arc::new(CircuitBreaker::new(format!("{tag}soak"), config, SystemClock::new()).unwrap());
        let flags = Flags::new();
        flags.define(FALLBACK_FLAG, FlagKind::Bool, "false").unwrap();
        let states: Arc<[Box<str>]> = ["none", "forced_open", "forced_closed"].map(Box::from).into();
        flags.define(BREAKER_FLAG, FlagKind::Strategy(states), "none").unwrap();
        brownout_degrade::force_from_flag(&flags, BREAKER_FLAG, breaker.clone()).unwrap();
        let records = tally.clone();
        let meter = Meter::builder()
            .sink(move |_: &JobRecord| {
                records.cost_records.fetch_add(1, Relaxed);
            })
            .build();
        Rig { chaos, breaker, flags, meter, tally }
    }

    /// One copy of the stack, outermost first: cost, the body read, fallback (also while the fallback flag is on), breaker
    /// (failures: any non-2xx answer, injected or not, so chaos opens it), the test's tally, chaos, provider.
    fn stack(
        &self,
    ) -> impl Service<http::Request<String>, Response = http::Response<Bytes>, Error = BoxError, Future: Send> + Send + use<>
    {
        let tally = self.tally.clone();
        let fallback = tower::service_fn(move |_: http::Request<String>| {
            tally.fallbacks.fetch_add(1, Relaxed);
            let mut reply = Reply::new(Body::default());
            reply.headers_mut().insert("x-served-from", http::HeaderValue::from_static("fallback"));
            std::future::ready(Ok::<_, BoxError>(reply))
        });
        let classify = |r: &Result<Reply, BoxError>| match r {
            Ok(reply) if reply.status().is_success() => Outcome::Success,
            _ => Outcome::Failure,
        };
        let (calls, responses) = (self.tally.clone(), self.tally.clone());
        ServiceBuilder::new()
            .layer(CostLayer::new(self.meter.clone(), Labels::new("soak", "quotes")))
            // Read the whole body, as a client would (the cost layer's own answers need a `From<Bytes>` body).
            .and_then(|reply: Reply| async move {
                let (parts, body) = reply.into_parts();
                Ok::<_, BoxError>(http::Response::from_parts(parts, body.collect().await?.to_bytes()))
            })
            .layer(FallbackLayer::http(fallback).when_flag(self.flags.bool(FALLBACK_FLAG).unwrap()))
            .layer(CircuitBreakerLayer::new(self.breaker.clone()).classifier(classify))
            .map_request(move |req: http::Request<String>| {
                calls.chaos_calls.fetch_add(1, Relaxed);
                req
            })
            .map_response(move |reply: Reply| {
                responses.chaos_responses.fetch_add(1, Relaxed);
                if let Some(rule) = reply.headers().get(INJECTED_HEADER) {
                    let rule = rule.to_str().unwrap_or_default();
                    match responses.injected.get(rule) {
                        Some(count) => count.fetch_add(1, Relaxed),
                        None => responses.unknown_injected.fetch_add(1, Relaxed),
                    };
                }
                reply
            })
            .layer(HttpChaosLayer::new(self.chaos.clone()))
            .service_fn(|_: http::Request<String>| {
                std::future::ready(Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"42")))))
            })
    }

    /// Sends `n` requests one after another on a current-thread runtime; returns the responses (all must be
    /// `200`: the fallback answers whatever the provider stack does).
    fn drive(&self, n: u64) -> u64 {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let mut service = self.stack();
        runtime.block_on(async {
            let mut responses = 0;
            for _ in 0..n {
                let req = http::Request::get("/api/quotes/ABC").body(String::new()).unwrap();
                let reply = service.ready().await.unwrap().call(req).await.unwrap();
                assert_eq!(reply.status(), 200, "the fallback answers every failure");
                responses += 1;
            }
            responses
        })
    }
}

/// What one soak run saw.
#[derive(Debug)]
struct Report {
    requests: u64,
    reloads: u64,
    rejected: u64,
    flag_flips: u64,
    injected: u64,
    fallbacks: u64,
    transitions: u64,
    elapsed: Duration,
}

/// Runs the soak with `requests` split over two threads, under a watchdog of `deadline`.
fn soak(tag: &'static str, requests: u64, deadline: Duration) -> Report {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let report = run(tag, requests);
        let _ = done.send(());
        report
    });
    match finished.recv_timeout(deadline) {
        // Finished, or panicked (the sender is dropped): join either way, which re-raises a panic.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(report) => report,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the soak did not finish within {deadline:?}: a deadlock?"),
    }
}

fn run(tag: &'static str, requests: u64) -> Report {
    let snapshotter = snapshotter();
    let rig = Arc::new(Rig::new(tag));
    let (a, b, bad) = rule_sets(tag);
    rig.chaos.load(a.clone()).unwrap();
    let started = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let reloader = {
        let (rig, stop) = (rig.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut reloads, mut rejected, mut flips) = (0u64, 0u64, 0u64);
            let mut tick = 0u64;
            while !stop.load(Relaxed) {
                tick += 1;
                if tick.is_multiple_of(10) {
                    let refused = rig.chaos.load(bad.clone());
                    assert!(refused.is_err(), "a rate of 1.5 must be refused");
                    rejected += 1;
                } else {
                    rig.chaos.load(if tick.is_multiple_of(2) { a.clone() } else { b.clone() }).unwrap();
                    reloads += 1;
                }
                rig.flags.set(FALLBACK_FLAG, if tick.is_multiple_of(7) { "true" } else { "false" }).unwrap();
                let forced = ["none", "none", "none", "forced_open", "none", "forced_closed"][(tick % 6) as usize];
                rig.flags.set(BREAKER_FLAG, forced).unwrap();
                flips += 2;
                std::thread::sleep(Duration::from_millis(1));
            }
            (reloads, rejected, flips)
        })
    };
    let drivers: Vec<_> = [requests / 2, requests - requests / 2]
        .into_iter()
        .map(|n| {
            let rig = rig.clone();
            std::thread::spawn(move || rig.drive(n))
        })
        .collect();
    let responses: u64 = drivers.into_iter().map(|d| d.join().expect("a driver panicked")).sum();
    stop.store(true, Relaxed);
    let (reloads, rejected, flag_flips) = reloader.join().expect("the reloader panicked");
    let elapsed = started.elapsed();

    let tally = &rig.tally;
    assert_eq!(responses, requests, "every request got a response");
    assert_eq!(tally.chaos_calls.load(Relaxed), tally.chaos_responses.load(Relaxed), "chaos answered every call");
    assert_eq!(tally.unknown_injected.load(Relaxed), 0, "every injected answer names a rule of the sets");
    assert_eq!(tally.cost_records.load(Relaxed), requests, "one cost record per request");
    assert!(reloads > 0 && rejected > 0, "the reloader ran: {reloads} loads, {rejected} refusals");

    // Per rule, and so in sum: what the chaos layer counted in its metrics is what the responses said.
    let snapshot: Vec<_> = snapshotter.snapshot().into_vec().into_iter().map(|(k, _, _, v)| (k, v)).collect();
    let mut injected = 0;
    for rule in RULES.map(|r| format!("{tag}{r}")) {
        let counted = counter_sum(&snapshot, "chaos_faults_injected_total", "rule", &rule);
        assert_eq!(counted, tally.injected(&rule), "rule {rule}: metric against x-chaos-injected answers");
        injected += counted;
    }
    assert_eq!(injected, tally.injected_total());
    assert!(injected > 0, "faults were injected");
    let fallbacks = tally.fallbacks.load(Relaxed);
    let counted_fallbacks: u64 = snapshot
        .iter()
        .filter(|(k, _)| k.kind() == MetricKind::Counter && k.key().name() == "degrade_fallbacks_total")
        .map(|(_, v)| if let DebugValue::Counter(n) = v { *n } else { 0 })
        .sum();
    let transitions = counter_sum(&snapshot, "circuit_breaker_transitions_total", "breaker", &format!("{tag}soak"));
    assert!(transitions > 0, "the breaker changed state");
    // Other tests of this binary share the fallback counter's name, so only its lower bound is ours.
    assert!(counted_fallbacks >= fallbacks, "degrade_fallbacks_total {counted_fallbacks} < {fallbacks}");

    // The quiet phase: no reloads, the breaker forced closed, one known rule. The controller's per-rule
    // counters, the metrics and the responses must agree exactly, and `exact` sampling holds N·p ± 1.
    rig.flags.set(FALLBACK_FLAG, "false").unwrap();
    rig.flags.set(BREAKER_FLAG, "forced_closed").unwrap();
    let quiet = format!(
        "experiment: soak-quiet\nrules:\n\
         - {{ name: {tag}final, sample: {{ mode: exact, rate: 0.5 }}, fault: {{ error: {{ status: 503 }} }} }}\n"
    );
    rig.chaos.load(ChaosConfig::from_yaml_str(&quiet, None).unwrap()).unwrap();
    let final_rule = format!("{tag}final");
    let before = tally.injected(&final_rule);
    assert_eq!(rig.drive(1000), 1000);
    let seen = tally.injected(&final_rule) - before;
    let rules = rig.chaos.snapshot().rules;
    let stats = rules.iter().find(|r| r.name == final_rule).expect("the quiet rule is loaded");
    assert_eq!(stats.injected, seen, "the controller's count against x-chaos-injected answers");
    assert!(seen.abs_diff(500) <= 1, "exact sampling at 0.5 over 1000 requests injected {seen}");
    let snapshot: Vec<_> = snapshotter.snapshot().into_vec().into_iter().map(|(k, _, _, v)| (k, v)).collect();
    assert_eq!(counter_sum(&snapshot, "chaos_faults_injected_total", "rule", &final_rule), tally.injected(&final_rule));
    assert_eq!(tally.cost_records.load(Relaxed), requests + 1000);
    assert_eq!(tally.chaos_calls.load(Relaxed), tally.chaos_responses.load(Relaxed));
    rig.chaos.disarm();

    Report { requests, reloads, rejected, flag_flips, injected, fallbacks, transitions, elapsed }
}

#[test]
fn soak_short() {
    let report = soak("ci-", 20_000, Duration::from_secs(300));
    println!("{report:?}");
}

/// The million-request run; in release it takes seconds, in a debug build minutes.
#[test]
#[ignore = "long: cargo test --release -p tests --test soak -- --ignored --nocapture"]
fn soak_million() {
    let report = soak("long-", 1_000_000, Duration::from_secs(1800));
    println!("{report:?}");
    println!(
        "soak: {} requests in {:.1} s ({:.0} requests/s), {} reloads, {} refused, {} flag flips, {} faults injected, \
         {} fallback answers, {} breaker transitions",
        report.requests,
        report.elapsed.as_secs_f64(),
        report.requests as f64 / report.elapsed.as_secs_f64(),
        report.reloads,
        report.rejected,
        report.flag_flips,
        report.injected,
        report.fallbacks,
        report.transitions
    );
}
