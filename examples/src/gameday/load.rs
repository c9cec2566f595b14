//! The GameDay's load over loopback: chaos-tower's load harness sends requests at a target rate; every request
//! is recorded with its start time, latency and outcome.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chaos_core::SloGuard;
use chaos_tower::load::{self, LoadMode, LoadPlan, Outcome};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// One user request as the load generator saw it.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Offset of the request's start from the start of the run.
    pub at: Duration,
    pub latency: Duration,
    /// A 200 answer with its full body.
    pub ok: bool,
    /// Served from the cache (the fallback).
    pub fallback: bool,
}

/// The shared record of a run.
#[derive(Debug, Default)]
pub struct Recorder {
    samples: Mutex<Vec<Sample>>,
}

impl Recorder {
    /// Samples whose start lies in `[from, to)`.
    pub fn between(&self, from: Duration, to: Duration) -> Vec<Sample> {
        let samples = self.samples.lock().expect("recorder lock");
        samples.iter().filter(|s| s.at >= from && s.at < to).copied().collect()
    }
}

/// Drives `addr` until `stop` is set, with chaos-tower's load harness in an open loop at `rps` (at most
/// `workers` requests in flight), feeding every answer to the SLO `guard`; returns the recorder.
///
/// The harness schedules the sends; each request's own sample (its start, latency, outcome, and whether the
/// fallback answered) is recorded by the client service it drives, as the GameDay charts it over time.
pub fn start(
    addr: SocketAddr,
    rps: u32,
    workers: u32,
    epoch: Instant,
    guard: SloGuard,
) -> (Arc<Recorder>, tokio::sync::watch::Sender<bool>) {
    let recorder = Arc::new(Recorder::default());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let samples = recorder.clone();
    let user = tower::service_fn(move |uri: http::Uri| {
        let (client, samples, guard) = (client.clone(), samples.clone(), guard.clone());
        async move {
            let start = Instant::now();
            let outcome = async {
                let response = client.get(uri).await.ok()?;
                let fallback = response.headers().contains_key("x-served-from");
                let ok = response.status().is_success();
                response.into_body().collect().await.ok()?;
                Some((ok, fallback))
            }
            .await;
            let (ok, fallback) = outcome.unwrap_or((false, false));
            let sample = Sample { at: start - epoch, latency: start.elapsed(), ok, fallback };
            guard.record(sample.latency, ok);
            samples.samples.lock().expect("recorder lock").push(sample);
            Ok::<bool, Infallible>(ok)
        }
    });
    let uris: Arc<[http::Uri]> =
        (0..8).map(|i| format!("http://{addr}/quote/SYM{i}").parse().expect("valid uri")).collect();
    // The run ends when `stop` is set (the task is aborted); its duration is only a bound.
    let plan = LoadPlan {
        mode: LoadMode::Open { rate_per_sec: f64::from(rps.max(1)), max_in_flight: workers.max(1) },
        requests: None,
        duration: Some(Duration::from_secs(7 * 24 * 3600)),
        warmup: Duration::ZERO,
    };
    let run = tokio::spawn(async move {
        let make = move |i: u64| uris[(i % 8) as usize].clone();
        load::run(&plan, user, make, |r: Result<&bool, &Infallible>| Outcome::from_ok(matches!(r, Ok(true)))).await
    });
    tokio::spawn(async move {
        // Set, or its sender dropped: either way the run is over.
        let _ = stop_rx.wait_for(|stop| *stop).await;
        run.abort();
    });
    (recorder, stop_tx)
}
