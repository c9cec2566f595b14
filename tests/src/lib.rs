//! The `tests` package holds no library code; see its `[[example]]`/`[[bench]]`/`[[test]]` targets.
//!
//! It also runs the workspace README's Rust examples as doctests: they use every crate (the GameDay runner
//! beside the layers), and a published crate cannot include a file outside its package.

/// The README's Rust examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
