//! The GameDay: prove that a service degrades gracefully while its dependencies fail, and recovers.
//!
//! ```text
//! cargo run --release --example gameday                    # against the built-in demo
//! cargo run --release --example gameday -- --help
//! cargo run --release --example gameday -- --target http://HOST:PORT \
//!     --admin-url http://HOST:PORT/admin --admin-token-file FILE [--calls-metric NAME]
//! ```
//!
//! A thin command line over the `chaos-gameday` runner: with no `--target`, it starts the demo service
//! (`examples::demo`) on a loopback port and runs the plan against it; with `--target`, the load goes to that
//! URL and the faults are armed through the admin API of every `--admin-url`. Exit status: 0 every scenario
//! passed, 1 one did not, 2 the run could not be made, 130 interrupted (Ctrl-C, SIGTERM: the fault is
//! disarmed at once and the reports so far are written, marked interrupted).

use std::process::ExitCode;
use std::sync::Arc;

use brownout_gameday::{Plan, Run, Target, cli, exit_status, print_table, run, run_parallel};
use clap::Parser;
use examples::demo::gameday::{DemoOptions, target};

/// cost-meter's allocator: each request's memory is measured (attributed to its job), not estimated.
#[global_allocator]
static ALLOCATOR: brownout_cost::CostAllocator = brownout_cost::CostAllocator::system();

/// Prove that a service degrades gracefully while its dependencies fail, and recovers.
///
/// Runs the plan's scenarios against the built-in demo service (default) or a running service (`--target`),
/// and writes the reports: <scenario>_report.json, chaos_summary.json, report.html, drill_report.md, one SVG
/// chart per scenario, chaos_events.jsonl (and JUnit XML with --junit).
///
/// Exit status: 0 every scenario passed, 1 one did not, 2 the run could not be made, 130 interrupted.
#[derive(Debug, clap::Parser)]
#[command(name = "gameday", version)]
struct Command {
    #[command(flatten)]
    gameday: cli::Args,
    /// The demo without its fallbacks (the cached quote, the orders journal): the dependency scenarios then
    /// fail, which shows the verdicts depend on them.
    #[arg(long, conflicts_with = "target")]
    without_fallback: bool,
    /// The demo without its degrade triggers: nothing degrades by itself, and the pressure scenarios fail.
    #[arg(long, conflicts_with = "target")]
    without_degrade: bool,
}

async fn main_run(command: &Command) -> Result<Run, String> {
    let args = &command.gameday;
    let plan = Plan::load(&args.plan)?;
    let options = args.options(Some(cli::interrupt_on_signals()));
    let dir = options.output_dir.clone().expect("the command line always has an output directory");
    // Before the demo starts (and writes its orders into the output directory).
    brownout_gameday::check(&plan, &options)?;
    let result = if let Some(remote) = args.remote()? {
        if args.parallel {
            return Err("--parallel runs one demo instance per scenario; it cannot be used with --target".into());
        }
        run(&plan, Arc::new(remote), &options).await
    } else {
        let demo = DemoOptions { fallback: !command.without_fallback, degrade: !command.without_degrade };
        if args.parallel {
            let make = |_index: usize, scenario: brownout_gameday::Scenario| {
                let (plan, demo, data) = (plan.clone(), demo.clone(), dir.join(format!("orders-{}", scenario.name)));
                async move {
                    let target: Arc<dyn Target> = Arc::new(target(&plan, &data, &demo).await?);
                    Ok(target)
                }
            };
            run_parallel(&plan, make, &options).await
        } else {
            let target = target(&plan, &dir.join("orders"), &demo).await?;
            run(&plan, Arc::new(target), &options).await
        }
    }?;
    print_table(&result);
    let verdict = if result.interrupted() {
        "INTERRUPTED"
    } else if result.passed() {
        "PASS"
    } else {
        "FAIL"
    };
    println!("\n{verdict} — reports in {}", dir.display());
    Ok(result)
}

fn main() -> ExitCode {
    let command = Command::parse();
    // cost-meter apportions each request's CPU: the runtime tells it when its workers park.
    let runtime = examples::runtime::with_cost_hooks();
    match runtime {
        Ok(runtime) => runtime.block_on(gameday(command)),
        Err(e) => {
            eprintln!("gameday: cannot start the runtime: {e}");
            ExitCode::from(2)
        }
    }
}

async fn gameday(command: Command) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(command.gameday.log_filter()))
        .with_ansi(examples::colour::stderr_logs())
        .with_writer(brownout_gameday::progress::LogWriter::default)
        .init();
    let result = main_run(&command).await;
    if let Err(e) = &result {
        eprintln!("gameday: {e}");
    }
    ExitCode::from(exit_status(&result))
}
