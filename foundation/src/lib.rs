//! What every Brownout crate needs the same way, and nothing else: mechanism, no policy.
//!
//! - [`fs::write_atomically`]: replace a file so that a crash leaves the old or the new content, whole; through
//!   a symlink it writes the link's final target and keeps the link ([`fs::resolve_symlinks`]).
//! - [`clock`]: one [`Clock`](clock::Clock) for every component that reads time ([`SystemClock`](clock::SystemClock),
//!   [`ManualClock`](clock::ManualClock), and with the `tokio` feature `TokioClock`, which follows paused time).
//! - [`sync::lock`]: lock a `Mutex`, going on with its data when another thread panicked while holding it.
//!
//! In the style of `tower-layer` or `metrics-util`: small, documented, no Tower and no configuration.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod clock;
#[cfg(feature = "fs")]
pub mod fs;
pub mod sync;
