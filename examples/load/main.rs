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
//! regression (each printed on its own line), 2 on a usage error (a bad flag, SLO, URL or baseline file).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use chaos_tower::ChaosHandle;
use chaos_tower::load::{self, LoadPlan, LoadResult, Slo, Tolerance};
use http::Request;
use http_body_util::Full;

/// The order burst: 10,000 orders from 50 clients.
const DEFAULT_CLIENTS: u32 = 50;
const DEFAULT_REQUESTS: u64 = 10_000;
const DEFAULT_WORK: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, PartialEq)]
enum Target {
    InProcess,
    Loopback,
    Url(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Args {
    target: Target,
    plan: LoadPlan,
    work: Duration,
    chaos: Option<PathBuf>,
    slo: Option<Slo>,
    baseline: Option<PathBuf>,
    tolerance: Tolerance,
    json: bool,
    out: Option<PathBuf>,
}

const USAGE: &str = "usage: load [--url URL | --loopback] [--clients N | --rate R] [--requests N] [--duration 10s] \
[--warmup 1s] [--work 2ms] [--chaos FILE] [--slo EXPR] [--baseline FILE] [--tolerance 10%] [--error-tolerance 0.1%] [--json] [--out FILE]";

/// `10%` or `0.1`, as a fraction in `[0, 1]`.
fn fraction(flag: &str, text: &str) -> Result<f64, String> {
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    value
        .ok()
        .filter(|v| (0.0..=1.0).contains(v))
        .ok_or(format!("{flag} takes a percentage or a fraction, not `{text}`"))
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let (mut clients, mut rate, mut requests, mut duration, mut warmup) = (None, None, None, None, Duration::ZERO);
    let mut parsed = Args {
        target: Target::InProcess,
        plan: LoadPlan::closed(DEFAULT_CLIENTS),
        work: DEFAULT_WORK,
        chaos: None,
        slo: None,
        baseline: None,
        tolerance: Tolerance::default(),
        json: false,
        out: None,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let time = |flag: &str, text: String| {
            humantime::parse_duration(&text).map_err(|e| format!("{flag} takes a duration such as 10s: `{text}`: {e}"))
        };
        match arg.as_str() {
            "--url" => parsed.target = Target::Url(value("--url")?),
            "--loopback" => parsed.target = Target::Loopback,
            "--clients" => {
                let text = value("--clients")?;
                clients = Some(
                    text.parse::<u32>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(format!("--clients takes a count, not `{text}`"))?,
                );
            }
            "--rate" => {
                let text = value("--rate")?;
                let r = text.parse::<f64>().ok().filter(|r| r.is_finite() && *r > 0.0);
                rate = Some(r.ok_or(format!("--rate takes requests per second, not `{text}`"))?);
            }
            "--requests" => {
                let text = value("--requests")?;
                requests = Some(text.parse::<u64>().map_err(|_| format!("--requests takes a count, not `{text}`"))?);
            }
            "--duration" => duration = Some(time("--duration", value("--duration")?)?),
            "--warmup" => warmup = time("--warmup", value("--warmup")?)?,
            "--work" => parsed.work = time("--work", value("--work")?)?,
            "--chaos" => parsed.chaos = Some(value("--chaos")?.into()),
            "--slo" => parsed.slo = Some(value("--slo")?.parse().map_err(|e| format!("--slo: {e}"))?),
            "--baseline" => parsed.baseline = Some(value("--baseline")?.into()),
            "--tolerance" => parsed.tolerance.relative = fraction("--tolerance", &value("--tolerance")?)?,
            "--error-tolerance" => {
                parsed.tolerance.error_rate_abs = fraction("--error-tolerance", &value("--error-tolerance")?)?
            }
            "--json" => parsed.json = true,
            "--out" => parsed.out = Some(value("--out")?.into()),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let mut plan = match (clients, rate) {
        (Some(_), Some(_)) => return Err("--clients (closed loop) and --rate (open loop) exclude each other".into()),
        (_, Some(rate)) => LoadPlan::open(rate),
        (clients, None) => LoadPlan::closed(clients.unwrap_or(DEFAULT_CLIENTS)),
    };
    plan.requests = requests;
    plan.duration = duration;
    if requests.is_none() && duration.is_none() {
        plan.requests = Some(DEFAULT_REQUESTS);
    }
    plan.warmup = warmup;
    plan.validate().map_err(|e| e.to_string())?;
    if parsed.chaos.is_some() && matches!(parsed.target, Target::Url(_)) {
        return Err("--chaos injects into the demo service; it cannot reach a server behind --url".into());
    }
    parsed.plan = plan;
    Ok(parsed)
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
    Request::post(uri.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(order_body(i)))
        .expect("a valid request")
}

async fn run(args: &Args) -> Result<LoadResult, String> {
    match &args.target {
        Target::InProcess => {
            let uri = http::Uri::from_static("/orders");
            let svc = demo_service(args.work, args.chaos.as_ref())?;
            let mut result = load::run(&args.plan, svc, move |i| order_request(i, &uri), load::classify_http)
                .await
                .map_err(|e| e.to_string())?;
            result.plan.target = Some("in-process demo order service (POST /orders)".into());
            Ok(result)
        }
        Target::Loopback => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let app = demo_service(args.work, args.chaos.as_ref())?;
            tokio::spawn(async move { axum::serve(listener, app).await });
            load::run_url(&args.plan, &format!("http://{addr}/orders"), order_request).await.map_err(|e| e.to_string())
        }
        Target::Url(url) => load::run_url(&args.plan, url, order_request).await.map_err(|e| e.to_string()),
    }
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
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
        }
    };
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
    let result = match run(&args).await {
        Ok(result) => result,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::from(2);
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
    use chaos_tower::load::LoadMode;

    fn parse(line: &str) -> Result<Args, String> {
        parse_args(line.split_whitespace().map(str::to_owned))
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
        assert_eq!(args.tolerance, Tolerance { relative: 0.05, error_rate_abs: 0.002 });
        assert!(args.json && args.out.is_some() && args.baseline.is_some());
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (line, says) in [
            ("--clients 0", "--clients takes a count"),
            ("--clients 4 --rate 10", "exclude each other"),
            ("--rate fast", "--rate takes"),
            ("--duration soon", "--duration takes a duration"),
            ("--slo p95<150", "--slo: SLO clause `p95<150`: latency `150` needs a unit"),
            ("--tolerance 150%", "--tolerance takes"),
            ("--requests", "--requests needs a value"),
            ("--frobnicate", "unknown argument `--frobnicate`"),
            ("--url http://x/ --chaos c.yaml", "cannot reach a server behind --url"),
        ] {
            let e = parse(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
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
