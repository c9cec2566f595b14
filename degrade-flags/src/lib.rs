//! Degrade flags, triggers and circuit breakers for Brownout.
//!
//! **Status: not yet implemented.** This crate is a placeholder that reserves the name and its place in the
//! workspace; the README's status table says what is built. See the issue "degrade-flags: degrade modes,
//! circuit breakers and fallbacks".
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod breaker;

pub use breaker::{BreakerConfig, BreakerMap, CircuitBreaker, ForcedState, Outcome};
