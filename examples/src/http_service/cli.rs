//! The `http_service` command line (clap): `--help` with every option, `--version`, `--opt=value`, typo
//! suggestions; a usage error is printed on standard error and exits 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::Options;

/// Serve the demo service (`GET /quote/{symbol}` behind a cached fallback, a circuit breaker, a 250 ms client
/// timeout and chaos-tower's fault layer) with `GET /metrics` and `GET /healthz`.
///
/// Prints `listening on http://ADDR` once it accepts connections; stops gracefully on SIGTERM or Ctrl-C.
/// Exit status: 0 stopped, 1 could not start or serve, 2 usage error.
#[derive(Debug, Parser)]
#[command(name = "http_service", version)]
pub struct Cli {
    /// Where to serve (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = super::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// The chaos rules, reloaded when the file changes.
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_RULES)]
    rules: PathBuf,
    /// The degrade flags, reloaded when the file changes.
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_FLAGS)]
    flags: PathBuf,
    /// Mount the admin API at /admin, with the bearer tokens of this file (one `id:token` a line).
    #[arg(long, value_name = "FILE", conflicts_with = "bare")]
    admin_token_file: Option<PathBuf>,
    /// Where the admin API appends its audit lines.
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_ADMIN_AUDIT_LOG)]
    admin_audit_log: PathBuf,
    /// Charge the requests to the budgets of this directory [default: configs/budgets, when it exists].
    #[arg(long, value_name = "DIR")]
    budgets: Option<PathBuf>,
    /// Keep the budgets' month-to-date usage in this file across restarts.
    #[arg(long, value_name = "FILE", default_value = super::DEFAULT_BUDGET_CHECKPOINT)]
    budget_checkpoint: PathBuf,
    /// Serve the quotes with none of Brownout's layers (the end-to-end benchmark's baseline); no admin API.
    #[arg(long)]
    bare: bool,
    /// Serve POST /orders and GET /orders/stats, with their SQLite store and journal in this directory.
    #[arg(long, value_name = "DIR")]
    orders_dir: Option<PathBuf>,
    /// No degrade triggers: nothing degrades by itself.
    #[arg(long)]
    without_degrade: bool,
    /// How long the simulated provider takes (`0ms` answers at once) [default: 1ms].
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    provider_latency: Option<Duration>,
    /// How the cost meter measures a request's CPU: the thread CPU clock, or the wall time as an estimate.
    #[arg(long, value_name = "CLOCK", value_enum, default_value_t = CpuClock::Thread)]
    cpu_clock: CpuClock,
    /// How long a connection may take to send a whole request head (and may stay idle) before it is closed
    /// [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = timeout)]
    header_read_timeout: Option<Duration>,
    /// How long a request may take to send its whole body before it is answered with an error [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = timeout)]
    body_read_timeout: Option<Duration>,
}

/// `--cpu-clock`: how a request's CPU is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CpuClock {
    /// The thread CPU clock, apportioned over the polls by their TSC time.
    Thread,
    /// The request's wall time: reads no CPU clock, charges a request its waits.
    Wall,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("takes a duration like 1ms or 0ms: {e}"))
}

fn timeout(text: &str) -> Result<Duration, String> {
    Some(duration(text)?).filter(|d| !d.is_zero()).ok_or_else(|| "takes a duration above zero like 10s".into())
}

impl Cli {
    /// The options this command line asks for.
    pub fn options(self) -> Options {
        let defaults = Options::default();
        Options {
            listen: self.listen,
            rules: self.rules,
            flags: self.flags,
            admin_token_file: self.admin_token_file,
            admin_audit_log: self.admin_audit_log,
            budgets: self.budgets,
            budget_checkpoint: self.budget_checkpoint,
            bare: self.bare,
            orders_dir: self.orders_dir,
            degrade: !self.without_degrade,
            provider_latency: self.provider_latency.unwrap_or(defaults.provider_latency),
            thread_cpu: self.cpu_clock == CpuClock::Thread,
            header_read_timeout: self.header_read_timeout.unwrap_or(defaults.header_read_timeout),
            body_read_timeout: self.body_read_timeout.unwrap_or(defaults.body_read_timeout),
            ..defaults
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_arguments_give_the_default_options() {
        let parsed = Cli::try_parse_from(["http_service"]).unwrap().options();
        let defaults = Options::default();
        assert_eq!(format!("{parsed:?}"), format!("{defaults:?}"));
    }
}
