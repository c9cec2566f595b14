//! The demo service: an axum app whose `/quote/{symbol}` route calls a simulated quote provider through
//! Brownout's fallback, circuit breaker and fault layers and a client timeout; the fallback answers with the
//! last good (cached) quote.
//!
//! Every user request is a cost-meter job (`CostLayer`, thread CPU clock per poll); the app sums their CPU
//! and memory in [`CostTotals`], which the GameDay reads per phase.
//!
//! One implementation serves both the GameDay (which drives it over loopback) and the `http_service` example
//! (which serves it on a real address). The provider is called at `/api/quotes/{symbol}`, the route the rules
//! of `configs/chaos/quote-provider.yaml` target, with the user's `x-user-id`, `x-tenant` and `x-canary`
//! headers passed on so those rules' targeting and hash keys work, and the `x-chaos-*` headers (token
//! included) so a contract test through the real service can ask for header-driven faults. The chaos layer
//! sits in this process, on the client side of the provider call; a service calling a real provider
//! would strip `x-chaos-token` before the request leaves.
//!
//! For overhead measurements ([`app_with`], [`bare_router`]): the provider's latency can be set (0 answers at
//! once, so the service's own cost is not hidden behind a millisecond of sleep), and [`bare_router`] serves
//! the same quotes with none of Brownout's layers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, body::Body};
use bytes::Bytes;
use chaos_tower::{ChaosHandle, CircuitBreakerLayer, CostLayer, FallbackLayer, HttpChaosLayer};
use cost_meter::budget::BudgetMonitor;
use cost_meter::{JobRecord, Labels, MemoryMode, Meter};
use degrade_flags::breaker::{BreakerConfig, CircuitBreaker, Outcome, SlidingWindow, SystemClock};
use http_body_util::{BodyExt, Full};
use tower::util::{BoxCloneSyncService, Either};
use tower::{BoxError, ServiceBuilder, ServiceExt};

type Provider = BoxCloneSyncService<http::Request<Body>, http::Response<Bytes>, BoxError>;

/// What the service counts about its dependency.
#[derive(Debug, Default)]
pub struct Counters {
    /// User requests that needed a quote.
    pub requests: AtomicU64,
    /// Calls that reached the provider stack below the breaker (the chaos layer's traffic).
    pub provider_calls: AtomicU64,
    /// Answers served by the fallback (the cache).
    pub fallbacks: AtomicU64,
}

type Cache = Arc<Mutex<HashMap<String, Bytes>>>;

#[derive(Clone)]
struct AppState {
    provider: Provider,
    cache: Cache,
    counters: Arc<Counters>,
}

/// How long the simulated provider takes to answer, unless told otherwise ([`app_with`]).
pub const PROVIDER_LATENCY: Duration = Duration::from_millis(1);

/// The simulated provider: answers a JSON quote after `latency` (at once when it is zero).
async fn provider(latency: Duration, req: http::Request<Body>) -> Result<http::Response<Full<Bytes>>, BoxError> {
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let symbol = symbol_of(&req);
    let body = format!(r#"{{"symbol":"{symbol}","price":101.25}}"#);
    Ok(http::Response::new(Full::new(Bytes::from(body))))
}

/// The route of the provider's quote API: what chaos rules match (`/api/quotes/**`).
const PROVIDER_ROUTE: &str = "/api/quotes/";

/// User headers passed on to the provider, so chaos rules can target users, tenants and canaries.
const FORWARDED: [&str; 3] = ["x-user-id", "x-tenant", "x-canary"];
/// Headers starting with this are passed on too: the header-driven faults (`x-chaos-token`,
/// `x-chaos-delay-ms`, `x-chaos-abort-status`), read by the chaos layer on the provider call.
const FORWARDED_PREFIX: &str = "x-chaos-";

fn symbol_of(req: &http::Request<Body>) -> String {
    req.uri().path().trim_start_matches(PROVIDER_ROUTE).to_owned()
}

/// The provider as the service sees it, outermost first: the fallback (the cache, unless
/// [`Options::fallback`] is off), the circuit breaker, a counter of calls that reach the provider, the client
/// timeout, chaos, then the whole body read (a reset or a cut body is an error here, as over a real
/// connection). Good answers fill the cache.
fn provider_client(
    chaos: &ChaosHandle,
    breaker: Arc<CircuitBreaker>,
    options: &Options,
    counters: &Arc<Counters>,
    read: Cache,
    latency: Duration,
) -> Provider {
    let fallback_counter = counters.clone();
    let fallback = tower::service_fn(move |req: http::Request<Body>| {
        let cached = read.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&symbol_of(&req)).cloned();
        fallback_counter.fallbacks.fetch_add(1, Ordering::Relaxed);
        async move {
            let mut response = match cached {
                Some(body) => http::Response::new(body),
                None => {
                    let mut r = http::Response::new(Bytes::from_static(b"no cached quote"));
                    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    r
                }
            };
            response.headers_mut().insert("x-served-from", HeaderValue::from_static("cache"));
            Ok::<_, BoxError>(response)
        }
    });
    // In a GameDay the injected faults stand for real ones: they count toward the breaker.
    let classify = |r: &Result<http::Response<Bytes>, BoxError>| match r {
        Ok(response) if response.status().is_success() => Outcome::Success,
        _ => Outcome::Failure,
    };
    let calls = counters.clone();
    let guarded = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker).classifier(classify))
        .map_request(move |req: http::Request<Body>| {
            calls.provider_calls.fetch_add(1, Ordering::Relaxed);
            req
        })
        .timeout(options.timeout)
        .and_then(|response: http::Response<chaos_tower::ChaosBody<Full<Bytes>>>| async move {
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(http::Response::from_parts(parts, bytes))
        })
        .layer(HttpChaosLayer::new(chaos.clone()))
        .service_fn(move |req| provider(latency, req));
    // One box for either shape: boxing the guarded stack inside the fallback too would cost a second boxed
    // clone and a second boxed future per request.
    let provider = if options.fallback {
        Either::Left(ServiceBuilder::new().layer(FallbackLayer::http(fallback)).service(guarded))
    } else {
        Either::Right(guarded)
    };
    BoxCloneSyncService::new(provider)
}

/// The provider's request for `symbol`, with the user's forwarded headers; `None` when the symbol makes no
/// valid URI.
fn provider_request(symbol: &str, headers: &http::HeaderMap) -> Option<http::Request<Body>> {
    let mut req = http::Request::get(format!("{PROVIDER_ROUTE}{symbol}"));
    for name in FORWARDED {
        if let Some(value) = headers.get(name) {
            req = req.header(name, value);
        }
    }
    for (name, value) in headers {
        if name.as_str().starts_with(FORWARDED_PREFIX) {
            req = req.header(name, value);
        }
    }
    req.body(Body::empty()).ok()
}

async fn quote(State(state): State<Arc<AppState>>, Path(symbol): Path<String>, headers: http::HeaderMap) -> Response {
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    // A symbol that makes no valid URI is the user's mistake, not the provider's.
    let Some(req) = provider_request(&symbol, &headers) else {
        return (StatusCode::BAD_REQUEST, "invalid symbol").into_response();
    };
    match state.provider.clone().oneshot(req).await {
        Ok(response) if response.status().is_success() => {
            let from_cache = response.headers().get("x-served-from").cloned();
            let body = response.into_body();
            if from_cache.is_none() {
                state.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(symbol, body.clone());
            }
            let mut answer = (StatusCode::OK, body).into_response();
            if let Some(v) = from_cache {
                answer.headers_mut().insert("x-served-from", v);
            }
            answer
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "quote provider unavailable").into_response(),
    }
}

/// How to build the demo service.
#[derive(Debug, Clone)]
pub struct Options {
    /// The service's timeout on its dependency (the GameDay plan's `load.client_timeout`).
    pub timeout: Duration,
    /// Answer with the last good quote when the provider fails (on by default). Off, every provider failure
    /// is a user-visible 503: the GameDay's `--without-fallback` shows that its verdicts depend on it.
    pub fallback: bool,
    /// Budgets the requests are charged to (their month-to-date usage, alert levels and guardrails), if any.
    pub budgets: Option<Arc<Mutex<BudgetMonitor>>>,
    /// Meter each request's CPU with the thread CPU clock around every poll (exact; on by default, the
    /// GameDay reports CPU per request). Off, a request's CPU is its wall time, recorded as an estimate:
    /// `CostLayer`'s own default, for high request rates (the clock is a system call, two per poll).
    pub thread_cpu: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { timeout: Duration::from_millis(250), fallback: true, budgets: None, thread_cpu: true }
    }
}

/// What the service's requests cost, summed from their cost-meter records.
#[derive(Debug, Default)]
pub struct CostTotals {
    cpu_ns: AtomicU64,
    memory_byte_ms: AtomicU64,
    jobs: AtomicU64,
    allocator_jobs: AtomicU64,
}

impl CostTotals {
    fn add(&self, record: &JobRecord) {
        self.cpu_ns.fetch_add((record.cpu_seconds * 1e9).round() as u64, Ordering::Relaxed);
        self.memory_byte_ms.fetch_add((record.memory_byte_seconds * 1e3).round() as u64, Ordering::Relaxed);
        self.jobs.fetch_add(1, Ordering::Relaxed);
        if record.memory_mode == MemoryMode::Allocator {
            self.allocator_jobs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The totals so far.
    pub fn snapshot(&self) -> CostSnapshot {
        CostSnapshot {
            cpu_ns: self.cpu_ns.load(Ordering::Relaxed),
            memory_byte_ms: self.memory_byte_ms.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
            allocator_jobs: self.allocator_jobs.load(Ordering::Relaxed),
        }
    }
}

/// [`CostTotals`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CostSnapshot {
    cpu_ns: u64,
    memory_byte_ms: u64,
    jobs: u64,
    allocator_jobs: u64,
}

/// What the requests finished between two snapshots cost.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PhaseCost {
    /// Requests metered (finished) in the span.
    pub requests: u64,
    /// CPU time they used, from the thread CPU clock.
    pub cpu_seconds: f64,
    /// CPU time per request, in milliseconds.
    pub cpu_ms_per_request: f64,
    /// Their live heap bytes integrated over their lives, in byte-seconds.
    pub memory_byte_seconds: f64,
    /// The same in GB-hours.
    pub memory_gb_hours: f64,
    /// `allocator` when every request's memory was measured by cost-meter's allocator, else `reservation`.
    pub memory_mode: &'static str,
}

impl CostSnapshot {
    /// The cost of what finished between `earlier` and this snapshot.
    pub fn since(self, earlier: CostSnapshot) -> PhaseCost {
        let requests = self.jobs - earlier.jobs;
        let cpu_seconds = (self.cpu_ns - earlier.cpu_ns) as f64 / 1e9;
        let memory_byte_seconds = (self.memory_byte_ms - earlier.memory_byte_ms) as f64 / 1e3;
        let metered = self.allocator_jobs - earlier.allocator_jobs;
        PhaseCost {
            requests,
            cpu_seconds,
            cpu_ms_per_request: if requests == 0 { 0.0 } else { cpu_seconds * 1e3 / requests as f64 },
            memory_byte_seconds,
            memory_gb_hours: cost_meter::gb_hours(memory_byte_seconds),
            memory_mode: if metered == requests { "allocator" } else { "reservation" },
        }
    }
}

/// The demo app and what a runner needs to watch it.
#[derive(Debug)]
pub struct Demo {
    /// The app: `GET /quote/{symbol}`.
    pub router: Router,
    /// What the service counts about its dependency.
    pub counters: Arc<Counters>,
    /// The provider's circuit breaker (20 calls minimum, 50% failures, 1 s open).
    pub breaker: Arc<CircuitBreaker>,
    /// The cost-meter meter every request is a job of.
    pub meter: Meter,
    /// The sum of the requests' costs.
    pub cost: Arc<CostTotals>,
}

/// Builds the demo app over `chaos`. Build it after installing any metrics recorder: the breaker's and the
/// fallback's metric handles bind to the recorder installed when they are made.
pub fn app(chaos: &ChaosHandle, options: &Options) -> Demo {
    app_with(chaos, options, PROVIDER_LATENCY)
}

/// [`app`] over a provider that answers after `provider_latency` (at once when it is zero).
pub fn app_with(chaos: &ChaosHandle, options: &Options, provider_latency: Duration) -> Demo {
    let counters = Arc::new(Counters::default());
    let config = BreakerConfig {
        minimum_calls: 20,
        window: SlidingWindow::Count { calls: 50, buckets: 5 },
        open_duration: Duration::from_secs(1),
        half_open_probes: 3,
        ..BreakerConfig::default()
    };
    // A constant configuration, not input: it is valid (the GameDay's tests build it).
    let breaker = Arc::new(
        CircuitBreaker::new("quote-provider", config, SystemClock::new()).expect("a constant, valid breaker config"),
    );
    let cache = Cache::default();
    let provider = provider_client(chaos, breaker.clone(), options, &counters, cache.clone(), provider_latency);
    // Behind an `Arc`: axum clones the state for every request, and the provider is a boxed service whose
    // clone allocates; the handler clones only the provider, once, to call it.
    let state = Arc::new(AppState { provider, cache, counters: counters.clone() });
    let cost = Arc::new(CostTotals::default());
    let totals = cost.clone();
    let budgets = options.budgets.clone();
    let meter = Meter::builder()
        .sink(move |record: &JobRecord| {
            totals.add(record);
            if let Some(budgets) = &budgets {
                let mut monitor = budgets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Err(e) = monitor.record(record, std::time::SystemTime::now()) {
                    tracing::warn!("budget checkpoint not saved: {e}");
                }
            }
        })
        .build();
    let labels = Labels::new("trading", "quote-api").env("demo").strategy("quote");
    let metering = if options.thread_cpu {
        CostLayer::new(meter.clone(), labels).thread_cpu()
    } else {
        CostLayer::new(meter.clone(), labels)
    };
    let router = Router::new().route("/quote/{symbol}", get(quote)).with_state(state).layer(metering);
    Demo { router, counters, breaker, meter, cost }
}

/// The same `GET /quote/{symbol}` with none of Brownout's layers: the baseline of the end-to-end benchmark
/// (`benches/e2e.sh`). The provider is called as in [`app`] (same request, forwarded headers, client
/// `timeout`, whole body read) but without the fallback, the cache, the circuit breaker, the fault layer and
/// the cost meter; a provider failure is a 503.
pub fn bare_router(timeout: Duration, provider_latency: Duration) -> Router {
    let client = ServiceBuilder::new()
        .timeout(timeout)
        .and_then(|response: http::Response<Full<Bytes>>| async move {
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(http::Response::from_parts(parts, bytes))
        })
        .service_fn(move |req| provider(provider_latency, req));
    let client: Provider = BoxCloneSyncService::new(client);
    Router::new().route("/quote/{symbol}", get(bare_quote)).with_state(client)
}

async fn bare_quote(State(client): State<Provider>, Path(symbol): Path<String>, headers: http::HeaderMap) -> Response {
    let Some(req) = provider_request(&symbol, &headers) else {
        return (StatusCode::BAD_REQUEST, "invalid symbol").into_response();
    };
    match client.oneshot(req).await {
        Ok(response) if response.status().is_success() => (StatusCode::OK, response.into_body()).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "quote provider unavailable").into_response(),
    }
}
