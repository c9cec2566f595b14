//! The demo service as a real server: the target for `load --url` and for wrk.
//!
//! ```text
//! cargo run --release --example http_service -- [--listen 127.0.0.1:8080]
//!     [--rules configs/chaos/quote-provider.yaml] [--flags configs/feature_flags.yaml]
//!     [--admin-token-file FILE [--admin-audit-log admin-audit.jsonl]]
//!     [--budgets configs/budgets] [--budget-checkpoint budget-checkpoint.json]
//!     [--provider-latency 1ms] [--bare] [--header-read-timeout 10s] [--body-read-timeout 30s]
//! cargo run --example http_service -- --help
//! ```
//!
//! Exit status: 0 stopped by a signal, 1 could not start or serve, 2 usage error (clap's message on standard
//! error).
//!
//! Serves the demo service (`examples::demo`: `GET /quote/{symbol}` over a simulated quote provider behind a
//! cached fallback, a circuit breaker, a 250 ms client timeout and chaos-tower's fault layer), with
//! `GET /metrics` (Prometheus) and `GET /healthz`. The chaos rules come from `--rules` and the degrade flags
//! from `--flags`; both files are reloaded when they change, and a change that does not load is logged (file,
//! field, reason) while the last good rules or flags stay. The flag `quotes.breaker` forces the breaker.
//!
//! With `--admin-token-file FILE` (one token a line, `id:token`; see `brownout_tower::admin::TokenSet`) the
//! admin API is mounted at `/admin`: `degrade --url http://127.0.0.1:8080/admin --token-file FILE list`.
//! Without it `/admin` answers 404. It binds `127.0.0.1` unless `--listen` says otherwise.
//!
//! For overhead measurements (`benches/e2e.sh`, BENCHMARKS.md): `--provider-latency 0ms` makes the simulated
//! provider answer at once instead of after 1 ms, and `--bare` serves the same quotes with none of Brownout's
//! layers (no fallback, breaker, fault layer or cost meter), the baseline to compare with.
//!
//! Requests are charged to the budgets of `--budgets` (default `configs/budgets` when that directory exists;
//! `GET /admin/budgets`). Their month-to-date usage is kept in `--budget-checkpoint FILE` (default
//! `budget-checkpoint.json` in the working directory): loaded at start, saved every second while requests are
//! charged and at shutdown, so a restart, even after `kill -9`, loses at most the last second's charges.
//!
//! A client that takes longer than `--header-read-timeout` (default 10 s) to send a request head, or than
//! `--body-read-timeout` (default 30 s) to send its body, is cut off.
//!
//! Prints `listening on http://ADDR` once it accepts connections, so scripts can wait for that line; stops
//! gracefully on SIGTERM (what Kubernetes sends) or Ctrl-C: it saves the budget checkpoint at once, lets the
//! requests in flight finish, and saves it again. Logs go to standard error (`RUST_LOG`, default `info`).
//!
//! The code lives in the package's library, [`examples::http_service`], so tests can start it.

use std::io::Write as _;
use std::process::ExitCode;

use examples::http_service::{Options, Service, serve_with, shutdown_signal};

/// cost-meter's allocator: each request's memory is measured (attributed to its job), not estimated.
#[global_allocator]
static ALLOCATOR: brownout_cost::CostAllocator = brownout_cost::CostAllocator::system();

fn main() -> ExitCode {
    // `--help`, `--version` and usage errors end here (exit 0, 0 and 2), before anything starts.
    let options = Options::parse(std::env::args().skip(1)).unwrap_or_else(|e| e.exit());
    // cost-meter apportions each request's CPU: the runtime tells it when its workers park.
    let runtime = examples::runtime::with_cost_hooks();
    match runtime {
        Ok(runtime) => runtime.block_on(serve(options)),
        Err(e) => {
            eprintln!("http_service: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(options: Options) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(examples::colour::stderr_logs())
        // The span events (target `brownout`: one per faulted, shed or fallen-back request) are for traces, not
        // for the console: at the default level they would be a log line per request. RUST_LOG brings them back.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,brownout=warn".into()),
        )
        .init();
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http_service: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let service = Service::start(&options)?;
    let listener =
        tokio::net::TcpListener::bind(options.listen).await.map_err(|e| format!("--listen {}: {e}", options.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    let checkpoint = service.budget_checkpoint();
    let on_signal = checkpoint.clone();
    let shutdown = async move {
        let signal = shutdown_signal().await;
        tracing::info!("{signal}: finishing the requests in flight");
        // Saved before the drain too, in case the drain outlasts the grace period before a SIGKILL.
        if let Some(Err(e)) = on_signal.map(|c| c.save()) {
            tracing::error!("{e}");
        }
    };
    serve_with(listener, &service, &options, shutdown).await.map_err(|e| format!("serve: {e}"))?;
    if let Some(orders) = &service.orders {
        // The drainer stops after the entry it is applying; what is left stays in the journal for the next start.
        orders.orders.shutdown().await;
    }
    if let Some(checkpoint) = checkpoint {
        checkpoint.save()?;
        tracing::info!(file = %checkpoint.path().display(), "budget checkpoint saved");
    }
    Ok(())
}
