//! A closed-loop load generator over loopback: `workers` clients share a target rate; every request is
//! recorded with its start time, latency and outcome.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chaos_core::SloGuard;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::{Instant, MissedTickBehavior};

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

/// Drives `addr` until `stop` is set, feeding every answer to the SLO `guard`; returns the recorder.
pub fn start(
    addr: SocketAddr,
    rps: u32,
    workers: u32,
    epoch: Instant,
    guard: SloGuard,
) -> (Arc<Recorder>, tokio::sync::watch::Sender<bool>) {
    let recorder = Arc::new(Recorder::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let period = Duration::from_secs_f64(f64::from(workers) / f64::from(rps));
    for worker in 0..workers {
        let (client, recorder, stop, guard) = (client.clone(), recorder.clone(), stop_rx.clone(), guard.clone());
        let uri: http::Uri = format!("http://{addr}/quote/SYM{}", worker % 8).parse().expect("valid uri");
        // Workers start spread over one period, so requests arrive evenly rather than in bursts.
        let offset = period.mul_f64(f64::from(worker) / f64::from(workers));
        tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            while !*stop.borrow() {
                tick.tick().await;
                let start = Instant::now();
                let outcome = async {
                    let response = client.get(uri.clone()).await.ok()?;
                    let fallback = response.headers().contains_key("x-served-from");
                    let ok = response.status().is_success();
                    response.into_body().collect().await.ok()?;
                    Some((ok, fallback))
                }
                .await;
                let (ok, fallback) = outcome.unwrap_or((false, false));
                let sample = Sample { at: start - epoch, latency: start.elapsed(), ok, fallback };
                guard.record(sample.latency, ok);
                recorder.samples.lock().expect("recorder lock").push(sample);
            }
        });
    }
    (recorder, stop_tx)
}
