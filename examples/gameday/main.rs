//! The GameDay: prove that a service degrades gracefully while its dependency fails.
//!
//! ```text
//! cargo run --release --example gameday -- [--plan configs/chaos/gameday.yaml] [--out DIR]
//!     [--mode ordered|random] [--time-scale F] [--scenarios a,b] [--seed N] [--parallel] [--without-fallback]
//! ```
//!
//! Starts the demo service (`examples::demo`: an axum app whose route calls a simulated quote provider through
//! a fallback, a circuit breaker, a client timeout and chaos-tower's fault layer), drives it over loopback,
//! checks the steady state, then runs each scenario of the plan: a `before` phase, the fault for its
//! `duration`, and an `after` phase, every one multiplied by `--time-scale` (default 0.05). Each scenario is
//! judged on its injected rate (inside its band), the user-visible error rate (under the SLO, thanks to the
//! fallback), its recovery time (within its SLA), and the SLO guard (never tripped). The exit status is 0 only
//! if every scenario passes (1 if one fails, 2 if the run could not be made); reports go to
//! `chaos_reports/chaos_run_<UTC timestamp>/`.
//!
//! `--parallel` runs each scenario against its own service instance, all at once, with one line per scenario
//! event instead of a progress bar. `--without-fallback` builds the service without its cached fallback: a
//! demonstration that the verdicts depend on it (the dependency scenarios fail).
//!
//! The runner lives in the package's library, [`examples::gameday`], so tests can call it.

use std::process::ExitCode;

/// cost-meter's allocator: each request's memory is measured (attributed to its job), not estimated.
#[global_allocator]
static ALLOCATOR: cost_meter::CostAllocator = cost_meter::CostAllocator::system();

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .init();
    let result = match examples::gameday::Args::parse(std::env::args().skip(1)) {
        Ok(args) => examples::gameday::run(&args).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        eprintln!("gameday: {e}");
    }
    ExitCode::from(examples::gameday::exit_status(&result))
}
