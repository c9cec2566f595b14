//! Durations in config files are human strings: `250ms`, `2s`, `1m 30s`, `1h`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

fn parse<'de, D: Deserializer<'de>>(text: &str) -> Result<Duration, D::Error> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(D::Error::custom(format!("duration `{text}` is negative")));
    }
    humantime::parse_duration(trimmed)
        .map_err(|e| D::Error::custom(format!("`{text}` is not a duration like `250ms` or `2s`: {e}")))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    parse::<D>(&text)
}

pub(crate) fn serialize<S: Serializer>(d: &Duration, ser: S) -> Result<S::Ok, S::Error> {
    ser.collect_str(&humantime::format_duration(*d))
}

/// The same for `Option<Duration>` fields.
pub(crate) mod option {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(de)? {
            None => Ok(None),
            Some(text) => parse::<D>(&text).map(Some),
        }
    }

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, ser: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, ser),
            None => ser.serialize_none(),
        }
    }
}
