//! Degrade flags, triggers and circuit breakers for Brownout.
//!
//! - [`flags`]: typed degrade flags read with one atomic load; file, environment, override and trigger
//!   sources; file watching; the `degrade` CLI.
//! - [`breaker`]: circuit breakers, pure and clock-injected. Their Tower layer, like the fallback and
//!   shedding layers, lives in `chaos-tower`.
//! - [`openfeature`]: the flags as OpenFeature evaluations (reasons, variants, error codes); with the feature
//!   `openfeature`, a provider for the OpenFeature Rust SDK.
#![forbid(unsafe_code)]
// Semver: a public struct whose fields are all public, and a public enum, is `#[non_exhaustive]`, so a new field
// or variant is not a breaking change; callers build a struct from a constructor, `Default` or its setters. An
// enum stays exhaustive only where a new variant must break its readers (an `allow` says why). Enforced by
// clippy in CI.
#![warn(clippy::exhaustive_structs, clippy::exhaustive_enums)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod breaker;
pub mod flags;
mod link;
pub mod openfeature;

pub use breaker::{BreakerConfig, BreakerMap, CircuitBreaker, ForcedState, Outcome};
pub use flags::{BoolFlag, FileWatcher, FlagError, FlagWatcher, Flags, NumberFlag, StrategyFlag};
pub use link::force_from_flag;
