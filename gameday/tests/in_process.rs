//! The in-process target, as a user runs it in their own `cargo test`: a service defined here (an axum
//! route whose dependency sits behind chaos-tower's fault layer and a cached fallback), a plan written here,
//! the runner on paused time (no real waiting: the whole plan runs in well under a second of wall time).
//!
//! The contract: with the fallback the dependency's outage never reaches the users and the run passes; the
//! same service without its fallback fails on the users' error rate. The verdict depends on the fallback.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::response::IntoResponse;
use brownout_chaos::Environment;
use brownout_gameday::{Client, InProcess, Options, Plan, Verdict, run};
use brownout_tower::{ChaosHandle, FallbackLayer, HttpChaosLayer};
use bytes::Bytes;
use http_body_util::Full;
use tower::{Layer, ServiceBuilder, ServiceExt};

const PLAN: &str = r#"
load:
  rps: 100
  workers: 16
  routes:
    - { name: price, path: "/price/{key}", critical: true }
slo:
  user_error_rate: 0.01
  p95: 200ms
  recovery_p95_factor: 2.0
  abort: { error_rate: 0.9, p95: 5s, window: 1s, min_requests: 1000000 }
phases: { before: 2s, after: 3s, window: 250ms }
scenarios:
  - name: dependency_down
    description: the price dependency answers 503 on every call
    duration: 5s
    injected_band: [0.95, 1.0]
    recovery_sla: 1s
    chaos:
      rules:
        - name: down
          sample: { mode: random, rate: 1.0 }
          fault: { error: { status: 503 } }
"#;

/// The user's service: `GET /price/{key}` calls the price dependency through the fault layer; with
/// `fallback`, a failed call is answered from the cache (`x-served-from: cache`).
fn service(chaos: &ChaosHandle, calls: Arc<AtomicU64>, fallback: bool) -> axum::Router {
    let dependency = ServiceBuilder::new()
        .map_request(move |req: http::Request<Body>| {
            calls.fetch_add(1, Ordering::Relaxed);
            req
        })
        .map_response(|r: http::Response<brownout_tower::ChaosBody<Full<Bytes>>>| r.map(Body::new))
        .layer(HttpChaosLayer::new(chaos.clone()))
        .service_fn(|_: http::Request<Body>| async {
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"42.00"))))
        });
    let cache = tower::service_fn(|_: http::Request<Body>| async {
        Ok::<_, Infallible>(
            http::Response::builder().header("x-served-from", "cache").body(Body::from("41.95")).unwrap(),
        )
    });
    let stack = if fallback {
        tower::util::BoxCloneSyncService::new(FallbackLayer::http(cache).layer(dependency))
    } else {
        tower::util::BoxCloneSyncService::new(dependency)
    };
    axum::Router::new().route(
        "/price/{key}",
        axum::routing::get(move |req: http::Request<Body>| {
            let stack = stack.clone();
            async move { stack.oneshot(req).await.into_response() }
        }),
    )
}

async fn gameday(fallback: bool) -> brownout_gameday::Run {
    gameday_with(fallback, None).await
}

async fn gameday_with(fallback: bool, interrupt: Option<tokio::sync::watch::Receiver<bool>>) -> brownout_gameday::Run {
    let plan = Plan::from_yaml(PLAN).unwrap();
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let calls = Arc::new(AtomicU64::new(0));
    let app = service(&chaos, calls.clone(), fallback);
    let target = InProcess::new(Client::service(app))
        .switch("price", chaos.clone())
        .calls("price", move || calls.load(Ordering::Relaxed));
    let mut options = Options::default().time_scale(1.0).seed(3);
    options.interrupt = interrupt;
    let run = run(&plan, Arc::new(target), &options).await.expect("the run is made");
    assert!(!chaos.is_armed(), "the run leaves the switch disarmed");
    run
}

#[tokio::test(start_paused = true)]
async fn with_the_fallback_the_outage_never_reaches_the_users() {
    let run = gameday(true).await;
    let outcome = run.outcome("dependency_down").expect("the scenario ran");
    let r = &outcome.report;
    assert_eq!(r.validation.verdict, Verdict::Pass, "{:#?}", r.validation.failures);
    // The fault was real: every dependency call during it failed, and the users got the cache.
    assert!(r.execution.injected_faults > 100, "{:?}", r.execution);
    assert!(r.execution.injected_rate.unwrap() > 0.95);
    assert!(r.metrics.during.stats.fallbacks > 100);
    assert_eq!(r.metrics.during.stats.user_errors, 0);
    // And it ended: back to live answers right after the fault.
    assert!(r.validation.recovery_time_seconds.unwrap() <= 1.0);
    assert_eq!(r.metrics.after.stats.fallbacks, 0, "no cached answer once the dependency is back");
    assert!(run.passed());
}

#[tokio::test(start_paused = true)]
async fn without_the_fallback_the_users_see_the_outage_and_the_run_fails() {
    let run = gameday(false).await;
    let r = &run.outcome("dependency_down").expect("the scenario ran").report;
    assert_eq!(r.validation.verdict, Verdict::Fail);
    assert!(r.validation.failures.iter().any(|f| f.contains("over the SLO")), "{:?}", r.validation.failures);
    assert!(!r.validation.failure_rate_acceptable);
    assert!(!run.passed());
}

/// Ctrl-C in the middle of the fault: the fault ends at once, the scenario is reported as interrupted, and the
/// run says so.
#[tokio::test(start_paused = true)]
async fn an_interrupted_run_disarms_and_reports_the_scenario_as_interrupted() {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        // The pre-flight takes 2.5 s and the before phase 2 s: 6 s is one and a half seconds into the fault.
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        let _ = tx.send(true);
        std::future::pending::<()>().await;
    });
    let run = gameday_with(true, Some(rx)).await;
    assert!(run.interrupted() && !run.passed());
    assert_eq!(brownout_gameday::exit_status(&Ok(run.clone())), 130);
    let r = &run.outcome("dependency_down").expect("the scenario in progress is reported").report;
    assert_eq!(r.validation.verdict, Verdict::Interrupted);
    assert_eq!(r.execution.fault_end, brownout_gameday::report::FaultEnd::Interrupted);
    assert!(r.scenario.duration_seconds > 4.9, "planned 5 s");
    let ran = r.metrics.during.stats.requests as f64 / 100.0;
    assert!(ran < 2.5, "the fault ended at the interruption, after {ran:.1} s of its 5 s");
}

/// A target whose kill switch takes 400 ms to act (a pressure's threads stopping, a replica slow to answer):
/// the fault goes on meanwhile.
struct SlowDisarm(InProcess);

impl brownout_gameday::Target for SlowDisarm {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn client(&self) -> Client {
        self.0.client()
    }
    fn switches(&self) -> Vec<String> {
        self.0.switches()
    }
    fn arm<'a>(
        &'a self,
        switch: &'a str,
        config: brownout_chaos::ChaosConfig,
    ) -> brownout_gameday::BoxFuture<'a, Result<u64, String>> {
        self.0.arm(switch, config)
    }
    fn disarm<'a>(&'a self, switch: &'a str) -> brownout_gameday::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(400)).await;
            self.0.disarm(switch).await
        })
    }
    fn counters<'a>(
        &'a self,
        switch: &'a str,
    ) -> brownout_gameday::BoxFuture<'a, Result<brownout_gameday::Counters, String>> {
        self.0.counters(switch)
    }
    fn state(&self) -> brownout_gameday::BoxFuture<'_, Result<brownout_gameday::State, String>> {
        self.0.state()
    }
}

/// Recovery counts from the instant the fault is told to end, not from when the kill switch has acted: the
/// 400 ms the fault goes on are part of the time to recover (the first 250 ms windows still see fallbacks).
#[tokio::test(start_paused = true)]
async fn recovery_counts_from_the_order_to_disarm() {
    let plan = Plan::from_yaml(PLAN).unwrap();
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let calls = Arc::new(AtomicU64::new(0));
    let app = service(&chaos, calls.clone(), true);
    let target = SlowDisarm(
        InProcess::new(Client::service(app))
            .switch("price", chaos.clone())
            .calls("price", move || calls.load(Ordering::Relaxed)),
    );
    let options = Options::default().time_scale(1.0).seed(3);
    let run = run(&plan, Arc::new(target), &options).await.unwrap();
    let r = &run.outcome("dependency_down").unwrap().report;
    let recovery = r.validation.recovery_time_seconds.expect("it recovers");
    assert!(recovery >= 0.4, "the fault lasted 400 ms past its end: recovery {recovery} s");
    assert!(r.metrics.after.stats.fallbacks > 0, "the fallbacks of those 400 ms count in the after phase");
}

/// The SLO guard runs on tokio's clock too: on paused time its window closes, it judges the users' errors
/// (every request failing, without the fallback) and aborts the fault long before its planned end.
#[tokio::test(start_paused = true)]
async fn on_paused_time_the_slo_guard_aborts_a_fault_users_see() {
    let plan = PLAN.replace("min_requests: 1000000", "min_requests: 20").replace("error_rate: 0.9", "error_rate: 0.5");
    let plan = Plan::from_yaml(&plan).unwrap();
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let calls = Arc::new(AtomicU64::new(0));
    let app = service(&chaos, calls.clone(), false);
    let target = InProcess::new(Client::service(app))
        .switch("price", chaos.clone())
        .calls("price", move || calls.load(Ordering::Relaxed));
    let options = Options::default().time_scale(1.0).seed(3);
    let run = run(&plan, Arc::new(target), &options).await.unwrap();
    let r = &run.outcome("dependency_down").unwrap().report;
    assert_eq!(r.execution.fault_end, brownout_gameday::report::FaultEnd::Abort, "{:?}", r.validation.failures);
    assert!(r.validation.aborted);
    let after = r.execution.aborted_after_seconds.unwrap();
    assert!(after < 2.5, "aborted {after} s into a 5 s fault (the guard's window is 1 s)");
    assert!(!chaos.is_armed());
}

/// Two scenarios one after the other: the second's injected faults are its own, not the first's too (a new
/// rule set restarts its counters; the runner re-bases on them).
#[tokio::test(start_paused = true)]
async fn a_second_scenario_counts_only_its_own_faults() {
    let half = PLAN.to_owned()
        + r#"
  - name: dependency_flaky
    description: the price dependency answers 503 on half of its calls
    duration: 5s
    injected_band: [0.4, 0.6]
    recovery_sla: 1s
    chaos:
      rules:
        - name: flaky
          sample: { mode: random, rate: 0.5 }
          fault: { error: { status: 503 } }
"#;
    let plan = Plan::from_yaml(&half).unwrap();
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let calls = Arc::new(AtomicU64::new(0));
    let app = service(&chaos, calls.clone(), true);
    let target = InProcess::new(Client::service(app))
        .switch("price", chaos.clone())
        .calls("price", move || calls.load(Ordering::Relaxed));
    let options = Options::default().time_scale(1.0).seed(3);
    let run = run(&plan, Arc::new(target), &options).await.unwrap();
    let first = &run.outcome("dependency_down").unwrap().report.execution;
    let second = &run.outcome("dependency_flaky").unwrap().report;
    let e = &second.execution;
    assert!(
        e.injected_faults <= e.dependency_calls.unwrap(),
        "{} faults in {:?} calls",
        e.injected_faults,
        e.dependency_calls
    );
    let rate = e.injected_rate.unwrap();
    assert!(
        (0.35..0.65).contains(&rate),
        "the second scenario's own rate: {rate} (the first injected {})",
        first.injected_faults
    );
    assert_eq!(second.validation.verdict, Verdict::Pass, "{:?}", second.validation.failures);
}
