//! The flag file, `configs/feature_flags.yaml`: which flags exist, their types, defaults and settings.
//!
//! ```yaml
//! flags:
//!   execution.partial_fill_mode:
//!     type: bool
//!     default: false
//!     value: true              # the file's setting; absent means the default
//!     description: accept partial fills when the venue is slow
//!   quotes.source:
//!     type: strategy
//!     options: [live, cached, stale]
//!     default: live
//!   api.shed_percent:
//!     type: number
//!     min: 0
//!     max: 100
//!     default: 0
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::error::FlagError;
use super::value::{FlagKind, FlagValue};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    flags: BTreeMap<String, RawFlag>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlag {
    #[serde(rename = "type")]
    kind: String,
    default: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    options: Option<Vec<String>>,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    description: Option<String>,
}

/// One flag as a file declares it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FlagSpec {
    /// The flag's name (`service.setting`).
    pub name: String,
    /// Its type.
    pub kind: FlagKind,
    /// The value when nothing sets it.
    pub default: FlagValue,
    /// The file's setting, if any.
    pub value: Option<FlagValue>,
    /// What the flag does.
    pub description: Option<String>,
}

/// A parsed and validated flag file.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct FlagFile {
    /// The flags, by name.
    pub flags: BTreeMap<String, FlagSpec>,
}

/// A valid flag name: lowercase letters, digits, `_`, `-` and `.` separators, starting with a letter.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !name.contains("..");
    if ok { Ok(()) } else { Err(format!("`{name}` is not a flag name (lowercase, digits, `.`, `_`, `-`)")) }
}

impl FlagFile {
    /// Parses YAML; `origin` names the file in errors.
    pub fn parse(text: &str, origin: Option<&Path>) -> Result<Self, FlagError> {
        let raw: RawFile =
            brownout_foundation::parse::yaml(text).map_err(|e| FlagError::new(e.field, e.reason).in_file(origin))?;
        let mut flags = BTreeMap::new();
        for (name, raw) in raw.flags {
            let spec = Self::check(&name, raw).map_err(|e| e.in_file(origin))?;
            flags.insert(name, spec);
        }
        Ok(Self { flags })
    }

    /// Reads and parses a file (see [`from_bytes`](Self::from_bytes)).
    pub fn read(path: &Path) -> Result<Self, FlagError> {
        let bytes = std::fs::read(path)
            .map_err(|e| FlagError::new("", format!("cannot read the file: {e}")).in_file(Some(path)))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses the contents of the file `path`. A file with nothing but blanks and comments is refused: it is
    /// far more often a write caught half-way than a wish to drop every flag to its default, which
    /// `flags: {}` says.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, FlagError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| FlagError::new("", format!("the file is not UTF-8: {e}")).in_file(Some(path)))?;
        if brownout_foundation::text::is_blank_document(text) {
            return Err(FlagError::new(
                "",
                "the file is empty (or only comments), as in a write caught half-way; write `flags: {}` for no flags",
            )
            .in_file(Some(path)));
        }
        Self::parse(text, Some(path))
    }

    fn check(name: &str, raw: RawFlag) -> Result<FlagSpec, FlagError> {
        let at = |f: &str| format!("flags.{name}.{f}");
        check_name(name).map_err(|r| FlagError::new(format!("flags.{name}"), r))?;
        let kind = match raw.kind.as_str() {
            "bool" => FlagKind::Bool,
            "strategy" => {
                let options = raw.options.clone().unwrap_or_default();
                if options.len() < 2 {
                    return Err(FlagError::new(at("options"), "a strategy flag needs at least two options"));
                }
                for (i, o) in options.iter().enumerate() {
                    if o.trim().is_empty() || options[..i].contains(o) {
                        return Err(FlagError::new(at("options"), format!("option `{o}` is empty or repeated")));
                    }
                }
                FlagKind::Strategy(options.into_iter().map(String::into_boxed_str).collect())
            }
            "number" => {
                let (min, max) = (raw.min.unwrap_or(f64::MIN), raw.max.unwrap_or(f64::MAX));
                if !(min.is_finite() && max.is_finite() && min <= max) {
                    return Err(FlagError::new(at("min"), format!("need finite min ≤ max, got [{min}, {max}]")));
                }
                FlagKind::Number { min, max }
            }
            other => {
                return Err(FlagError::new(at("type"), format!("`{other}` is not one of bool, strategy, number")));
            }
        };
        if !matches!(kind, FlagKind::Strategy(_)) && raw.options.is_some() {
            return Err(FlagError::new(at("options"), "only strategy flags have options"));
        }
        if !matches!(kind, FlagKind::Number { .. }) && (raw.min.is_some() || raw.max.is_some()) {
            return Err(FlagError::new(at("min"), "only number flags have min and max"));
        }
        let default = kind.parse(&raw.default).map_err(|r| FlagError::new(at("default"), r))?;
        let value = raw.value.map(|v| kind.parse(&v)).transpose().map_err(|r| FlagError::new(at("value"), r))?;
        Ok(FlagSpec { name: name.to_owned(), kind, default, value, description: raw.description })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "flags:\n  quotes.source:\n    type: strategy\n    options: [live, cached]\n    default: live\n    value: cached\n  api.shed_percent: { type: number, min: 0, max: 100, default: 0 }\n  execution.partial_fill_mode: { type: bool, default: false }\n";

    #[test]
    fn parses_every_type() {
        let file = FlagFile::parse(GOOD, None).unwrap();
        assert_eq!(file.flags["quotes.source"].value, Some(FlagValue::Strategy(1)));
        assert_eq!(file.flags["api.shed_percent"].default, FlagValue::Number(0.0));
        assert_eq!(file.flags["execution.partial_fill_mode"].default, FlagValue::Bool(false));
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("flags: { a.b: { type: bool, default: maybe } }", "flags.a.b.default", "not a bool"),
            ("flags: { a.b: { type: number, min: 0, max: 10, default: 11 } }", "flags.a.b.default", "outside"),
            ("flags: { a.b: { type: strategy, options: [x], default: x } }", "flags.a.b.options", "two options"),
            ("flags: { a.b: { type: colour, default: red } }", "flags.a.b.type", "not one of"),
            ("flags: { a.b: { type: bool, default: true, colour: red } }", "flags.a.b.colour", "unknown field"),
            ("flags: { A.B: { type: bool, default: true } }", "flags.A.B", "not a flag name"),
            ("flags: { a.b: { type: bool, default: true, value: sometimes } }", "flags.a.b.value", "not a bool"),
        ];
        for (text, field, reason) in cases {
            let err = FlagFile::parse(text, Some(Path::new("f.yaml"))).unwrap_err();
            assert_eq!(err.field(), field, "{text}: {err}");
            assert!(err.reason().contains(reason), "{text}: {err}");
            assert_eq!(err.file(), Some(Path::new("f.yaml")));
        }
    }
}
