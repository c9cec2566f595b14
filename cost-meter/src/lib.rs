//! CPU-hour and memory-GB-hour metering per job span, budgets and guardrails for Brownout.
//!
//! **Status: not yet implemented.** This crate is a placeholder that reserves the name and its place in the
//! workspace; the README's status table says what is built. See the issue "cost-meter: CPU-hours and
//! memory-GB-hours per job span".
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]
