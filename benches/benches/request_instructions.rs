//! Instructions per request for `brownout_tower::CostLayer` (each request a cost-meter job) over a trivial HTTP
//! service, counted by callgrind: the per-request bookkeeping of the cost meter, repeatable on a noisy
//! machine. A real Prometheus recorder is installed (the counters' registry is what a job's end updates) and
//! cost-meter's allocator is the global allocator (each job claims a memory slot), as in a service.
//!
//! Run: `cargo bench -p benches --bench request_instructions` (needs `valgrind`). Each case runs under
//! `valgrind --tool=callgrind` with 20 000 and 120 000 requests; the difference over 100 000 is one request's
//! cost. Cases: `CostLayer`'s default (apportioned CPU: the TSC around each poll, the thread CPU clock once
//! per interval), the wall estimate, and the thread CPU clock around every poll. Callgrind counts user-space
//! instructions: the thread-CPU case's two system calls per poll (about 0.7 µs each on the VM we measure on)
//! are not in its figure, nor the apportioned case's one per interval (at most 256 polls). The two budget
//! cases charge each job to the repository's budgets (`configs/budgets`, with the `budget_*` metrics sink, as
//! `http_service` does): `budget_monitor` locks the monitor and judges the budgets at every job's end,
//! `budget_feed` adds the job to its thread's batch (`BudgetFeed`, flushed once a second). Under `cargo test`
//! every case runs once.

use std::future::{Ready, ready};
use std::task::{Context, Poll};

use benches::drive;
use brownout_tower::CostLayer;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use brownout_cost::budget::{BudgetFeed, BudgetMonitor, BudgetSet, LogSink, MetricsSink};
use brownout_cost::{JobRecord, Labels, Meter};
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

#[global_allocator]
static GLOBAL: brownout_cost::CostAllocator = brownout_cost::CostAllocator::system();

const SHORT: u64 = 20_000;
const LONG: u64 = 120_000;

const CASES: &[&str] = &[
    "request/bare",
    "request/cost_layer_apportioned",
    "request/cost_layer_wall_estimate",
    "request/cost_layer_thread_cpu",
    "request/cost_layer_budget_monitor",
    "request/cost_layer_budget_feed",
];

/// `200 OK` with an empty `Bytes` body (CostLayer's refusal needs a body it can build from bytes).
#[derive(Clone, Copy)]
struct Ok200;

impl<R> Service<R> for Ok200 {
    type Response = Response<Bytes>;
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Response<Bytes>, std::convert::Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: R) -> Self::Future {
        ready(Ok(Response::new(Bytes::new())))
    }
}

fn repeat<S: Service<Request<()>>>(mut svc: S, n: u64) -> u64 {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut call = |svc: &mut S| {
        let req = benches::get_quotes();
        u64::from(std::hint::black_box(drive(std::hint::black_box(svc), req, &mut cx)).is_ok())
    };
    // Warm-up requests, not counted: the first job of a label set registers its counters.
    for _ in 0..benches::WARM_UP {
        call(&mut svc);
    }
    benches::measured(|| (0..n).map(|_| call(&mut svc)).sum())
}

fn run_case(case: &str, n: u64) -> Option<u64> {
    // The exporter's recorder, as `http_service` installs it (no HTTP listener needed to count).
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::set_global_recorder(recorder).expect("the first recorder");
    let labels = || Labels::new("trading", "quote-api").env("prod").strategy("quote");
    Some(match case {
        "request/bare" => repeat(Ok200, n),
        "request/cost_layer_apportioned" => repeat(CostLayer::new(Meter::new(), labels()).layer(Ok200), n),
        "request/cost_layer_wall_estimate" => {
            repeat(CostLayer::new(Meter::new(), labels()).wall_estimate().layer(Ok200), n)
        }
        "request/cost_layer_thread_cpu" => repeat(CostLayer::new(Meter::new(), labels()).thread_cpu().layer(Ok200), n),
        "request/cost_layer_budget_monitor" => {
            let monitor = monitor();
            let meter = Meter::builder()
                .sink(move |r: &JobRecord| {
                    let mut monitor = monitor.lock().unwrap_or_else(|p| p.into_inner());
                    monitor.record(r, SystemTime::now()).expect("no checkpoint to fail");
                })
                .build();
            repeat(CostLayer::new(meter, labels()).layer(Ok200), n)
        }
        "request/cost_layer_budget_feed" => {
            let feed = BudgetFeed::new(&monitor(), Duration::from_secs(1));
            repeat(CostLayer::new(Meter::builder().sink(feed).build(), labels()).layer(Ok200), n)
        }
        _ => return None,
    })
}

/// The repository's budgets, with the sinks `http_service` gives them.
fn monitor() -> Arc<Mutex<BudgetMonitor>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/budgets");
    let set = BudgetSet::load_dir(&dir).expect("configs/budgets loads");
    let monitor = BudgetMonitor::new(Arc::new(set), SystemTime::now()).with_sink(LogSink).with_sink(MetricsSink::new());
    Arc::new(Mutex::new(monitor))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some((case, n)) = benches::run_request(&args) {
        let ok = run_case(case, n).unwrap_or_else(|| panic!("unknown case {case}"));
        assert_eq!(ok, n, "{case}: every request is answered");
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test`: each case in its own process (one global recorder per process), every request answered.
        for case in CASES {
            let exe = std::env::current_exe().expect("own path");
            let status = std::process::Command::new(exe).args(["--run", case, "1000"]).status().expect("re-run");
            assert!(status.success(), "{case} failed");
        }
        println!("request_instructions: {} cases run; `cargo bench --bench request_instructions` counts", CASES.len());
        return;
    }
    println!("{:<36} {:>14} {:>10}", "case", "instr/req", "vs bare");
    let mut bare = 0.0;
    for case in CASES {
        let per_call = benches::callgrind_per_call_measured(case, SHORT, LONG);
        if case.ends_with("/bare") {
            bare = per_call;
        }
        println!("{case:<36} {per_call:>14.1} {:>+10.1}", per_call - bare);
    }
}
