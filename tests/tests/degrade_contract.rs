//! The contract users copy: chaos makes a dependency fail; the breaker opens, the fallback answers, the
//! breaker closes again once the dependency heals; a flag sheds non-critical routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use brownout_chaos::{ChaosConfig, Environment};
use brownout_degrade::Flags;
use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, ManualClock, SlidingWindow, State as BreakerState};
use brownout_degrade::flags::FlagKind;
use brownout_tower::breaker::ResultClassifier;
use brownout_tower::{ChaosHandle, CircuitBreakerLayer, FallbackLayer, ShedLayer};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};

type Quotes = BoxCloneSyncService<String, String, BoxError>;

struct Rig {
    chaos: ChaosHandle,
    breaker: Arc<CircuitBreaker>,
    clock: ManualClock,
    provider_calls: Arc<AtomicUsize>,
    flags: Flags,
    app: Router,
}

fn rig() -> Rig {
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let clock = ManualClock::new();
    let config = BreakerConfig::default()
        .minimum_calls(4)
        .window(SlidingWindow::Count { calls: 10, buckets: 1 })
        .open_duration(Duration::from_secs(30))
        .half_open_probes(2);
    let breaker = Arc::new(CircuitBreaker::new("quotes", config, clock.clone()).unwrap());
    let provider_calls = Arc::new(AtomicUsize::new(0));
    let calls = provider_calls.clone();
    let provider = service_fn(move |symbol: String| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, BoxError>(format!("live {symbol}")) }
    });
    let cache = service_fn(|symbol: String| async move { Ok::<_, BoxError>(format!("cached {symbol}")) });
    // Fallback on the outside, then the breaker (counting injected faults too), then chaos, then the provider.
    let quotes: Quotes = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(FallbackLayer::new(cache))
            .layer(CircuitBreakerLayer::new(breaker.clone()).classifier(ResultClassifier))
            .layer(chaos.layer())
            .service(provider),
    );
    let flags = Flags::new();
    flags.define("api.shed_reports", FlagKind::Bool, "false").unwrap();
    let app = Router::new()
        .route("/quote", get(|State(q): State<Quotes>| async move { q.oneshot("ACME".to_owned()).await.unwrap() }))
        .route("/report", get(|| async { "report" }))
        .with_state(quotes)
        .layer(ShedLayer::new(flags.bool("api.shed_reports").unwrap()).critical("/quote"));
    Rig { chaos, breaker, clock, provider_calls, flags, app }
}

async fn get_text(app: &Router, path: &str) -> (StatusCode, String) {
    let response = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_breaker_opens_under_faults_the_fallback_answers_and_it_closes_after_recovery() {
    let rig = rig();
    assert_eq!(get_text(&rig.app, "/quote").await, (StatusCode::OK, "live ACME".to_owned()));

    // The provider fails every call: users get the cache, and the breaker opens after its minimum calls.
    let outage = "rules: [{ name: outage, sample: { mode: exact, rate: 1.0 }, fault: { error: { status: 503 } } }]";
    rig.chaos.load(ChaosConfig::from_yaml_str(outage, None).unwrap()).unwrap();
    for _ in 0..4 {
        assert_eq!(get_text(&rig.app, "/quote").await, (StatusCode::OK, "cached ACME".to_owned()));
    }
    assert_eq!(rig.breaker.state(), BreakerState::Open);

    // Open: calls no longer reach the provider (nor the chaos layer); the cache still answers.
    let injected_before = rig.chaos.snapshot().rules[0].injected;
    let calls_before = rig.provider_calls.load(Ordering::SeqCst);
    assert_eq!(get_text(&rig.app, "/quote").await.1, "cached ACME");
    assert_eq!(rig.chaos.snapshot().rules[0].injected, injected_before);
    assert_eq!(rig.provider_calls.load(Ordering::SeqCst), calls_before);

    // The dependency heals; after the open duration two good probes close the breaker.
    rig.chaos.disarm();
    rig.clock.advance(Duration::from_secs(31));
    assert_eq!(get_text(&rig.app, "/quote").await.1, "live ACME");
    assert_eq!(rig.breaker.state(), BreakerState::HalfOpen);
    assert_eq!(get_text(&rig.app, "/quote").await.1, "live ACME");
    assert_eq!(rig.breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_flag_sheds_non_critical_routes_and_spares_critical_ones() {
    let rig = rig();
    assert_eq!(get_text(&rig.app, "/report").await.0, StatusCode::OK);
    rig.flags.set("api.shed_reports", "on").unwrap();
    let (status, _) = get_text(&rig.app, "/report").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get_text(&rig.app, "/quote").await, (StatusCode::OK, "live ACME".to_owned()));
    rig.flags.unset("api.shed_reports").unwrap();
    assert_eq!(get_text(&rig.app, "/report").await.0, StatusCode::OK);
}
