//! The demo service: an axum app worth degrading, with critical and non-critical routes, each with a degrade
//! mode read from degrade flags (`configs/feature_flags.yaml`).
//!
//! | Route | Kind | Flag | What degrades |
//! |---|---|---|---|
//! | `GET /quote/{symbol}` | critical | `quotes.source: live \| cached \| stale_ok` | quotes from the cache instead of the provider ([`QuoteSource`]) |
//! | `GET /reports/{name}` | non-critical | `reports.delivery: cached \| streaming` | a 256 KiB report built and cached in memory, or streamed ([`ReportDelivery`]) |
//! | `GET /recommendations/{user}` | non-critical | — | CPU-bound (~0.5 ms of hashing): shows CPU pressure in its latency |
//! | every non-critical route | | `api.shed_percent: 0–100` | exactly that share is shed with `503` + `Retry-After` |
//!
//! `/quote/**` and `/orders/**` are critical: never shed. The flags are read through typed handles taken once
//! when the app is built (each read is one atomic load), from [`Options::flags`] (the `http_service` example
//! passes its flags, loaded and watched from the flag file) or, without it, from flags the demo defines at
//! their defaults ([`Demo::flags`], which a test can set). `execution.partial_fill_mode` is not read here.
//!
//! The quote route calls a simulated quote provider through Brownout's fallback, circuit breaker and fault
//! layers and a client timeout; the fallback answers with the last good (cached) quote. Its answers carry
//! `x-quote-age-ms` (0 for a live quote), `x-served-from: cache` when from the cache, and `x-degraded: stale`
//! when the cached quote is older than [`Options::quote_max_age`] (5 s by default) — a degraded answer,
//! which the GameDay counts as an error — or `x-degraded: stale-ok` when `quotes.source` is `stale_ok` (the
//! operator accepted stale quotes: counted, in [`Counters::stale`] and [`Counters::stale_accepted`], but not
//! an error).
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

mod cost;
pub mod degrade;
mod flags;
pub mod gameday;
mod provider;
mod quotes;
mod recommendations;
mod reports;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use brownout_cost::budget::{BudgetFeed, BudgetMonitor};
use brownout_cost::{Labels, Meter};
use brownout_degrade::Flags;
use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, SlidingWindow};
use brownout_tower::{ChaosHandle, Cost, CostLayer, Shed, ShedLayer, TokioClock};
use tower::util::Either;
use tower::{Layer, ServiceExt};

pub use cost::CostTotals;
pub use flags::{QUOTES_SOURCE, QuoteSource, REPORTS_DELIVERY, ReportDelivery, SHED_PERCENT};
pub use reports::REPORT_DELIVERY_HEADER;

use provider::Provider;

/// `x-quote-age-ms`: the age of the quote answered, in milliseconds (0 for a live quote).
pub static QUOTE_AGE_HEADER: HeaderName = HeaderName::from_static("x-quote-age-ms");
/// `x-served-from: cache`: the quote came from the cache (by the fallback, or by `quotes.source`).
pub static SERVED_FROM_HEADER: HeaderName = HeaderName::from_static("x-served-from");
/// `x-degraded: stale` (a degraded answer, an error for the GameDay) or `stale-ok` (a stale quote accepted by
/// `quotes.source: stale_ok`): the cached quote is older than [`Options::quote_max_age`].
pub static DEGRADED_HEADER: HeaderName = HeaderName::from_static("x-degraded");

/// The routes never shed, whatever `api.shed_percent` says.
pub const CRITICAL_ROUTES: [&str; 2] = ["/quote/**", "/orders/**"];

/// What the service counts: its routes' requests, its dependency, and its degrade modes.
#[derive(Debug, Default)]
pub struct Counters {
    /// User requests that needed a quote (`GET /quote/{symbol}`).
    pub requests: AtomicU64,
    /// Calls that reached the provider stack below the breaker (the chaos layer's traffic).
    pub provider_calls: AtomicU64,
    /// Answers served by the fallback (the cache), including its `503` when no quote was cached.
    pub fallbacks: AtomicU64,
    /// Quotes served from the cache because `quotes.source` said so (`cached`, `stale_ok`), without calling
    /// the provider.
    pub quotes_from_cache: AtomicU64,
    /// Cached quotes answered older than [`Options::quote_max_age`] (marked `x-degraded`), whatever the mode.
    pub stale: AtomicU64,
    /// Of [`stale`](Self::stale), those accepted by `quotes.source: stale_ok` (marked `x-degraded: stale-ok`).
    pub stale_accepted: AtomicU64,
    /// `GET /reports/{name}` requests answered (not shed).
    pub report_requests: AtomicU64,
    /// Reports delivered in `cached` mode (built whole, or a cache hit).
    pub reports_cached: AtomicU64,
    /// Of [`reports_cached`](Self::reports_cached), those served from the report cache.
    pub report_cache_hits: AtomicU64,
    /// Reports delivered in `streaming` mode.
    pub reports_streamed: AtomicU64,
    /// Reports in the report cache now (a gauge).
    pub report_cache_entries: AtomicU64,
    /// `GET /recommendations/{user}` requests answered (not shed).
    pub recommendation_requests: AtomicU64,
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
    /// Meter each request's CPU with the thread CPU clock, apportioned over its polls (`CostLayer`'s default;
    /// on by default, the GameDay reports CPU per request). Off, a request's CPU is its wall time, recorded as
    /// an estimate (`CostLayer::wall_estimate`).
    pub thread_cpu: bool,
    /// The degrade flags the demo reads (`quotes.source`, `reports.delivery`, `api.shed_percent`); those
    /// missing are defined at their defaults. `None` (the default): the demo makes its own registry, at the
    /// defaults, returned in [`Demo::flags`].
    pub flags: Option<Flags>,
    /// The age limit of a cached quote (default 5 s): older, a cached answer is marked `x-degraded` and
    /// counted in [`Counters::stale`]; `quotes.source: cached` calls the provider rather than serve it.
    pub quote_max_age: Duration,
    /// The size of a report, in bytes (default 256 KiB; the last line may go a little over).
    pub report_bytes: usize,
    /// The most reports the `cached` mode keeps in memory (default 4096, about 1 GiB at the default size;
    /// 0 keeps none): beyond it, the oldest is evicted.
    pub report_cache_entries: usize,
    /// The CPU work of a recommendation, in hash rounds (default 32,768: about 0.5 ms in an optimised build
    /// on the project's machines, about ten times that in a debug build).
    pub recommendation_rounds: u32,
    /// The orders route (`POST /orders`, `GET /orders/stats`), critical, when given: open it with
    /// [`open_orders`].
    pub orders: Option<crate::orders::Orders>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(250),
            fallback: true,
            budgets: None,
            thread_cpu: true,
            flags: None,
            quote_max_age: Duration::from_secs(5),
            report_bytes: 256 * 1024,
            report_cache_entries: 4096,
            recommendation_rounds: 32_768,
            orders: None,
        }
    }
}

/// The orders route's parts: the orders, the chaos switches of its store and of its journal (each its own, so
/// a database fault leaves the journal alone), and the window of its store calls (for the triggers).
#[derive(Debug, Clone)]
pub struct OrdersParts {
    /// The orders, for [`Options::orders`].
    pub orders: crate::orders::Orders,
    /// The chaos switch of the store's calls (generic flavour: a database outage, a slow disk).
    pub store_chaos: ChaosHandle,
    /// The chaos switch of the journal's writes (route `io/journal/write`).
    pub journal_chaos: ChaosHandle,
    /// Every store call's duration and outcome over the last second.
    pub store_calls: brownout_tower::degrade::LatencyWindow,
}

/// Opens the orders route over `dir` (its SQLite store and journal): store calls recorded in a 1 s window and
/// counted, a failing store falling back to the journal unless `fallback` is off; the chaos switches guard
/// `environment`. Inside a tokio runtime.
pub fn open_orders(
    dir: &std::path::Path,
    flags: &Flags,
    fallback: bool,
    environment: brownout_chaos::Environment,
) -> Result<OrdersParts, String> {
    let (store_chaos, journal_chaos) =
        (ChaosHandle::for_environment(environment), ChaosHandle::for_environment(environment));
    let store_calls = brownout_tower::degrade::LatencyWindow::new(degrade::STORE_WINDOW);
    let window = store_calls.clone();
    let options = crate::orders::OrdersOptions {
        journal_chaos: Some(journal_chaos.clone()),
        on_store_call: Some(Arc::new(move |latency, ok| window.record(latency, ok))),
        fallback_to_journal: fallback,
        ..crate::orders::OrdersOptions::default()
    };
    let orders = crate::orders::Orders::open(dir, flags, &store_chaos, options)?;
    Ok(OrdersParts { orders, store_chaos, journal_chaos, store_calls })
}

/// The demo's routes behind its whole-app layers, outermost first: the cost meter (a job per request), then
/// shedding (when the flags define `api.shed_percent`).
///
/// The layers wrap the `Router` rather than go in with `Router::layer`: axum boxes every route's service and
/// future once more per call of `layer` (and sets each answer's length once more), which a layer around the
/// whole router does not cost. Serve it with `axum::serve(listener, tower::make::Shared::new(app))`, or mount
/// it under a router with `fallback_service`.
pub type App = Cost<Either<Shed<Router>, Router>>;

/// The demo app and what a runner needs to watch it.
#[derive(Debug)]
pub struct Demo {
    /// The app: `GET /quote/{symbol}`, `GET /reports/{name}`, `GET /recommendations/{user}`.
    pub app: App,
    /// The shedding layer of `api.shed_percent`, when the flags define it: its
    /// [`shed_total`](ShedLayer::shed_total) counts the non-critical requests shed (`503` with `Retry-After`
    /// and `x-degrade-shed`).
    pub shed: Option<ShedLayer>,
    /// What the service counts about its routes, its dependency and its degrade modes.
    pub counters: Arc<Counters>,
    /// The provider's circuit breaker (20 calls minimum, 50% failures, 1 s open).
    pub breaker: Arc<CircuitBreaker>,
    /// The cost-meter meter every request is a job of.
    pub meter: Meter,
    /// The sum of the requests' costs.
    pub cost: Arc<CostTotals>,
    /// The flags the app reads: [`Options::flags`], or the registry the demo made. Setting one
    /// (`demo.flags.set("quotes.source", "cached")`) changes the app's behaviour from the next request.
    pub flags: Flags,
}

/// How long the simulated provider takes to answer, unless told otherwise ([`app_with`]).
pub const PROVIDER_LATENCY: Duration = Duration::from_millis(1);

/// Builds the demo app over `chaos`. Build it after installing any metrics recorder: the breaker's and the
/// fallback's metric handles bind to the recorder installed when they are made.
pub fn app(chaos: &ChaosHandle, options: &Options) -> Demo {
    app_with(chaos, options, PROVIDER_LATENCY)
}

/// [`app`] over a provider that answers after `provider_latency` (at once when it is zero).
pub fn app_with(chaos: &ChaosHandle, options: &Options, provider_latency: Duration) -> Demo {
    let counters = Arc::new(Counters::default());
    let flags = options.flags.clone().unwrap_or_default();
    let handles = flags::DemoFlags::take(&flags);
    let config = BreakerConfig::default()
        .minimum_calls(20)
        .window(SlidingWindow::Count { calls: 50, buckets: 5 })
        .open_duration(Duration::from_secs(1))
        .half_open_probes(3);
    // A constant configuration, not input: it is valid (the GameDay's tests build it). On tokio's clock, as the
    // rules and triggers: paused-time tests move its open duration too.
    let breaker =
        Arc::new(CircuitBreaker::new("quote-provider", config, TokioClock).expect("a constant, valid breaker config"));
    let cache = quotes::QuoteCache::default();
    let provider = provider::client(chaos, breaker.clone(), options, &counters, cache.clone(), provider_latency);
    let quotes = quotes::Quotes {
        provider,
        cache,
        counters: counters.clone(),
        source: handles.quote_source,
        max_age: options.quote_max_age,
    };
    let reports = reports::Reports {
        counters: counters.clone(),
        delivery: handles.report_delivery,
        bytes: options.report_bytes,
        max_entries: options.report_cache_entries,
        cache: Mutex::default(),
    };
    let recommendations =
        recommendations::Recommendations { counters: counters.clone(), rounds: options.recommendation_rounds };

    // Requests are charged to the budgets in per-thread batches, judged once a second (or at the monitor's
    // next flush): an alert fires at most a second late. What they cost in all is the meter's own totals.
    let mut meter = Meter::builder();
    if let Some(monitor) = &options.budgets {
        meter = meter.sink(BudgetFeed::new(monitor, Duration::from_secs(1)));
    }
    let meter = meter.build();
    let cost = Arc::new(CostTotals::new(meter.clone()));
    let labels = Labels::new("trading", "quote-api").env("demo").strategy("quote");
    let metering = if options.thread_cpu {
        CostLayer::new(meter.clone(), labels)
    } else {
        CostLayer::new(meter.clone(), labels).wall_estimate()
    };
    let mut router = Router::new()
        .merge(quotes::router(quotes))
        .merge(reports::router(reports))
        .merge(recommendations::router(recommendations));
    if let Some(orders) = &options.orders {
        router = router.merge(orders.router());
    }
    // Shedding over every route, inside the meter (a shed request is a job too, a cheap one).
    let shed = handles
        .shed_percent
        .map(|percent| CRITICAL_ROUTES.iter().fold(ShedLayer::percent(percent), |shed, route| shed.critical(route)));
    let routes = match &shed {
        Some(shed) => Either::Left(shed.layer(router)),
        None => Either::Right(router),
    };
    Demo { app: metering.layer(routes), shed, counters, breaker, meter, cost, flags }
}

/// The same `GET /quote/{symbol}` with none of Brownout's layers: the baseline of the end-to-end benchmark
/// (`benches/e2e.sh`). The provider is called as in [`app`] (same request, forwarded headers, client
/// `timeout`, whole body read) but without the fallback, the cache, the circuit breaker, the fault layer and
/// the cost meter; a provider failure is a 503. (Only the quote route: the other routes have no dependency.)
pub fn bare_router(timeout: Duration, provider_latency: Duration) -> Router {
    let client = provider::bare_client(timeout, provider_latency);
    Router::new().route("/quote/{symbol}", get(bare_quote)).with_state(client)
}

async fn bare_quote(State(client): State<Provider>, Path(symbol): Path<String>, headers: http::HeaderMap) -> Response {
    let Some(req) = provider::request(&symbol, &headers) else {
        return (StatusCode::BAD_REQUEST, "invalid symbol").into_response();
    };
    match client.oneshot(req).await {
        Ok(response) if response.status().is_success() => (StatusCode::OK, response.into_body()).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "quote provider unavailable").into_response(),
    }
}
