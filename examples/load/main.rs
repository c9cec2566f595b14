//! The load harness from the command line: an order burst against a demo order service (in-process, or over
//! loopback HTTP), or against any URL; SLO assertions and baseline comparison for CI.
//!
//! ```text
//! cargo run --release --example load -- [--url URL | --loopback] [--clients N | --rate R]
//!     [--requests N] [--duration 10s] [--warmup 1s] [--work 2ms] [--chaos configs/chaos/order-burst.yaml]
//!     [--slo 'p95<150ms,errors<0.5%,rps>=100'] [--baseline FILE] [--tolerance 10%] [--error-tolerance 0.1%]
//!     [--json] [--out FILE]
//! ```
//!
//! The default is the order burst teams run against trading services: 50 concurrent clients sending 10,000
//! orders (`POST /orders` with a small JSON body) to a demo order service driven in-process, each order taking
//! `--work` (default 2 ms) of simulated matching. `--loopback` serves the same demo on 127.0.0.1 and drives it
//! over real HTTP; `--url` drives any server. `--rate` switches to the open loop (latency from the intended
//! send time). `--chaos FILE` puts chaos-tower's `HttpChaosLayer`, armed from a chaos config, in front of the
//! demo service: the SLO must then hold while faults are injected.
//!
//! Exit status: 0 when every SLO clause holds and nothing regressed against the baseline, 1 on a breach or a
//! regression (each printed on its own line), 2 on a usage error (a bad flag, SLO, URL or baseline file), 130
//! when interrupted (Ctrl-C, SIGINT: 128 + the signal's number, the shell's convention, as the GameDay's).
//!
//! The command line is clap's: `--help` lists every option, `--version`, `--opt=value`, typo suggestions;
//! usage errors go to standard error. No colour is ever printed (clap is built without its `color` feature).
//!
//! On Ctrl-C the run stops and prints the summary of what was measured so far (the same table, or JSON with
//! `--json`), after `load: interrupted`; no verdict is given and `--out` is not written (a partial run is no
//! baseline). That summary is kept beside the harness, which returns its own only at the end: each request's
//! latency runs from its creation (the closed loop's send; the open loop's slot, unless sends lag) to its
//! answer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use brownout_gameday::progress;
use brownout_tower::ChaosHandle;
use brownout_tower::load::{self, LoadPlan, LoadResult, PlanSummary, Slo, Tolerance};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Request;
use http_body_util::Full;
use tokio::time::Instant;

/// The order burst: 10,000 orders from 50 clients.
const DEFAULT_CLIENTS: u32 = 50;
const DEFAULT_REQUESTS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq)]
enum Target {
    InProcess,
    Loopback,
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Args {
    target: Target,
    /// The method of every request: `POST` sends an order, `GET` and the others an empty body.
    method: http::Method,
    plan: LoadPlan,
    work: Duration,
    chaos: Option<PathBuf>,
    slo: Option<Slo>,
    baseline: Option<PathBuf>,
    tolerance: Tolerance,
    json: bool,
    out: Option<PathBuf>,
}

/// Drive an order burst (POST /orders) against the demo order service, in-process (default) or over loopback
/// HTTP, or against any URL; check SLOs and compare with a baseline.
///
/// Exit status: 0 every SLO clause holds and nothing regressed, 1 a breach or a regression, 2 usage error, 130
/// interrupted (Ctrl-C: the summary of what was measured so far is printed).
#[derive(Debug, clap::Parser)]
#[command(name = "load", version)]
struct Cli {
    /// Drive this URL (any server, `http://host:port/path`) instead of the in-process demo.
    #[arg(long, value_name = "URL", conflicts_with = "loopback")]
    url: Option<String>,
    /// Serve the demo service on 127.0.0.1 and drive it over real HTTP.
    #[arg(long)]
    loopback: bool,
    /// The request method: `POST` sends an order as JSON; `GET`, `HEAD` and the others send no body (for
    /// `--url` at a read endpoint).
    #[arg(long, value_name = "METHOD", default_value = "POST", value_parser = method)]
    method: http::Method,
    /// Closed loop: this many concurrent clients [default: 50].
    #[arg(long, value_name = "N", value_parser = count, conflicts_with = "rate")]
    clients: Option<u32>,
    /// Open loop: this many requests per second (latency from the intended send time).
    #[arg(long, value_name = "R", value_parser = rate)]
    rate: Option<f64>,
    /// Measured requests to send [default: 10000 unless --duration].
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
    /// Run this long after the warm-up (`10s`, `1m`).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    duration: Option<Duration>,
    /// Send unmeasured requests this long first.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0s")]
    warmup: Duration,
    /// The demo service's simulated matching time per order.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "2ms")]
    work: Duration,
    /// Put chaos-tower's HttpChaosLayer, armed from this chaos config, in front of the demo service (not with
    /// --url).
    #[arg(long, value_name = "FILE")]
    chaos: Option<PathBuf>,
    /// The SLO to check, clauses separated by commas: `p95<150ms,errors<0.5%,rps>=100`.
    #[arg(long, value_name = "EXPR", value_parser = slo)]
    slo: Option<Slo>,
    /// Compare with this earlier result (a `--out` or `--json` file).
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// How much worse than the baseline p95 and throughput may be (`10%` or `0.1`).
    #[arg(long, value_name = "FRACTION", value_parser = fraction, default_value = "10%")]
    tolerance: f64,
    /// How much higher than the baseline's the error rate may be, absolute (`0.1%` or `0.001`).
    #[arg(long, value_name = "FRACTION", value_parser = fraction, default_value = "0.1%")]
    error_tolerance: f64,
    /// Print the result as JSON on standard output (the table goes to standard error).
    #[arg(long)]
    json: bool,
    /// Also write the result as JSON to this file (a baseline for later runs).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// An HTTP method, upper case as sent (`GET`, `POST`, …).
fn method(text: &str) -> Result<http::Method, String> {
    let upper = text.to_ascii_uppercase();
    http::Method::from_bytes(upper.as_bytes()).map_err(|_| format!("`{text}` is not an HTTP method"))
}

/// `10%` or `0.1`, as a fraction in `[0, 1]`.
fn fraction(text: &str) -> Result<f64, String> {
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    value.ok().filter(|v| (0.0..=1.0).contains(v)).ok_or_else(|| "takes a percentage or a fraction in [0, 1]".into())
}

fn count(text: &str) -> Result<u32, String> {
    text.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| "takes a count of at least 1".into())
}

fn rate(text: &str) -> Result<f64, String> {
    let r = text.parse::<f64>().ok().filter(|r| r.is_finite() && *r > 0.0);
    r.ok_or_else(|| "takes requests per second (a positive number)".into())
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("takes a duration such as 10s: {e}"))
}

fn slo(text: &str) -> Result<Slo, String> {
    text.parse::<Slo>().map_err(|e| e.to_string())
}

/// The command line, checked: clap's errors (and `--help`, `--version`) as they are, and what clap cannot say
/// by itself as clap errors too (exit status 2).
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, clap::Error> {
    use clap::{CommandFactory, Parser};
    let cli = Cli::try_parse_from(std::iter::once("load".to_owned()).chain(args))?;
    let usage = |kind, msg: String| Cli::command().error(kind, msg);
    let target = match (cli.url, cli.loopback) {
        (Some(url), _) => Target::Url(url),
        (None, true) => Target::Loopback,
        (None, false) => Target::InProcess,
    };
    if cli.chaos.is_some() && matches!(target, Target::Url(_)) {
        return Err(usage(
            clap::error::ErrorKind::ArgumentConflict,
            "--chaos injects into the demo service; it cannot reach a server behind --url".into(),
        ));
    }
    let mut plan = match cli.rate {
        Some(rate) => LoadPlan::open(rate),
        None => LoadPlan::closed(cli.clients.unwrap_or(DEFAULT_CLIENTS)),
    };
    plan.requests = cli.requests;
    plan.duration = cli.duration;
    if cli.requests.is_none() && cli.duration.is_none() {
        plan.requests = Some(DEFAULT_REQUESTS);
    }
    plan.warmup = cli.warmup;
    plan.validate().map_err(|e| usage(clap::error::ErrorKind::ValueValidation, e.to_string()))?;
    Ok(Args {
        target,
        method: cli.method,
        plan,
        work: cli.work,
        chaos: cli.chaos,
        slo: cli.slo,
        baseline: cli.baseline,
        tolerance: Tolerance::new(cli.tolerance, cli.error_tolerance),
        json: cli.json,
        out: cli.out,
    })
}

/// When a request was created (stamped by [`order_request`]): where [`Tally`] measures its latency from.
#[derive(Debug, Clone, Copy)]
struct Sent(Instant);

/// What was measured so far, kept beside the harness (whose own recorder is returned only at the end of the
/// run), for the summary on Ctrl-C.
#[derive(Clone)]
struct Tally(Arc<Mutex<SoFar>>);

struct SoFar {
    measure_start: Instant,
    target: Option<String>,
    histogram: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
    errors: u64,
    last: Option<Instant>,
}

impl Tally {
    /// Measures the answers to requests created from `warmup` on.
    fn new(warmup: Duration) -> Self {
        Tally(Arc::new(Mutex::new(SoFar {
            measure_start: Instant::now() + warmup,
            target: None,
            histogram: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds"),
            statuses: BTreeMap::new(),
            errors: 0,
            last: None,
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SoFar> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An answer (`None`: no answer, a transport error) to a request created at `sent`.
    fn record(&self, sent: Instant, status: Option<StatusCode>) {
        let now = Instant::now();
        let mut so_far = self.lock();
        if sent < so_far.measure_start {
            return;
        }
        let nanos = u64::try_from(now.saturating_duration_since(sent).as_nanos()).unwrap_or(u64::MAX);
        so_far.histogram.saturating_record(nanos);
        let label = status.map_or_else(|| "transport".to_owned(), |s| s.as_u16().to_string());
        *so_far.statuses.entry(label).or_default() += 1;
        so_far.errors += u64::from(status.is_none_or(|s| s.as_u16() >= 400));
        so_far.last = Some(now);
    }

    /// The result of the run so far, as the harness would report it.
    fn result(&self, plan: &LoadPlan) -> LoadResult {
        let so_far = self.lock();
        let duration = so_far.last.map_or(Duration::ZERO, |last| last.saturating_duration_since(so_far.measure_start));
        let mut summary = PlanSummary::of(plan);
        summary.target = so_far.target.clone();
        LoadResult::from_histogram(summary, so_far.histogram.clone(), so_far.errors, so_far.statuses.clone(), duration)
    }

    /// The status line of a run in progress: answers, errors and throughput so far.
    fn status(&self, now: Instant) -> String {
        let so_far = self.lock();
        if now < so_far.measure_start {
            return format!("load · warming up · {:.1} s to go", (so_far.measure_start - now).as_secs_f64());
        }
        let (answered, elapsed) = (so_far.histogram.len(), now.saturating_duration_since(so_far.measure_start));
        let rps = if elapsed.is_zero() { 0.0 } else { answered as f64 / elapsed.as_secs_f64() };
        format!(
            "load · {answered} answered · {} errors · {rps:.0} req/s · {:.1} s · Ctrl-C for the summary so far",
            so_far.errors,
            elapsed.as_secs_f64()
        )
    }

    /// `svc`, its answers counted here.
    fn wrap<S>(&self, svc: S) -> Tallied<S> {
        Tallied { inner: svc, tally: self.clone() }
    }
}

/// A service whose answers a [`Tally`] counts.
#[derive(Clone)]
struct Tallied<S> {
    inner: S,
    tally: Tally,
}

impl<S, B, R> tower::Service<Request<B>> for Tallied<S>
where
    S: tower::Service<Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let sent = request.extensions().get::<Sent>().map_or_else(Instant::now, |s| s.0);
        let (answer, tally) = (self.inner.call(request), self.tally.clone());
        Box::pin(async move {
            let result = answer.await;
            tally.record(sent, result.as_ref().ok().map(|r| r.status()));
            result
        })
    }
}

/// An order as the demo service takes it.
#[derive(Debug, serde::Deserialize)]
struct Order {
    #[allow(dead_code)]
    id: u64,
    symbol: String,
    side: String,
    qty: u32,
    #[allow(dead_code)]
    price: f64,
}

/// The demo order service: `POST /orders` with an order; `201` after `work` of simulated matching, `422` for
/// a malformed order; behind a chaos layer armed from `chaos` when given.
fn demo_service(work: Duration, chaos: Option<&PathBuf>) -> Result<Router, String> {
    let app = order_service(work);
    Ok(match chaos {
        None => app,
        Some(path) => app.layer(ChaosHandle::from_path(path).map_err(|e| e.to_string())?.http_layer()),
    })
}

fn order_service(work: Duration) -> Router {
    Router::new().route(
        "/orders",
        post(move |body: Bytes| async move {
            let order: Order = match serde_json::from_slice(&body) {
                Ok(order) => order,
                Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
            };
            if order.qty == 0 || order.symbol.is_empty() || !matches!(order.side.as_str(), "buy" | "sell") {
                return (StatusCode::UNPROCESSABLE_ENTITY, "bad order".to_owned());
            }
            if !work.is_zero() {
                tokio::time::sleep(work).await; // (a zero sleep would still wait for the timer's 1 ms tick)
            }
            (StatusCode::CREATED, format!(r#"{{"accepted":true,"symbol":"{}"}}"#, order.symbol))
        }),
    )
}

/// The i-th order of the burst: eight symbols, alternating sides.
fn order_body(i: u64) -> Bytes {
    let symbol = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AVGO"][(i % 8) as usize];
    let side = if i.is_multiple_of(2) { "buy" } else { "sell" };
    let price = 100.0 + (i % 100) as f64 / 100.0;
    Bytes::from(format!(r#"{{"id":{i},"symbol":"{symbol}","side":"{side}","qty":{},"price":{price}}}"#, 1 + i % 10))
}

fn order_request(i: u64, uri: &http::Uri) -> Request<Full<Bytes>> {
    request(i, &http::Method::POST, uri)
}

/// The i-th request: an order for `POST`, no body for any other method.
fn request(i: u64, method: &http::Method, uri: &http::Uri) -> Request<Full<Bytes>> {
    let builder = Request::builder().method(method.clone()).uri(uri.clone());
    let mut request = if method == http::Method::POST {
        builder.header(http::header::CONTENT_TYPE, "application/json").body(Full::new(order_body(i)))
    } else {
        builder.body(Full::new(Bytes::new()))
    }
    .expect("a valid request");
    request.extensions_mut().insert(Sent(Instant::now()));
    request
}

/// Runs the load; `tally` counts the answers as they come (for the summary on Ctrl-C).
async fn run(args: &Args, tally: &Tally) -> Result<LoadResult, String> {
    match &args.target {
        Target::InProcess => {
            let uri = http::Uri::from_static("/orders");
            let svc = tally.wrap(demo_service(args.work, args.chaos.as_ref())?);
            let target = "in-process demo order service (POST /orders)";
            tally.lock().target = Some(target.into());
            let mut result = load::run(&args.plan, svc, move |i| order_request(i, &uri), load::classify_http)
                .await
                .map_err(|e| e.to_string())?;
            result.plan.target = Some(target.into());
            Ok(result)
        }
        Target::Loopback => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let app = demo_service(args.work, args.chaos.as_ref())?;
            tokio::spawn(async move { axum::serve(listener, app).await });
            run_url(args, &format!("http://{addr}/orders"), tally).await
        }
        Target::Url(url) => run_url(args, url, tally).await,
    }
}

/// `load::run_url`, its answers counted by `tally` too.
async fn run_url(args: &Args, url: &str, tally: &Tally) -> Result<LoadResult, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL `{url}`: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!("bad URL `{url}`: expected http://HOST[:PORT]/PATH (plain HTTP only)"));
    }
    tally.lock().target = Some(url.to_owned());
    let svc = tally.wrap(load::HttpTarget::new());
    let method = args.method.clone();
    let mut result = load::run(&args.plan, svc, move |i| request(i, &method, &uri), load::classify_http)
        .await
        .map_err(|e| e.to_string())?;
    result.plan.target = Some(url.to_owned());
    Ok(result)
}

/// The verdict lines and whether the run passed.
fn judge(args: &Args, result: &LoadResult, baseline: Option<&LoadResult>) -> (Vec<String>, bool) {
    let (mut lines, mut passed) = (Vec::new(), true);
    if let Some(slo) = &args.slo {
        let check = slo.check(result);
        passed &= check.passed();
        lines.extend(check.checks.iter().map(ToString::to_string));
    }
    if let Some(baseline) = baseline {
        let regressions = load::compare(baseline, result, args.tolerance);
        passed &= regressions.is_empty();
        if regressions.is_empty() {
            lines.push(format!(
                "baseline ok: p95 {:.3}ms (was {:.3}ms), errors {:.3}% (was {:.3}%), {:.1} req/s (was {:.1})",
                result.latency_ms.p95,
                baseline.latency_ms.p95,
                result.error_rate * 100.0,
                baseline.error_rate * 100.0,
                result.throughput_rps,
                baseline.throughput_rps
            ));
        }
        lines.extend(regressions.iter().map(ToString::to_string));
    }
    (lines, passed)
}

#[tokio::main]
async fn main() -> ExitCode {
    // clap's errors exit 2 on standard error; `--help` and `--version` exit 0 on standard output.
    let args = parse_args(std::env::args().skip(1)).unwrap_or_else(|e| e.exit());
    // Read the baseline before the run, so a bad file fails fast.
    let baseline = match &args.baseline {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| LoadResult::from_json(&text).map_err(|e| format!("not a load result: {e}")))
        {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("load: --baseline {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let tally = Tally::new(args.plan.warmup);
    // On a terminal a status line shows the run's progress (standard error; never in a pipe or a file).
    let ticker = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let tally = tally.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            loop {
                every.tick().await;
                progress::show_status(&tally.status(Instant::now()));
            }
        })
    });
    let stop_ticker = || {
        if let Some(ticker) = &ticker {
            ticker.abort();
            progress::clear_status();
        }
    };
    let result = tokio::select! {
        result = run(&args, &tally) => match result {
            Ok(result) => {
                stop_ticker();
                result
            }
            Err(e) => {
                stop_ticker();
                eprintln!("load: {e}");
                return ExitCode::from(2);
            }
        },
        _ = tokio::signal::ctrl_c() => {
            stop_ticker();
            let so_far = tally.result(&args.plan);
            eprintln!("load: interrupted: the summary of what was measured so far (no verdict, no --out)");
            if args.json {
                println!("{}", so_far.to_json());
                eprint!("{so_far}");
            } else {
                print!("{so_far}");
            }
            return ExitCode::from(130);
        }
    };
    if result.requests > 0 && result.status_counts.get("transport") == Some(&result.requests) {
        eprintln!("load: warning: no answer at all from the target: every request failed to connect or timed out");
    }
    let (lines, passed) = judge(&args, &result, baseline.as_ref());
    if args.json {
        println!("{}", result.to_json());
        eprint!("{result}");
        lines.iter().for_each(|l| eprintln!("{l}"));
    } else {
        print!("{result}");
        lines.iter().for_each(|l| println!("{l}"));
    }
    if let Some(out) = &args.out
        && let Err(e) = std::fs::write(out, result.to_json() + "\n")
    {
        eprintln!("load: --out {}: {e}", out.display());
        return ExitCode::from(2);
    }
    if passed { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brownout_tower::load::LoadMode;

    fn parse(line: &str) -> Result<Args, String> {
        parse_args(line.split_whitespace().map(str::to_owned)).map_err(|e| e.to_string())
    }

    async fn run(args: &Args) -> Result<LoadResult, String> {
        super::run(args, &Tally::new(args.plan.warmup)).await
    }

    #[test]
    fn the_default_is_the_order_burst() {
        let args = parse("").unwrap();
        assert_eq!(args.plan, LoadPlan::closed(50).requests(10_000));
        assert_eq!((args.target, args.json, args.tolerance), (Target::InProcess, false, Tolerance::default()));
    }

    #[test]
    fn flags_are_read() {
        let args = parse(
            "--url http://127.0.0.1:8080/orders --rate 500 --duration 10s --warmup 1s --slo p95<150ms,errors<0.5%,rps>=100 \
             --baseline base.json --tolerance 5% --error-tolerance 0.002 --json --out r.json",
        )
        .unwrap();
        assert_eq!(args.target, Target::Url("http://127.0.0.1:8080/orders".into()));
        assert_eq!(args.plan.mode, LoadMode::Open { rate_per_sec: 500.0, max_in_flight: 10_000 });
        assert_eq!((args.plan.requests, args.plan.duration), (None, Some(Duration::from_secs(10))));
        assert_eq!(args.plan.warmup, Duration::from_secs(1));
        assert_eq!(args.slo.unwrap().to_string(), "p95<150ms,errors<0.5%,rps>=100");
        assert_eq!(args.tolerance, Tolerance::new(0.05, 0.002));
        assert!(args.json && args.out.is_some() && args.baseline.is_some());
        assert_eq!(args.method, http::Method::POST, "an order burst by default");
        assert_eq!(parse("--url http://x/quote --method get").unwrap().method, http::Method::GET);
    }

    /// The status line says how far the run is: warming up, then answers, errors and throughput.
    #[test]
    fn the_status_line_counts_the_answers() {
        let tally = Tally::new(Duration::from_secs(2));
        let start = Instant::now();
        assert!(tally.status(start).starts_with("load · warming up · 2.0 s to go"), "{}", tally.status(start));
        let measured = start + Duration::from_secs(2);
        tally.record(measured, Some(StatusCode::OK));
        tally.record(measured, Some(StatusCode::SERVICE_UNAVAILABLE));
        tally.record(measured, None);
        let line = tally.status(measured + Duration::from_secs(1));
        assert!(line.starts_with("load · 3 answered · 2 errors · 3 req/s · 1.0 s"), "{line}");
    }

    /// `--method GET` sends no body; `POST` sends the order.
    #[test]
    fn the_method_chooses_the_body() {
        let uri = http::Uri::from_static("http://x/quote");
        let get = request(3, &http::Method::GET, &uri);
        assert_eq!((get.method(), http_body::Body::size_hint(get.body()).exact()), (&http::Method::GET, Some(0)));
        let post = request(3, &http::Method::POST, &uri);
        assert_eq!(post.headers()[http::header::CONTENT_TYPE], "application/json");
        assert!(http_body::Body::size_hint(post.body()).exact().unwrap() > 0);
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (line, says) in [
            ("--clients 0", "invalid value '0' for '--clients <N>': takes a count"),
            ("--clients 4 --rate 10", "'--clients <N>' cannot be used with '--rate <R>'"),
            ("--url http://x/ --loopback", "'--url <URL>' cannot be used with '--loopback'"),
            ("--rate fast", "invalid value 'fast' for '--rate <R>': takes requests per second"),
            ("--duration soon", "invalid value 'soon' for '--duration <DURATION>': takes a duration such as 10s"),
            ("--slo p95<150", "for '--slo <EXPR>': SLO clause `p95<150`: latency `150` needs a unit"),
            ("--tolerance 150%", "invalid value '150%' for '--tolerance <FRACTION>': takes a percentage"),
            ("--requests", "a value is required for '--requests <N>'"),
            ("--frobnicate", "unexpected argument '--frobnicate'"),
            ("--slp p95<1ms", "tip: a similar argument exists: '--slo'"),
            ("--json=yes", "unexpected value 'yes' for '--json'"),
            ("--method G(T", "invalid value 'G(T' for '--method <METHOD>': `G(T` is not an HTTP method"),
            ("--url http://x/ --chaos c.yaml", "cannot reach a server behind --url"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }

    #[test]
    fn options_take_equals_and_help_and_version_are_not_errors() {
        let args = parse("--clients=8 --requests=100 --work=0s --tolerance=5%").unwrap();
        assert_eq!((args.plan, args.work), (LoadPlan::closed(8).requests(100), Duration::ZERO));
        assert_eq!(args.tolerance.relative, 0.05);
        let help = parse_args(["--help".to_owned()]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert_eq!(help.exit_code(), 0);
        let text = help.to_string();
        for option in [
            "--url",
            "--loopback",
            "--clients",
            "--rate",
            "--requests",
            "--duration",
            "--warmup",
            "--work",
            "--chaos",
            "--slo",
            "--baseline",
            "--tolerance",
            "--error-tolerance",
            "--json",
            "--out",
            "--version",
            "130",
        ] {
            assert!(text.contains(option), "--help does not mention {option}:\n{text}");
        }
        let version = parse_args(["--version".to_owned()]).unwrap_err();
        assert_eq!((version.kind(), version.exit_code()), (clap::error::ErrorKind::DisplayVersion, 0));
        let usage = parse_args(["--frobnicate".to_owned()]).unwrap_err();
        assert_eq!(usage.exit_code(), 2, "usage errors exit 2");
    }

    /// The tally behind the summary on Ctrl-C counts what the harness counts.
    #[tokio::test(start_paused = true)]
    async fn the_tally_counts_what_the_harness_counts() {
        let args = parse("--clients 10 --requests 500 --warmup 100ms --chaos ../configs/chaos/order-burst.yaml");
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/chaos/order-burst.yaml");
        let args = args.map(|a| Args { chaos: Some(config.into()), ..a }).unwrap();
        let tally = Tally::new(args.plan.warmup);
        let result = super::run(&args, &tally).await.unwrap();
        let so_far = tally.result(&args.plan);
        assert_eq!((so_far.requests, so_far.errors), (result.requests, result.errors), "{so_far}\n{result}");
        assert_eq!(so_far.status_counts, result.status_counts);
        assert_eq!(so_far.plan, result.plan);
        assert!((so_far.latency_ms.p50 - result.latency_ms.p50).abs() < 0.1, "{so_far}\n{result}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_demo_service_takes_orders_and_refuses_bad_ones() {
        let args = parse("--clients 4 --requests 200 --slo p99<10ms,errors<=0%").unwrap();
        let result = run(&args).await.unwrap();
        assert_eq!((result.requests, result.status_counts["201"]), (200, 200));
        let (lines, passed) = judge(&args, &result, None);
        assert!(passed, "{lines:?}");

        let bad = order_service(Duration::ZERO);
        let r = load::run(
            &LoadPlan::closed(1).requests(3),
            bad,
            |_| Request::post("/orders").body(Full::new(Bytes::from_static(b"{\"qty\":0}"))).unwrap(),
            load::classify_http,
        )
        .await
        .unwrap();
        assert_eq!(r.status_counts["422"], 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_slo_holds_or_breaks_while_chaos_is_injected() {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/chaos/order-burst.yaml");
        let args =
            parse(&format!("--clients 10 --requests 1000 --chaos {config} --slo p95<150ms,errors<0.5%")).unwrap();
        let result = run(&args).await.unwrap();
        // Exact sampling: 1% of 1,000 orders are 503s, ±1.
        assert!((9..=11).contains(&result.status_counts["503"]), "{result}");
        let (lines, passed) = judge(&args, &result, None);
        assert!(!passed);
        assert!(lines[0].starts_with("SLO ok: p95<150ms"), "{lines:?}");
        assert!(lines[1].starts_with("SLO BREACHED: errors<0.5% (actual "), "{lines:?}");
        assert!(parse("--chaos no/such.yaml").map(|a| demo_service(a.work, a.chaos.as_ref())).unwrap().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_regression_or_a_breach_fails_the_run_with_its_line() {
        let args = parse("--clients 4 --requests 200 --slo p95<1ms --tolerance 10%").unwrap();
        let result = run(&args).await.unwrap();
        let mut baseline = result.clone();
        baseline.latency_ms.p95 /= 2.0;
        let (lines, passed) = judge(&args, &result, Some(&baseline));
        assert!(!passed);
        assert!(lines[0].starts_with("SLO BREACHED: p95<1ms (actual 2."), "{lines:?}");
        assert!(lines[1].starts_with("REGRESSION p95: "), "{lines:?}");
    }
}
