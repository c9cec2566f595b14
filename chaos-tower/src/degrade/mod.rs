//! Degrading by itself: triggers that flip degrade flags from real signals.
//!
//! A [`TriggerTask`] reads a [`Signal`] on an interval (tokio's clock) and feeds a degrade-flags
//! [`Trigger`](brownout_degrade::flags::Trigger): the flag goes to its degraded value when the signal rises above
//! one threshold and back when it falls below another, never within the minimum hold of the last flip. A manual
//! setting of the flag (override, environment, flag file) always wins over a trigger.
//!
//! Signals:
//! - a dependency's error rate and p95: a [`LatencyWindow`], fed by a [`LatencyWindowLayer`] on its client
//!   ([`LatencyWindow::error_rate_signal`], [`LatencyWindow::p95_seconds_signal`]); the same window records
//!   the fsync latency of a journal when the caller records each fsync ([`LatencyWindow::record`]);
//! - the process against its limits, from `brownout_chaos`'s sensor: [`signals::cpu_share`],
//!   [`signals::memory_share`];
//! - a circuit breaker not closed: [`signals::breaker_open`];
//! - a budget at critical: [`signals::budget_critical`];
//! - any `FnMut() -> Option<f64>` closure.
//!
//! Every flip logs `degrade_mode=ON|OFF flag=<name> … by=trigger` (and a manual change `by=manual`), counts in
//! `degrade_trigger_flips_total{trigger,flag,state}` and shows in [`TriggerTask::status`]; the last reading is
//! the gauge `degrade_trigger_signal{trigger}`.
//!
//! Serve cached quotes while more than 20 % of the calls to the quote provider fail, until fewer than 5 % do:
//!
//! ```
//! use std::time::Duration;
//! use brownout_tower::degrade::{LatencyWindow, TriggerTask};
//! use brownout_degrade::{Flags, flags::FlagKind};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let provider = service_fn(|_: http::Request<()>| async {
//! #     Ok::<_, std::io::Error>(http::Response::builder().status(503).body(()).unwrap())
//! # });
//! let flags = Flags::new();
//! flags.define("quotes.cached", FlagKind::Bool, "false")?;
//!
//! // Every call to the provider lands in a 30 s window (an error, a 5xx or a 429 is a failure)…
//! let window = LatencyWindow::new(Duration::from_secs(30)).min_calls(20);
//! let mut client = ServiceBuilder::new().layer(window.layer()).service(provider);
//!
//! // …and a trigger reads its error rate every second.
//! let trigger = TriggerTask::builder("quotes-errors", "quotes.cached")
//!     .on_above(0.20)
//!     .off_below(0.05)
//!     .min_hold(Duration::from_secs(30))
//!     .spawn(&flags, window.error_rate_signal())?;
//!
//! let cached = flags.bool("quotes.cached")?;
//! for _ in 0..20 {
//!     let response = client.ready().await?.call(http::Request::new(())).await?;
//!     assert_eq!(response.status(), 503);
//! }
//! tokio::time::sleep(Duration::from_millis(1100)).await; // the next tick
//! assert!(cached.get() && trigger.is_on());
//! # Ok(()) }
//! ```

mod error;
mod layer;
mod signal;
pub mod signals;
mod task;
mod window;

pub use error::TriggerError;
pub use layer::{CallOk, HttpOk, LatencyWindowLayer, LatencyWindowService, ResponseFuture, ResultOk};
pub use signal::Signal;
pub use task::{DEFAULT_EVERY, DEFAULT_MIN_HOLD, MIN_EVERY, TriggerBuilder, TriggerStatus, TriggerTask};
pub use window::{LatencyWindow, MAX_LATENCY, WindowStats};
