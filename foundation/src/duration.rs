//! Durations as human strings in config files (`250ms`, `2s`, `1m 30s`, `1h`), for serde's `with`.
//!
//! ```
//! use std::time::Duration;
//!
//! #[derive(serde::Deserialize, serde::Serialize)]
//! struct Config {
//!     #[serde(with = "brownout_foundation::duration")]
//!     timeout: Duration,
//!     #[serde(default, with = "brownout_foundation::duration::option")]
//!     ttl: Option<Duration>,
//! }
//! # let _ = Config { timeout: Duration::ZERO, ttl: None };
//! assert_eq!(brownout_foundation::duration::parse(" 1m 30s "), Ok(Duration::from_secs(90)));
//! assert!(brownout_foundation::duration::parse("-2s").is_err());
//! ```
//!
//! Written back with `humantime`'s formatter (`1m 30s`), which [`parse`] reads to the same duration.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

/// Parses a human duration (`250ms`, `2s`, `1m 30s`), surrounding whitespace ignored.
///
/// # Errors
///
/// A negative duration, or text that is not a duration; the message quotes `text`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(format!("duration `{text}` is negative"));
    }
    humantime::parse_duration(trimmed).map_err(|e| format!("`{text}` is not a duration like `250ms` or `2s`: {e}"))
}

/// Deserializes a `Duration` from a human string (see [`parse`]).
pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    parse(&text).map_err(D::Error::custom)
}

/// Serializes a `Duration` as a human string (`1m 30s`).
pub fn serialize<S: Serializer>(d: &Duration, ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_str(&humantime::format_duration(*d))
}

/// The same for `Option<Duration>` fields (`None` is a missing or null value).
pub mod option {
    use super::*;

    /// Deserializes an `Option<Duration>` from a human string or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(de)? {
            None => Ok(None),
            Some(text) => parse(&text).map(Some).map_err(D::Error::custom),
        }
    }

    /// Serializes an `Option<Duration>` as a human string or none.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, ser: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, ser),
            None => ser.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    struct Doc {
        #[serde(with = "super")]
        d: Duration,
        #[serde(default, with = "super::option", skip_serializing_if = "Option::is_none")]
        o: Option<Duration>,
    }

    #[test]
    fn parses_human_durations() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("  5s\n"), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn refuses_negatives_and_garbage_quoting_the_text() {
        assert_eq!(parse(" -1s").unwrap_err(), "duration ` -1s` is negative");
        let e = parse("soon").unwrap_err();
        assert!(e.starts_with("`soon` is not a duration like `250ms` or `2s`: "), "{e}");
        assert!(parse("").is_err());
        assert!(parse("5").is_err(), "a unit is required");
    }

    #[test]
    fn serde_round_trip_with_and_without_the_option() {
        let doc: Doc = serde_json::from_str(r#"{"d": "1m 30s", "o": "250ms"}"#).unwrap();
        assert_eq!(doc, Doc { d: Duration::from_secs(90), o: Some(Duration::from_millis(250)) });
        assert_eq!(serde_json::to_string(&doc).unwrap(), r#"{"d":"1m 30s","o":"250ms"}"#);
        let doc: Doc = serde_json::from_str(r#"{"d": "2s", "o": null}"#).unwrap();
        assert_eq!(doc.o, None);
        assert_eq!(serde_json::to_string(&doc).unwrap(), r#"{"d":"2s"}"#);
        let e = serde_json::from_str::<Doc>(r#"{"d": "-2s"}"#).unwrap_err().to_string();
        assert!(e.contains("duration `-2s` is negative"), "{e}");
        let e = serde_json::from_str::<Doc>(r#"{"d": "2s", "o": "x"}"#).unwrap_err().to_string();
        assert!(e.contains("`x` is not a duration"), "{e}");
    }

    proptest! {
        #[test]
        fn what_is_written_reads_back_the_same(secs in 0u64..10_000_000_000, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse(&humantime::format_duration(d).to_string()), Ok(d));
            let json = serde_json::to_string(&Doc { d, o: Some(d) }).unwrap();
            prop_assert_eq!(serde_json::from_str::<Doc>(&json).unwrap(), Doc { d, o: Some(d) });
        }

        #[test]
        fn surrounding_whitespace_does_not_matter(ms in 0u64..1_000_000_000, pad in "[ \t\n]{0,3}") {
            let text = format!("{ms}ms");
            prop_assert_eq!(parse(&format!("{pad}{text}{pad}")), parse(&text));
        }

        #[test]
        fn a_leading_minus_is_always_refused(text in "[ ]{0,2}-[0-9a-z ]{0,12}") {
            prop_assert!(parse(&text).unwrap_err().contains("is negative"));
        }

        #[test]
        fn any_text_gives_a_duration_or_an_error_never_a_panic(text in "\\PC{0,24}") {
            let _ = parse(&text);
        }
    }
}
