//! The GameDay runner: prove that a Tower service degrades gracefully while its dependencies fail, and
//! recovers — in a user's `cargo test`, against the built-in demo, or against running replicas.
//!
//! A [`Plan`] (YAML: the load, the SLO, the phases and the scenarios) is run against a [`Target`]: the
//! runner offers an open-loop load of the plan's routes, checks the steady state, then for each scenario
//! arms its chaos rules on one of the target's fault switches, watches (breakers, degrade flags, injected
//! faults, the users' errors and latency), disarms, and judges the recovery back to the normal path. Each
//! scenario ends PASS, FAIL, INVALID (its fault fell short of the plan) or INTERRUPTED.
//!
//! Three targets:
//! - [`InProcess`]: a service in this process — the user's `Router` driven through [`Client::service`] (no
//!   network; paused time works), with its [`brownout_tower::ChaosHandle`]s, breakers and flags;
//! - [`Remote`]: running replicas that embed Brownout, the load sent to `--target`, faults armed through
//!   each replica's admin API (`--admin-url`, repeatable);
//! - the built-in demo (the `gameday` example of this workspace), an [`InProcess`] target over loopback.
//!
//! ```no_run
//! use std::sync::Arc;
//! use brownout_gameday::{Client, InProcess, Options, Plan, run};
//! use brownout_tower::ChaosHandle;
//!
//! # async fn demo(app: axum::Router, provider: ChaosHandle) -> Result<(), String> {
//! let plan = Plan::load(std::path::Path::new("gameday.yaml"))?;
//! let target = InProcess::new(Client::service(app)).switch("provider", provider);
//! let run = run(&plan, Arc::new(target), &Options::default()).await?;
//! assert!(run.passed(), "{:#?}", run.summary);
//! # Ok(()) }
//! ```
//!
//! Reports (with [`Options::output_dir`]): `<scenario>_report.json` and `chaos_summary.json` in the N1V1
//! suite's structure ([`report`]), one SVG chart per scenario, `report.html` (self-contained: the charts
//! inline), the post-drill report `drill_report.md`, the run's `CHAOS_EVENT`s in `chaos_events.jsonl`, and
//! JUnit XML with [`Options::junit`].
#![forbid(unsafe_code)]
// Semver: a public struct whose fields are all public, and a public enum, is `#[non_exhaustive]`, so a new field
// or variant is not a breaking change; callers build a struct from a constructor, `Default` or its setters. An
// enum stays exhaustive only where a new variant must break its readers (an `allow` says why). Enforced by
// clippy in CI.
#![warn(clippy::exhaustive_structs, clippy::exhaustive_enums)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

mod charts;
#[cfg(feature = "cli")]
pub mod cli;
pub mod events;
mod html;
mod judge;
mod junit;
mod load;
mod markdown;
mod plan;
pub mod progress;
mod remote;
pub mod report;
mod runner;
mod scenario;
mod stats;
mod target;
mod write;

pub use events::{ChaosEvent, EventLog, EventType};
pub use load::{Answer, BoxFuture, Client};
pub use plan::{Abort, Expectation, Load, Phases, Plan, RouteSpec, Scenario, ServiceLimits, Slo};
pub use remote::Remote;
pub use report::Verdict;
pub use runner::{
    DEFAULT_TIME_SCALE, Mode, Options, Run, check, default_output_dir, exit_status, print_table, run, run_parallel,
};
pub use scenario::Outcome;
pub use stats::PhaseStats;
pub use target::{CostSample, Counters, InProcess, PhaseCost, Settled, State, Target};
