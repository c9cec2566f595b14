//! Byte sizes in config files: `512MiB`, `1.5 GiB`, `64MB`, or a plain integer of bytes.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes, written in a config as an integer or as a string with a unit.
///
/// Binary units (`KiB`, `MiB`, `GiB`, `TiB`, or `Ki`, `Mi`, `Gi`, `Ti`) are powers of 1024; decimal units
/// (`KB`, `MB`, `GB`, `TB`, or `K`, `M`, `G`, `T`) powers of 1000; `B` or no unit is bytes. Units are
/// case-insensitive; a decimal point is allowed (`1.5GiB`); the result is rounded to whole bytes.
/// It serializes as an integer of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[allow(clippy::exhaustive_structs, reason = "a newtype: its one field is the value")]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `512MiB`, `1.5 GiB`, `64MB`, `4096`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let bad = || format!("`{text}` is not a size like `512MiB`, `64MB` or `4096`");
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "m" | "mb" => 1_000_000,
            "g" | "gb" => 1_000_000_000,
            "t" | "tb" => 1_000_000_000_000,
            "ki" | "kib" => 1 << 10,
            "mi" | "mib" => 1 << 20,
            "gi" | "gib" => 1 << 30,
            "ti" | "tib" => 1 << 40,
            _ => return Err(bad()),
        };
        if number.is_empty() || number.matches('.').count() > 1 || number == "." {
            return Err(bad());
        }
        let too_big = || format!("`{text}` is too large");
        if !number.contains('.') {
            let n: u64 = number.parse().map_err(|_| too_big())?;
            return n.checked_mul(multiplier).map(ByteSize).ok_or_else(too_big);
        }
        let n: f64 = number.parse().map_err(|_| bad())?;
        let bytes = (n * multiplier as f64).round();
        if bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64 {
            Ok(ByteSize(bytes as u64))
        } else {
            Err(too_big())
        }
    }
}

/// `1.5 GiB`, `64.0 MiB`, `512 B`: for messages.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human(self.0))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_u64(self.0)
    }
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size like `512MiB`, `64MB` or an integer of bytes")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        u64::try_from(v).map(ByteSize).map_err(|_| E::custom(format!("size {v} is negative")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
        Err(E::custom(format!("size {v} is not an integer: write bytes as an integer or a string like `1.5GiB`")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
        ByteSize::parse(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(ByteSizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_units() {
        let ok = |s: &str| ByteSize::parse(s).map(ByteSize::bytes);
        assert_eq!(ok("4096"), Ok(4096));
        assert_eq!(ok("64MiB"), Ok(64 << 20));
        assert_eq!(ok("64 mib"), Ok(64 << 20));
        assert_eq!(ok("512Mi"), Ok(512 << 20));
        assert_eq!(ok("1.5GiB"), Ok(3 << 29));
        assert_eq!(ok("20MB"), Ok(20_000_000));
        assert_eq!(ok("2k"), Ok(2000));
        assert_eq!(ok("0"), Ok(0));
        for bad in ["", "MiB", "-1MiB", "1.2.3MiB", "12 parsecs", "1e9", ".", "inf", "NaN"] {
            assert!(ByteSize::parse(bad).is_err(), "{bad} parsed");
        }
        assert!(ByteSize::parse("99999999999999999999").is_err());
        assert!(ByteSize::parse("20000000TiB").is_err());
    }

    #[test]
    fn formats_for_humans() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(64 << 20), "64.0 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }

    proptest! {
        #[test]
        fn any_string_parses_or_errs(text in ".{0,24}") {
            let _ = ByteSize::parse(&text);
        }

        #[test]
        fn integer_with_unit_multiplies_exactly(n in 0u64..1_000_000, unit in 0usize..5) {
            let (suffix, mult) = [("", 1u64), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GB", 1_000_000_000), ("k", 1000)][unit];
            prop_assert_eq!(ByteSize::parse(&format!("{n}{suffix}")), Ok(ByteSize(n * mult)));
        }

        #[test]
        fn decimals_round_to_the_nearest_byte(whole in 0u64..1000, tenth in 0u64..10) {
            let parsed = ByteSize::parse(&format!("{whole}.{tenth}MiB")).map(ByteSize::bytes);
            let exact = (whole * 10 + tenth) as f64 * (1u64 << 20) as f64 / 10.0;
            prop_assert!(parsed.is_ok());
            prop_assert!((parsed.unwrap_or(0) as f64 - exact).abs() <= 1.0);
        }
    }
}
