//! Durations in breaker configs are human strings: `250ms`, `30s`, `1m 30s`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

fn parse<'de, D: Deserializer<'de>>(text: &str) -> Result<Duration, D::Error> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(D::Error::custom(format!("duration `{text}` is negative")));
    }
    humantime::parse_duration(trimmed)
        .map_err(|e| D::Error::custom(format!("`{text}` is not a duration like `250ms` or `30s`: {e}")))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    parse::<D>(&text)
}

pub(crate) fn serialize<S: Serializer>(d: &Duration, ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_str(&humantime::format_duration(*d))
}
