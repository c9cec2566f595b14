//! The `tests` package holds no library code; see its `[[example]]`/`[[bench]]`/`[[test]]` targets.
