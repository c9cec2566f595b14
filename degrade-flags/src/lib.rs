//! Degrade flags, triggers and circuit breakers for Brownout.
//!
//! **Status:** the flags (typed, atomic reads, file / environment / override / trigger sources, file
//! watching, the `degrade` CLI) are built; circuit breakers and the Tower layers (breaker, fallback,
//! shedding) are not yet. The README's status table says what is built.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod flags;

pub use flags::{BoolFlag, FlagError, Flags, NumberFlag, StrategyFlag};
