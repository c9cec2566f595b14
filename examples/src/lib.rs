//! The library of the `examples` package: the code its examples share, so each is written once.
//!
//! - [`demo`]: the demo service (an axum app: quotes from a simulated provider behind Brownout's fallback,
//!   circuit breaker, client timeout and fault layers, reports and recommendations, each route with a degrade
//!   mode read from degrade flags), used by the `gameday` and `http_service` examples.
//! - [`demo::gameday`]: the demo as a target of the GameDay runner (`chaos-gameday`), behind the `gameday`
//!   example.
//! - [`orders`]: the critical "place an order" route (`POST /orders`) over an embedded SQLite store, with a
//!   capture-only degrade mode (`orders.ingest`) that journals orders durably and drains them exactly once.
//! - [`colour`]: whether the binaries colour their log lines (a terminal, no `NO_COLOR`).
//! - [`runtime`]: the binaries' tokio runtime, with cost-meter's park hooks.
//! - [`http_service`]: the demo service as a real server (rules and flags reloaded from files, `/metrics`),
//!   behind the `http_service` example.
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

pub mod colour;
pub mod demo;
pub mod http_service;
pub mod orders;
pub mod runtime;
