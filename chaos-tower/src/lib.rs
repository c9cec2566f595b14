//! Tower middleware for Brownout: fault injection driven by [`brownout_chaos`] rules.
//!
//! Two flavours share one [`ChaosHandle`] (the switch every clone sees):
//! - [`HttpChaosLayer`] for `http::Request<B>` → `http::Response<ResB>` services (axum, hyper, tonic): status
//!   faults are real responses carrying `x-chaos-injected: <rule>`, 429s come with `Retry-After` and
//!   `x-ratelimit-*`, response bodies can be throttled or cut, and callers may request faults through
//!   `x-chaos-*` headers when that is enabled. The service's error type is unchanged, so it layers onto
//!   axum routers.
//! - [`ChaosLayer`] for any `Service<Request>`: faults are a typed [`InjectedError`].
//! - [`ChaosIo`] for any `AsyncRead` / `AsyncWrite`: each read and write is decided like a request (the slow
//!   disk).
//!
//! Beside them: [`CircuitBreakerLayer`], [`FallbackLayer`] and [`ShedLayer`] (degrade-flags),
//! [`BufferBodyLayer`] (a body that fails or is cut becomes an error the breaker and the fallback see), and
//! [`CostLayer`], which meters every request as a cost-meter job and obeys a budget's concurrency guardrail.
//!
//! The [`degrade`] module makes degradation happen by itself: [`degrade::TriggerTask`] flips a degrade flag
//! from a signal (a dependency's error rate or p95 through [`degrade::LatencyWindowLayer`], a breaker, the
//! process's CPU and memory, a budget at critical) with hysteresis and a minimum hold.
//!
//! The [`admin`] module (feature `admin`, on by default) is the control plane: a token-guarded Tower service
//! that operators mount to change rules, flags and breakers of a running service and read its budgets.
//!
//! ```
//! # async fn quote() -> &'static str { "42" }
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use brownout_tower::HttpChaosLayer;
//!
//! let chaos = HttpChaosLayer::too_many_requests(Duration::from_secs(2), 0.25)?;
//! let app: Router = Router::new().route("/quote", get(quote)).layer(chaos.clone());
//! chaos.handle().disarm(); // the kill switch: every request from now on passes untouched
//! # Ok::<(), brownout_chaos::ConfigError>(())
//! ```
//!
//! [`load`] (the default `load` feature) is the load harness: closed and open loops against any Tower
//! service or a URL, HdrHistogram percentiles, SLO assertions and baseline comparison for CI.
//!
//! With nothing armed a layer costs one atomic load and a branch per request; see the README for the
//! measured figures.
//!
//! # Features
//!
//! All on by default. With `default-features = false` only the fault layers are built ([`HttpChaosLayer`],
//! [`ChaosLayer`], [`ChaosIo`], [`BufferBodyLayer`], [`ChaosHandle`], with rules built in code or read from
//! JSON); each feature adds one family: `yaml` (YAML rule files), `breaker`, `fallback` (with `shed`), `shed`,
//! `degrade`, `cost`, `admin`, `load` and `axum` (`FromChaosBody` for axum's `Body`).
#![forbid(unsafe_code)]
// Semver: a public struct whose fields are all public, and a public enum, is `#[non_exhaustive]`, so a new field
// or variant is not a breaking change; callers build a struct from a constructor, `Default` or its setters. An
// enum stays exhaustive only where a new variant must break its readers (an `allow` says why). Enforced by
// clippy in CI.
#![warn(clippy::exhaustive_structs, clippy::exhaustive_enums)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

#[macro_use]
mod macros;

#[cfg(feature = "admin")]
pub mod admin;
pub mod body;
#[cfg(feature = "breaker")]
pub mod breaker;
pub mod chaos;
#[cfg(feature = "cost")]
pub mod cost;
#[cfg(feature = "degrade")]
pub mod degrade;
#[cfg(feature = "fallback")]
pub mod fallback;
mod faulted;
pub mod grpc;
mod handle;
pub mod http;
pub mod io;
#[cfg(feature = "load")]
pub mod load;
// The 503 that shedding and cost guardrails answer.
#[cfg(any(feature = "shed", feature = "cost"))]
mod refusal;
#[cfg(feature = "shed")]
pub mod shed;
pub mod trace;

pub use body::{BodyError, BufferBodyLayer};
#[cfg(feature = "breaker")]
pub use breaker::{CircuitBreakerLayer, CircuitBreakerService, GrpcClassifier};
/// Brownout's one clock, shared by rules, the SLO guard, breakers, triggers and latency windows. Inside tokio
/// pass [`TokioClock`] (it follows `tokio::time::pause` and `advance`); see [`brownout_foundation::clock`].
pub use brownout_foundation::clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use chaos::{Chaos, ChaosLayer, InjectedError};
#[cfg(feature = "cost")]
pub use cost::{Cost, CostLayer};
#[cfg(feature = "fallback")]
pub use fallback::{Fallback, FallbackLayer, FallbackReason, GrpcFailure};
pub use handle::ChaosHandle;
pub use http::{BodyMode, ChaosBody, FromChaosBody, HttpChaos, HttpChaosLayer, INJECTED_HEADER, SameBody, WrapBody};
pub use io::ChaosIo;
#[cfg(feature = "shed")]
pub use shed::{SHED_HEADER, Shed, ShedLayer};

pub use brownout_chaos;
#[cfg(feature = "cost")]
pub use brownout_cost;

/// The error type of the generic flavour, as in Tower.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
