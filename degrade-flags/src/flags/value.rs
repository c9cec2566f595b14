//! Flag types and values, and their one-word encoding for lock-free reads.

use std::fmt;
use std::sync::Arc;

/// The type of a flag.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FlagKind {
    /// On or off.
    Bool,
    /// One of several named strategies (`live`, `cached`, `stale`).
    Strategy(Arc<[Box<str>]>),
    /// A number within `[min, max]` (for example a percentage).
    Number {
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
}

impl FlagKind {
    /// The name used in files: `bool`, `strategy` or `number`.
    pub fn name(&self) -> &'static str {
        match self {
            FlagKind::Bool => "bool",
            FlagKind::Strategy(_) => "strategy",
            FlagKind::Number { .. } => "number",
        }
    }

    /// Parses `text` as a value of this type; the error says what was expected.
    pub fn parse(&self, text: &str) -> Result<FlagValue, String> {
        let t = text.trim();
        match self {
            FlagKind::Bool => match t.to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" | "1" => Ok(FlagValue::Bool(true)),
                "false" | "off" | "no" | "0" => Ok(FlagValue::Bool(false)),
                _ => Err(format!("`{t}` is not a bool (true/false, on/off)")),
            },
            FlagKind::Strategy(options) => options
                .iter()
                .position(|o| o.as_ref() == t)
                .map(|i| FlagValue::Strategy(i as u32))
                .ok_or_else(|| format!("`{t}` is not one of {}", options.join(", "))),
            FlagKind::Number { min, max } => match t.parse::<f64>() {
                Ok(n) if n.is_finite() && n >= *min && n <= *max => Ok(FlagValue::Number(n)),
                Ok(n) => Err(format!("{n} is outside [{min}, {max}]")),
                Err(_) => Err(format!("`{t}` is not a number")),
            },
        }
    }

    /// Writes `value` the way files and the CLI spell it.
    pub fn format(&self, value: FlagValue) -> String {
        match (self, value) {
            (FlagKind::Strategy(options), FlagValue::Strategy(i)) => {
                options.get(i as usize).map_or_else(|| format!("#{i}"), |o| o.to_string())
            }
            (_, v) => v.to_string(),
        }
    }
}

/// A flag's value.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum FlagValue {
    /// A bool flag's value.
    Bool(bool),
    /// The index of a strategy among the flag's options.
    Strategy(u32),
    /// A number flag's value.
    Number(f64),
}

impl FlagValue {
    /// The one-word encoding stored in the flag's atomic.
    pub(crate) fn encode(self) -> u64 {
        match self {
            FlagValue::Bool(b) => u64::from(b),
            FlagValue::Strategy(i) => u64::from(i),
            FlagValue::Number(n) => n.to_bits(),
        }
    }

    pub(crate) fn decode(kind: &FlagKind, word: u64) -> Self {
        match kind {
            FlagKind::Bool => FlagValue::Bool(word != 0),
            FlagKind::Strategy(_) => FlagValue::Strategy(word as u32),
            FlagKind::Number { .. } => FlagValue::Number(f64::from_bits(word)),
        }
    }

    /// The value as a gauge: 0/1, the strategy index, or the number.
    pub(crate) fn as_gauge(self) -> f64 {
        match self {
            FlagValue::Bool(b) => f64::from(u8::from(b)),
            FlagValue::Strategy(i) => f64::from(i),
            FlagValue::Number(n) => n,
        }
    }
}

impl fmt::Display for FlagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagValue::Bool(b) => write!(f, "{b}"),
            FlagValue::Strategy(i) => write!(f, "#{i}"),
            FlagValue::Number(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format_round_trip() {
        let s = FlagKind::Strategy(vec!["live".into(), "cached".into()].into());
        assert_eq!(s.parse("cached"), Ok(FlagValue::Strategy(1)));
        assert_eq!(s.format(FlagValue::Strategy(1)), "cached");
        assert!(s.parse("stale").unwrap_err().contains("live, cached"));
        assert_eq!(FlagKind::Bool.parse("ON"), Ok(FlagValue::Bool(true)));
        let n = FlagKind::Number { min: 0.0, max: 100.0 };
        assert_eq!(n.parse("12.5"), Ok(FlagValue::Number(12.5)));
        assert!(n.parse("101").is_err());
        assert!(n.parse("NaN").is_err());
    }

    #[test]
    fn encoding_round_trips() {
        let n = FlagKind::Number { min: -1e9, max: 1e9 };
        for v in [FlagValue::Number(-3.25), FlagValue::Number(0.0)] {
            assert_eq!(FlagValue::decode(&n, v.encode()), v);
        }
        assert_eq!(FlagValue::decode(&FlagKind::Bool, FlagValue::Bool(true).encode()), FlagValue::Bool(true));
    }
}
