//! The runner's load: chaos-tower's load harness sends requests at a target rate (an open loop), a weighted
//! mix of the plan's routes; every request is recorded with its start time, latency and how it was answered.
//! The requests reach the service through a [`Client`]: over HTTP, or in-process through a Tower service.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brownout_chaos::SloGuard;
use brownout_tower::load::{self, LoadPlan, Outcome};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::plan::Load;

/// A boxed, sendable future (what [`Client`] and [`crate::Target`] return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An answer as the runner reads it: its status and headers, and whether its whole body arrived.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body was read to its end without an error (a body that fails midway is a failed request).
    pub body_complete: bool,
}

type SendFn = dyn Fn(http::Request<Full<Bytes>>) -> BoxFuture<'static, Result<Answer, String>> + Send + Sync;

/// How the runner's requests reach the service: over HTTP to a base URL, or in-process through a Tower
/// service (an axum `Router`, for example).
#[derive(Clone)]
pub struct Client {
    send: Arc<SendFn>,
    base: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Client {
    /// Requests over HTTP/1.1 to `base` (`http://127.0.0.1:8080`, no path), with keep-alive connections.
    pub fn http(base: &str) -> Result<Client, String> {
        let base = base.trim_end_matches('/').to_owned();
        let uri: http::Uri = base.parse().map_err(|e| format!("`{base}` is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(format!("`{base}`: give an http:// URL with a host (https is not supported)"));
        }
        let client = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let send = move |request: http::Request<Full<Bytes>>| -> BoxFuture<'static, Result<Answer, String>> {
            let client = client.clone();
            Box::pin(async move {
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                let (parts, body) = response.into_parts();
                let body_complete = body.collect().await.is_ok();
                Ok(Answer { status: parts.status, headers: parts.headers, body_complete })
            })
        };
        Ok(Client { send: Arc::new(send), base })
    }

    /// Requests in-process to `service` (its URIs carry the path only): no network, and paused time works.
    pub fn service<S, B>(service: S) -> Client
    where
        S: tower::Service<http::Request<Full<Bytes>>, Response = http::Response<B>> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: fmt::Display,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: fmt::Display,
    {
        let send = move |request: http::Request<Full<Bytes>>| -> BoxFuture<'static, Result<Answer, String>> {
            let service = service.clone();
            Box::pin(async move {
                let response = service.oneshot(request).await.map_err(|e| e.to_string())?;
                let (parts, body) = response.into_parts();
                let body_complete = body.collect().await.is_ok();
                Ok(Answer { status: parts.status, headers: parts.headers, body_complete })
            })
        };
        Client { send: Arc::new(send), base: String::new() }
    }

    /// Sends `method path` (with a JSON `body`), and reads the whole answer.
    pub async fn send(&self, method: http::Method, path: &str, body: Option<Bytes>) -> Result<Answer, String> {
        let mut builder = http::Request::builder().method(method).uri(format!("{}{path}", self.base));
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder.body(Full::new(body.unwrap_or_default())).map_err(|e| e.to_string())?;
        (self.send)(request).await
    }

    /// The base URL, empty for an in-process service.
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// One user request as the load generator saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Offset of the request's start from the start of the run.
    pub at: Duration,
    /// From its start to its last body byte (or its failure).
    pub latency: Duration,
    /// The route's index in the plan's `load.routes`.
    pub route: u16,
    /// The route is critical.
    pub critical: bool,
    /// Answered as the user needed: a 2xx with its full body, not marked stale.
    pub ok: bool,
    /// Served by a fallback (the plan's `fallback_header`).
    pub fallback: bool,
    /// Refused by load shedding (`503` with Brownout's `x-degrade-shed`).
    pub shed: bool,
    /// A degraded answer the user cannot use (the plan's `stale_header`).
    pub stale: bool,
    /// The age of the data answered (the plan's `age_header`), in milliseconds, when the answer gave one.
    pub age_ms: Option<u32>,
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

    fn push(&self, sample: Sample) {
        self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sample);
    }
}

/// One request to send.
#[derive(Debug, Clone)]
struct Request {
    route: u16,
    critical: bool,
    method: http::Method,
    path: String,
    body: Option<Bytes>,
}

/// The routes, ready to draw from.
#[derive(Debug)]
struct Mix {
    routes: Vec<(crate::plan::RouteSpec, http::Method, u32)>,
    total: u64,
}

impl Mix {
    fn new(load: &Load) -> Mix {
        let routes: Vec<_> = load
            .routes
            .iter()
            .map(|r| {
                let method = http::Method::from_bytes(r.method.as_bytes()).unwrap_or(http::Method::GET);
                (r.clone(), method, r.keys.unwrap_or(load.keys).max(1))
            })
            .collect();
        let total = routes.iter().map(|(r, ..)| u64::from(r.weight)).sum::<u64>().max(1);
        Mix { routes, total }
    }

    /// The `n`th request: a route by the weights, a key from a skewed popularity (a few hot keys, a long tail),
    /// deterministic in `n` so runs are comparable.
    fn request(&self, n: u64) -> Request {
        let h = mix64(n);
        let mut pick = h % self.total;
        let index = self
            .routes
            .iter()
            .position(|(r, ..)| {
                let w = u64::from(r.weight);
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .unwrap_or(0);
        let (spec, method, keys) = &self.routes[index];
        // Skewed: the square of a uniform draw favours the low indices (about 30% of requests on the first 10%).
        let u = ((h >> 20) % 1_000_000) as f64 / 1e6;
        let key = ((u * u) * f64::from(*keys)) as u64;
        let fill = |template: &str| template.replace("{key}", &key.to_string()).replace("{seq}", &n.to_string());
        Request {
            route: index as u16,
            critical: spec.critical,
            method: method.clone(),
            path: fill(&spec.path),
            body: spec.body.as_deref().map(|b| Bytes::from(fill(b))),
        }
    }
}

/// A 64-bit mix of `n` (splitmix64's finaliser).
fn mix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How answers are read: the plan's headers, parsed once.
#[derive(Debug, Clone)]
struct Reading {
    fallback: Option<HeaderName>,
    stale: Option<(HeaderName, HeaderValue)>,
    age: Option<HeaderName>,
}

impl Reading {
    fn new(load: &Load) -> Reading {
        let stale = load.stale_header.split_once(':').and_then(|(name, value)| {
            Some((HeaderName::try_from(name.trim()).ok()?, HeaderValue::try_from(value.trim()).ok()?))
        });
        Reading {
            fallback: HeaderName::try_from(load.fallback_header.as_str()).ok(),
            stale,
            age: load.age_header.as_deref().and_then(|h| HeaderName::try_from(h).ok()),
        }
    }
}

/// Drives the service through `client` until `stop` is set, with chaos-tower's load harness in an open loop
/// at the plan's rate (at most `workers` requests in flight), feeding every critical answer to the SLO
/// `guards`; returns the recorder and the stop switch.
pub fn start(
    client: Client,
    load: &Load,
    epoch: Instant,
    guards: Vec<SloGuard>,
) -> (Arc<Recorder>, tokio::sync::watch::Sender<bool>) {
    let guards: Arc<[SloGuard]> = guards.into();
    let recorder = Arc::new(Recorder::default());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let samples = recorder.clone();
    let reading = Arc::new(Reading::new(load));
    let timeout = load.request_timeout;
    let user = tower::service_fn(move |req: Request| {
        let (client, samples, guards, reading) = (client.clone(), samples.clone(), guards.clone(), reading.clone());
        async move {
            let start = Instant::now();
            let answer = tokio::time::timeout(timeout, client.send(req.method, &req.path, req.body)).await;
            let (ok, fallback, shed, stale, age_ms) = match answer {
                Ok(Ok(a)) => {
                    let stale = reading.stale.as_ref().is_some_and(|(name, value)| a.headers.get(name) == Some(value));
                    let fallback = reading.fallback.as_ref().is_some_and(|name| a.headers.contains_key(name));
                    let shed = a.headers.contains_key(&brownout_tower::shed::SHED_HEADER);
                    let age = reading.age.as_ref().and_then(|name| a.headers.get(name)?.to_str().ok()?.parse().ok());
                    (a.status.is_success() && a.body_complete && !stale, fallback, shed, stale, age)
                }
                _ => (false, false, false, false, None),
            };
            let sample = Sample {
                at: start - epoch,
                latency: start.elapsed(),
                route: req.route,
                critical: req.critical,
                ok,
                fallback,
                shed,
                stale,
                age_ms,
            };
            if req.critical {
                for guard in guards.iter() {
                    guard.record(sample.latency, ok);
                }
            }
            samples.push(sample);
            Ok::<bool, Infallible>(ok || shed)
        }
    });
    // The run ends when `stop` is set (the task is aborted); its duration is only a bound.
    let plan = LoadPlan::open(f64::from(load.rps.max(1)))
        .max_in_flight(load.workers.max(1))
        .duration(Duration::from_secs(7 * 24 * 3600));
    let mix = Mix::new(load);
    let sequence = Arc::new(AtomicU64::new(0));
    let run = tokio::spawn(async move {
        let make = move |_: u64| mix.request(sequence.fetch_add(1, Ordering::Relaxed));
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
    use crate::plan::Plan;

    fn load(yaml: &str) -> Load {
        let text = format!(
            "load: {yaml}\nslo: {{ user_error_rate: 0.01, p95: 1s, recovery_p95_factor: 2, abort: {{ error_rate: 0.5, p95: 1s, window: 1s, min_requests: 1 }} }}\nphases: {{ before: 1s, after: 1s, window: 250ms }}\nscenarios: []\n"
        );
        Plan::from_yaml(&text).unwrap().load
    }

    #[test]
    fn the_mix_follows_its_weights_and_skews_the_keys() {
        let load = load(
            "{ rps: 1, workers: 1, keys: 100, routes: [ \
               { name: quote, path: '/quote/SYM{key}', weight: 60, critical: true }, \
               { name: order, method: POST, path: /orders, body: '{\"id\":\"o-{seq}\"}', weight: 10, critical: true }, \
               { name: report, path: '/reports/{key}', weight: 10, keys: 4 }, \
               { name: rec, path: /rec, weight: 20 } ] }",
        );
        let mix = Mix::new(&load);
        let requests: Vec<Request> = (0..10_000).map(|n| mix.request(n)).collect();
        let share = |route| requests.iter().filter(|r| r.route == route).count() as f64 / 10_000.0;
        for (route, want) in [(0, 0.6), (1, 0.1), (2, 0.1), (3, 0.2)] {
            assert!((share(route) - want).abs() < 0.02, "route {route}: {}", share(route));
        }
        let quotes: Vec<u64> = requests
            .iter()
            .filter(|r| r.route == 0)
            .map(|r| r.path.trim_start_matches("/quote/SYM").parse().unwrap())
            .collect();
        let hot = quotes.iter().filter(|k| **k < 10).count() as f64 / quotes.len() as f64;
        assert!((0.25..0.4).contains(&hot), "the first 10% of keys take {hot:.2} of the quotes");
        assert!(
            requests.iter().filter(|r| r.route == 2).all(|r| r
                .path
                .trim_start_matches("/reports/")
                .parse::<u32>()
                .unwrap()
                < 4)
        );
        let order = requests.iter().find(|r| r.route == 1).unwrap();
        assert_eq!(order.method, http::Method::POST);
        assert!(order.critical);
        assert!(std::str::from_utf8(order.body.as_ref().unwrap()).unwrap().starts_with("{\"id\":\"o-"));
    }

    #[tokio::test]
    async fn answers_are_read_by_the_plans_headers() {
        let app = tower::service_fn(|req: http::Request<Full<Bytes>>| async move {
            let response = match req.uri().path() {
                "/fallback" => http::Response::builder().header("x-served-from", "cache"),
                "/stale" => http::Response::builder().header("x-degraded", "stale"),
                "/shed" => http::Response::builder().status(503).header("x-degrade-shed", "1"),
                _ => http::Response::builder().header("x-age", "42"),
            };
            Ok::<_, Infallible>(response.body(Full::new(Bytes::from_static(b"ok"))).unwrap())
        });
        let client = Client::service(app);
        let reading = Reading::new(&load("{ rps: 1, workers: 1, age_header: x-age }"));
        let a = client.send(http::Method::GET, "/fallback", None).await.unwrap();
        assert!(a.headers.contains_key(reading.fallback.as_ref().unwrap()) && a.body_complete);
        let a = client.send(http::Method::GET, "/stale", None).await.unwrap();
        let (name, value) = reading.stale.as_ref().unwrap();
        assert_eq!(a.headers.get(name), Some(value));
        let a = client.send(http::Method::GET, "/other", None).await.unwrap();
        assert_eq!(a.headers.get(reading.age.as_ref().unwrap()).unwrap(), "42");
    }
}
