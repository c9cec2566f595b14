//! The GameDay's load over loopback: chaos-tower's load harness sends requests at a target rate, a mix of the
//! demo's critical routes (quotes, orders) and non-critical ones (reports, recommendations); every request is
//! recorded with its start time, latency and how it was answered.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chaos_core::SloGuard;
use chaos_tower::load::{self, LoadMode, LoadPlan, Outcome};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use super::plan::Mix;

/// The demo's routes, as the load sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `GET /quote/{symbol}`: critical.
    Quote,
    /// `POST /orders`: critical.
    Order,
    /// `GET /reports/{name}`: non-critical.
    Report,
    /// `GET /recommendations/{user}`: non-critical.
    Recommendations,
}

impl Route {
    /// Critical routes are never shed, and their errors count against the SLO.
    pub fn critical(self) -> bool {
        matches!(self, Route::Quote | Route::Order)
    }
}

/// One user request as the load generator saw it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Offset of the request's start from the start of the run.
    pub at: Duration,
    pub latency: Duration,
    pub route: Route,
    /// Answered as the user needed: a 2xx with its full body, not marked stale past the route's limit.
    pub ok: bool,
    /// Served from the cache (the fallback, or the `cached` / `stale_ok` quote source).
    pub fallback: bool,
    /// Refused by load shedding (`503` with `x-degrade-shed`).
    pub shed: bool,
    /// A quote older than the route's limit (`x-degraded: stale`).
    pub stale: bool,
    /// The age of the quote answered (`x-quote-age-ms`), in milliseconds; 0 for a live quote or another route.
    pub quote_age_ms: u32,
}

/// The shared record of a run.
#[derive(Debug, Default)]
pub struct Recorder {
    samples: Mutex<Vec<Sample>>,
}

impl Recorder {
    /// Samples whose start lies in `[from, to)`.
    pub fn between(&self, from: Duration, to: Duration) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        samples.iter().filter(|s| s.at >= from && s.at < to).copied().collect()
    }
}

/// One request to send.
#[derive(Debug, Clone)]
struct Request {
    route: Route,
    method: http::Method,
    uri: http::Uri,
    body: Bytes,
}

/// The `n`th request of the mix: a route by the mix's weights, a symbol from a skewed popularity (a few hot
/// symbols, a long tail, as real quote traffic), deterministic in `n` so runs are comparable.
fn request(addr: SocketAddr, mix: &Mix, n: u64, orders: &AtomicU64) -> Request {
    let h = chaos_hash(n);
    let total = mix.total().max(1);
    let pick = h % u64::from(total);
    let symbols = u64::from(mix.symbols.max(1));
    // Skewed: the square of a uniform draw favours the low indices (about 30% of requests hit the first 10%).
    let u = ((h >> 20) % 1_000_000) as f64 / 1e6;
    let symbol = ((u * u) * symbols as f64) as u64;
    let get = |route, path: String| Request {
        route,
        method: http::Method::GET,
        uri: format!("http://{addr}{path}").parse().expect("valid uri"),
        body: Bytes::new(),
    };
    let mut at = u64::from(mix.quote);
    if pick < at {
        return get(Route::Quote, format!("/quote/SYM{symbol}"));
    }
    at += u64::from(mix.order);
    if pick < at {
        let id = orders.fetch_add(1, Ordering::Relaxed);
        return Request {
            route: Route::Order,
            method: http::Method::POST,
            uri: format!("http://{addr}/orders").parse().expect("valid uri"),
            body: Bytes::from(format!(r#"{{"id":"gameday-{id}","symbol":"SYM{symbol}","qty":{}}}"#, 1 + h % 100)),
        };
    }
    at += u64::from(mix.report);
    if pick < at {
        return get(Route::Report, format!("/reports/daily-{}", symbol % 16));
    }
    get(Route::Recommendations, format!("/recommendations/user{}", h % 1000))
}

/// A 64-bit mix of `n` (splitmix64's finaliser).
fn chaos_hash(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Drives `addr` until `stop` is set, with chaos-tower's load harness in an open loop at `rps` (at most
/// `workers` requests in flight), feeding every critical answer to the SLO `guards` (one per chaos switch);
/// returns the recorder.
///
/// The harness schedules the sends; each request's own sample (its start, latency, route and how it was
/// answered) is recorded by the client service it drives, as the GameDay charts it over time.
pub fn start(
    addr: SocketAddr,
    rps: u32,
    workers: u32,
    mix: Mix,
    epoch: Instant,
    guards: Vec<SloGuard>,
) -> (Arc<Recorder>, tokio::sync::watch::Sender<bool>) {
    let guards: Arc<[SloGuard]> = guards.into();
    let recorder = Arc::new(Recorder::default());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let samples = recorder.clone();
    let user = tower::service_fn(move |req: Request| {
        let (client, samples, guards) = (client.clone(), samples.clone(), guards.clone());
        async move {
            let start = Instant::now();
            let outcome = async {
                let mut builder = http::Request::builder().method(req.method).uri(req.uri);
                if !req.body.is_empty() {
                    builder = builder.header("content-type", "application/json");
                }
                let response = client.request(builder.body(Full::new(req.body)).ok()?).await.ok()?;
                let headers = response.headers();
                let fallback = headers.contains_key("x-served-from");
                let shed = headers.contains_key(&chaos_tower::shed::SHED_HEADER);
                let stale = headers.get("x-degraded").is_some_and(|v| v == "stale");
                let age = headers.get("x-quote-age-ms").and_then(|v| v.to_str().ok()?.parse::<u32>().ok());
                let success = response.status().is_success();
                response.into_body().collect().await.ok()?;
                Some((success && !stale, fallback, shed, stale, age.unwrap_or(0)))
            }
            .await;
            let (ok, fallback, shed, stale, quote_age_ms) = outcome.unwrap_or((false, false, false, false, 0));
            let sample = Sample {
                at: start - epoch,
                latency: start.elapsed(),
                route: req.route,
                ok,
                fallback,
                shed,
                stale,
                quote_age_ms,
            };
            if req.route.critical() {
                for guard in guards.iter() {
                    guard.record(sample.latency, ok);
                }
            }
            samples.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sample);
            Ok::<bool, Infallible>(ok || shed)
        }
    });
    // The run ends when `stop` is set (the task is aborted); its duration is only a bound.
    let plan = LoadPlan {
        mode: LoadMode::Open { rate_per_sec: f64::from(rps.max(1)), max_in_flight: workers.max(1) },
        requests: None,
        duration: Some(Duration::from_secs(7 * 24 * 3600)),
        warmup: Duration::ZERO,
    };
    let orders = Arc::new(AtomicU64::new(0));
    let run = tokio::spawn(async move {
        let make = move |i: u64| request(addr, &mix, i, &orders);
        load::run(&plan, user, make, |r: Result<&bool, &Infallible>| Outcome::from_ok(matches!(r, Ok(true)))).await
    });
    tokio::spawn(async move {
        // Set, or its sender dropped: either way the run is over.
        let _ = stop_rx.wait_for(|stop| *stop).await;
        run.abort();
    });
    (recorder, stop_tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_follows_its_weights_and_skews_the_symbols() {
        let mix = Mix { quote: 60, order: 10, report: 10, recommendations: 20, symbols: 100 };
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let orders = AtomicU64::new(0);
        let requests: Vec<Request> = (0..10_000).map(|n| request(addr, &mix, n, &orders)).collect();
        let share = |route| requests.iter().filter(|r| r.route == route).count() as f64 / 10_000.0;
        for (route, want) in
            [(Route::Quote, 0.6), (Route::Order, 0.1), (Route::Report, 0.1), (Route::Recommendations, 0.2)]
        {
            assert!((share(route) - want).abs() < 0.02, "{route:?}: {}", share(route));
        }
        let hot = requests
            .iter()
            .filter(|r| r.route == Route::Quote)
            .filter(|r| r.uri.path().trim_start_matches("/quote/SYM").parse::<u64>().unwrap() < 10)
            .count() as f64
            / requests.iter().filter(|r| r.route == Route::Quote).count() as f64;
        assert!((0.25..0.4).contains(&hot), "the first 10% of symbols take {hot:.2} of the quotes");
        assert_eq!(
            orders.load(Ordering::Relaxed) as usize,
            requests.iter().filter(|r| r.route == Route::Order).count()
        );
    }
}
