//! The fault model of Brownout: rules, targeting, sampling, bounds and the kill switch.
//!
//! `chaos-core` knows nothing about Tower or tokio. It turns a [`ChaosConfig`] (usually a
//! `configs/chaos/*.yaml` file) into a compiled rule set held by a [`Controller`], and answers one question
//! per request through a [`Decider`]: *which faults, if any, does this request get?* The answer is an
//! [`Injection`] that owns the active-fault slots it took, so dropping it (a finished or cancelled request)
//! gives them back.
//!
//! The principles it is built on:
//! - **Off is free.** With nothing armed, [`Decider::decide`] is one atomic load and a branch.
//! - **Chaos is bounded.** Every rule lives inside a time window and the rule set's TTL; max injections, max
//!   concurrent active faults (per rule and overall) and a blast-radius cap are exact; [`Controller::disarm`]
//!   stops everything at the next request; in [`Environment::Prod`] nothing arms unless the config says
//!   `allow_prod: true`, and then no rule may exceed a 30% blast radius and one experiment at a time may arm.
//! - **Faults are honest.** A decision is made once per request and per rule, by a [`Sampler`] whose random,
//!   hash and exact modes keep their promises (see [`SampleConfig`]).
//!
//! ```
//! use brownout_chaos::{ChaosConfig, Controller, RequestFacts};
//!
//! let config = ChaosConfig::from_yaml_str(r#"
//! rules:
//!   - name: always-slow
//!     sample: { mode: exact, rate: 1.0 }
//!     fault: { latency: { fixed: 150ms } }
//! "#, None)?;
//! let controller = Controller::new();
//! controller.load(config)?;
//! let mut decider = controller.decider();
//! let injection = decider.decide(&RequestFacts::NONE).expect("rate 1.0 always fires");
//! assert_eq!(injection.delay().unwrap().fault().duration().as_millis(), 150);
//! # Ok::<(), brownout_chaos::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
// Semver: a public struct whose fields are all public, and a public enum, is `#[non_exhaustive]`, so a new field
// or variant is not a breaking change; callers build a struct from a constructor, `Default` or its setters. An
// enum stays exhaustive only where a new variant must break its readers (an `allow` says why). Enforced by
// clippy in CI.
#![warn(clippy::exhaustive_structs, clippy::exhaustive_enums)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

mod clock;
mod compile;
mod config;
mod controller;
mod environment;
mod error;
pub mod event;
mod fault;
mod glob;
mod guard;
mod index;
mod injection;
mod lane;
mod metrics;
pub mod pressure;
mod rng;
mod rule;
mod sampler;
pub mod sense;
mod target;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    ChaosConfig, CpuBurnConfig, ErrorConfig, FaultConfig, GrpcCode, HangConfig, HeaderFaultsConfig, KeyConfig,
    LatencyConfig, OneOrMany, RateLimitConfig, ResetConfig, RuleConfig, SampleConfig, TargetConfig, ThrottleConfig,
    TruncateConfig,
};
pub use controller::{Controller, ControllerBuilder, Decider, LoadReport, Pending, RuleStats, Snapshot};
pub use environment::{Environment, PROD_MAX_BLAST_RADIUS};
pub use error::ConfigError;
pub use fault::{BodyFault, Delay, ErrorFault, FaultKind, Latency, MAX_CPU_BURN, Outcome, RateLimit};
pub use glob::{RouteError, RouteGlob};
pub use guard::{Breach, SloGuard, SloLimits};
pub use injection::{ActiveFault, Injection};
pub use pressure::PressureConfig;
pub use sampler::Sampler;
pub use target::{Flavour, RequestFacts};

/// Name of the response header that marks an injected fault; its value is the rule's name.
pub const INJECTED_HEADER: &str = "x-chaos-injected";
