//! The `benches` package holds no library code; see its `[[example]]`/`[[bench]]`/`[[test]]` targets.
