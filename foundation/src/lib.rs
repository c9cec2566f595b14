//! What every Brownout crate needs the same way, and nothing else: mechanism, no policy.
//!
//! - [`fs::write_atomically`]: replace a file so that a crash leaves the old or the new content, whole; through
//!   a symlink it writes the link's final target and keeps the link ([`fs::resolve_symlinks`]).
//! - [`clock`]: one [`Clock`](clock::Clock) for every component that reads time ([`SystemClock`](clock::SystemClock),
//!   [`ManualClock`](clock::ManualClock), and with the `tokio` feature `TokioClock`, which follows paused time).
//! - [`sync::lock`], [`sync::read`], [`sync::write`]: lock a `Mutex` or `RwLock`, going on with its data when
//!   another thread panicked while holding it.
//! - [`field_error!`]: a crate's error type that names the file, the field and the reason.
//! - [`setters!`]: chainable setters for `#[non_exhaustive]` config structs, one per field.
//! - [`duration`]: durations as human strings (`250ms`, `1m 30s`) in config files, for serde's `with`.
//! - [`parse::yaml`], [`parse::json`]: a document into a serde type, errors with the field's path.
//! - [`text::is_blank_document`]: is a config file only blanks, comments and document markers?
//! - [`process`]: the thread and process CPU clocks, the page size and the resident set size.
//! - [`time`]: civil dates in UTC and an RFC 3339 stamp for any Unix time.
//! - [`token_file`]: the lines of a token file (`id:token` or a bare token, `#` comments).
//! - [`slots::find_or_push`]: the find-or-insert of a small per-thread cache, bounded.
//!
//! In the style of `tower-layer` or `metrics-util`: small, documented, no Tower and no configuration.

#![forbid(unsafe_code)]
// Semver: a public struct whose fields are all public, and a public enum, is `#[non_exhaustive]`, so a new field
// or variant is not a breaking change; callers build a struct from a constructor, `Default` or its setters. An
// enum stays exhaustive only where a new variant must break its readers (an `allow` says why). Enforced by
// clippy in CI.
#![warn(clippy::exhaustive_structs, clippy::exhaustive_enums)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

pub mod clock;
pub mod duration;
pub mod error;
#[cfg(feature = "fs")]
pub mod fs;
pub mod parse;
pub mod process;
mod setters;
pub mod slots;
pub mod sync;
pub mod text;
pub mod time;
pub mod token_file;
