//! The GameDay's command line, shared by every binary that runs one (the `gameday` example flattens
//! [`Args`] into its own options): parsing, the run's [`Options`], signals, exit statuses.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::events::EventLog;
use crate::progress::Style;
use crate::runner::{DEFAULT_TIME_SCALE, Mode, Options};

/// The order of the scenarios, as the command line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[non_exhaustive]
pub enum ModeArg {
    /// The plan's order.
    #[value(alias = "ordered")]
    Sequential,
    /// Shuffled by `--seed` (or the clock).
    Random,
}

/// The GameDay's options.
#[derive(Debug, Clone, clap::Args)]
#[non_exhaustive]
pub struct Args {
    /// The plan: load, SLO, phases and scenarios.
    #[arg(long, value_name = "FILE", default_value = "configs/chaos/gameday.yaml")]
    pub plan: PathBuf,
    /// Run only these scenarios (comma-separated names).
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub scenarios: Option<Vec<String>>,
    /// The order the scenarios run in.
    #[arg(long, value_enum, default_value = "sequential")]
    pub mode: ModeArg,
    /// Each scenario against its own instance of the service, all at once (the built-in demo only).
    #[arg(long)]
    pub parallel: bool,
    /// Run each scenario's fault this long (`60s`, `1h`), whatever the plan and the time scale say.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Multiplies every phase, fault duration and recovery SLA of the plan (1 runs the real durations).
    #[arg(long, value_name = "F", default_value_t = DEFAULT_TIME_SCALE, value_parser = parse_time_scale)]
    pub time_scale: f64,
    /// Where the reports go (default `chaos_reports/chaos_run_<UTC timestamp>/`).
    #[arg(long, visible_alias = "out", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Log at debug level (the runner's and the service's own logs), and one line per phase.
    #[arg(long, short)]
    pub verbose: bool,
    /// The seed of every scenario's samplers (and of `--mode random`): the same seed replays the same draws.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Also write the results as JUnit XML, one test case per scenario.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Send the load to this running service (`http://host:port`) instead of the built-in demo; needs
    /// `--admin-url`.
    #[arg(long, value_name = "URL", requires = "admin_url")]
    pub target: Option<String>,
    /// The admin API of a replica of the target (`http://host:port/admin`); repeat it for every replica: faults
    /// are armed on each, and the kill switch or an abort disarms each.
    #[arg(long, value_name = "URL", requires = "target")]
    pub admin_url: Vec<String>,
    /// The admin API's bearer token, read from this file (first line).
    #[arg(long, value_name = "FILE", requires = "target")]
    pub admin_token_file: Option<PathBuf>,
    /// The Prometheus counter of calls that reach the fault layer, summed over the replicas' `/metrics` (the
    /// injected rate's denominator; without it the rate's band is not judged).
    #[arg(long, value_name = "NAME", requires = "target")]
    pub calls_metric: Option<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = brownout_foundation::duration::parse(text)?;
    if d.is_zero() { Err("must be longer than zero".into()) } else { Ok(d) }
}

fn parse_time_scale(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite() && *f > 0.0 && *f <= 10.0)
        .ok_or_else(|| format!("takes a number in (0, 10], not `{text}`"))
}

impl Args {
    /// The remote target of `--target`, `--admin-url`, `--admin-token-file` and `--calls-metric`; `None`
    /// without `--target`.
    pub fn remote(&self) -> Result<Option<crate::Remote>, String> {
        let Some(target) = &self.target else { return Ok(None) };
        let token = self.admin_token_file.as_deref().ok_or("--target needs --admin-token-file")?;
        let remote = crate::Remote::new(target, &self.admin_url, token)?;
        Ok(Some(match &self.calls_metric {
            Some(metric) => remote.calls_metric(metric),
            None => remote,
        }))
    }

    /// The run's options: progress on standard error, `CHAOS_EVENT` lines on standard output, the reports in
    /// `--output-dir` (or a new timestamped directory).
    pub fn options(&self, interrupt: Option<watch::Receiver<bool>>) -> Options {
        Options {
            time_scale: self.time_scale,
            duration: self.duration,
            seed: self.seed,
            mode: match self.mode {
                ModeArg::Sequential => Mode::Sequential,
                ModeArg::Random => Mode::Random,
            },
            scenarios: self.scenarios.clone(),
            output_dir: Some(
                self.output_dir
                    .clone()
                    .unwrap_or_else(|| crate::runner::default_output_dir(std::time::SystemTime::now())),
            ),
            junit: self.junit.clone(),
            title: "Brownout GameDay".into(),
            events: EventLog::new(),
            style: if self.verbose { Style::Lines } else { Style::detect(self.parallel) },
            interrupt,
        }
    }

    /// The log filter: `debug` for Brownout's crates with `--verbose`, else `RUST_LOG` or `error`.
    pub fn log_filter(&self) -> String {
        if self.verbose {
            "info,brownout_chaos=debug,brownout_tower=debug,brownout_gameday=debug,brownout_degrade=debug".into()
        } else {
            std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into())
        }
    }
}

/// A switch set by Ctrl-C or SIGTERM: the run disarms at once and writes the reports so far. A second
/// signal exits at once (status 130), after the first has disarmed.
pub fn interrupt_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        for first in [true, false] {
            match term.as_mut() {
                Some(term) => tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} },
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            if first {
                crate::progress::line(
                    "gameday: interrupted: disarming, writing the reports so far (again to exit now)",
                );
                let _ = tx.send(true);
            }
        }
        crate::progress::clear_status();
        std::process::exit(130);
    });
    rx
}
