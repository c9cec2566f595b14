//! Instructions per request of the demo app, in process: `GET /quote/ACME` through the bare router and
//! through the app with every Brownout layer armed but not firing (`configs/chaos/armed-not-firing.yaml`),
//! counted by callgrind. It splits the end-to-end benchmark's gap (`benches/e2e.sh`) into what the app and
//! its layers execute, free of the kernel's network stack, of wrk, and of the machine's noise.
//!
//! Run: `cargo run --release --example app_instructions` (needs `valgrind`). Each case runs under callgrind
//! with 2 000 and 12 000 requests; the difference over 10 000 is one request. `--run CASE N` runs one case.
//! The provider answers at once (as in `benches/e2e.sh`); no budget monitor is attached.

use std::time::Duration;

use tower::ServiceExt;
use tower::util::Either;

#[global_allocator]
static GLOBAL: brownout_cost::CostAllocator = brownout_cost::CostAllocator::system();

const CASES: [&str; 3] = ["bare", "armed-wall", "armed-thread"];
const SHORT: u64 = 2_000;
const LONG: u64 = 12_000;

fn run(case: &str, n: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let setup = runtime.block_on(async {
        metrics::set_global_recorder(metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder())
            .expect("the first recorder");
        let chaos = brownout_tower::ChaosHandle::for_environment(brownout_chaos::Environment::Test);
        let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/chaos/armed-not-firing.yaml");
        let config = brownout_chaos::ChaosConfig::from_path(rules).expect("the rules");
        chaos.load(config).expect("valid rules");
        // Either way behind the same `Either`, as `http_service` serves them (`Front`).
        let router = match case {
            "bare" => Either::Left(examples::demo::bare_router(Duration::from_millis(250), Duration::ZERO)),
            "armed-wall" | "armed-thread" => {
                let options = examples::demo::Options { thread_cpu: case == "armed-thread", ..Default::default() };
                Either::Right(examples::demo::app_with(&chaos, &options, Duration::ZERO).app)
            }
            other => panic!("unknown case {other}: one of {CASES:?}"),
        };
        (router, chaos)
    });
    let (router, _chaos) = setup;
    let serve = |n: u64| {
        runtime.block_on(async {
            for _ in 0..n {
                let req = http::Request::get("/quote/ACME").body(axum::body::Body::empty()).expect("a request");
                let response = router.clone().oneshot(req).await.expect("infallible");
                assert_eq!(response.status(), 200);
                http_body_util::BodyExt::collect(response.into_body()).await.expect("the body");
            }
        })
    };
    // Warm-up requests, not counted (the first ones fill the quote cache and register metric handles).
    serve(benches::WARM_UP);
    benches::measured(|| serve(n));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some((case, n)) = benches::run_request(&args) {
        run(case, n);
        return;
    }
    println!("{:<14} {:>12} {:>10}", "app", "instr/req", "× bare");
    let mut bare = 0.0;
    for case in CASES {
        let per_request = benches::callgrind_per_call_measured(case, SHORT, LONG);
        if case == "bare" {
            bare = per_request;
        }
        println!("{case:<14} {per_request:>12.0} {:>9.2}×", per_request / bare);
    }
}
