//! Degrade flags as OpenFeature sees them: a flag's value with the reason, the variant and the error code the
//! [OpenFeature specification](https://openfeature.dev/specification/types) names.
//!
//! [`resolve`] is protocol-neutral and always built: the admin API's OFREP endpoints use it. With the
//! feature `openfeature`, `DegradeProvider` serves the same resolutions to the OpenFeature Rust SDK.
//!
//! | flag | its OpenFeature type | value |
//! |---|---|---|
//! | `bool` | boolean | the flag's value |
//! | `strategy` | string | the option's name (`cached`) |
//! | `number` | float, and integer when the value is a whole number | the number |
//!
//! The reason says which source decided ([`Source`]): `DEFAULT` for the flag's default, `TARGETING_MATCH` when a
//! trigger set it (the trigger's name is in the metadata), `STATIC` for a person's setting (the flag file's
//! `value:`, the environment, an override). Asking for another type is `TYPE_MISMATCH`; an unknown flag is
//! `FLAG_NOT_FOUND`. The evaluation context is not used: degrade flags are per process, not per user.

#[cfg(feature = "openfeature")]
mod provider;

use std::fmt;

#[cfg(feature = "openfeature")]
pub use provider::DegradeProvider;

use crate::flags::{FlagKind, Flags, Source};

/// Why a flag has its value, as the OpenFeature specification spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// A person's setting: the flag file's `value:`, the environment or an override.
    Static,
    /// Nothing set the flag: its default.
    Default,
    /// A degrade trigger set the flag.
    TargetingMatch,
}

impl Reason {
    /// `STATIC`, `DEFAULT` or `TARGETING_MATCH`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::Default => "DEFAULT",
            Reason::TargetingMatch => "TARGETING_MATCH",
        }
    }

    fn of(source: &Source) -> Reason {
        match source {
            Source::Default => Reason::Default,
            Source::Trigger(_) => Reason::TargetingMatch,
            Source::Override | Source::Env | Source::File => Reason::Static,
        }
    }
}

/// An evaluation error's code, as the OpenFeature specification spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No flag has this key.
    FlagNotFound,
    /// The flag's type is not the one asked for.
    TypeMismatch,
}

impl ErrorCode {
    /// `FLAG_NOT_FOUND` or `TYPE_MISMATCH`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
        }
    }
}

/// A flag that could not be evaluated: the code and a sentence that names the flag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolveError {
    /// The OpenFeature error code.
    pub code: ErrorCode,
    /// What went wrong, naming the flag.
    pub details: String,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.details)
    }
}

impl std::error::Error for ResolveError {}

/// A flag's value in its OpenFeature type.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::exhaustive_enums, reason = "every reader (OFREP, the OpenFeature provider) must map every value type")]
pub enum ResolvedValue {
    /// A bool flag.
    Bool(bool),
    /// A strategy flag: the option's name.
    String(String),
    /// A number flag.
    Number(f64),
}

/// One flag, evaluated: what OpenFeature calls resolution details.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Resolution {
    /// The flag's name.
    pub key: String,
    /// Its value.
    pub value: ResolvedValue,
    /// The value as the flag file spells it (`true`, `cached`, `50`).
    pub variant: String,
    /// Why it has this value.
    pub reason: Reason,
    /// The source that decided (its `Display`: `default`, `file`, `env`, `override`, `trigger:<name>`).
    pub source: Source,
}

/// The largest integer an `f64` holds exactly (2^53).
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

impl Resolution {
    /// The metadata OpenFeature shows beside the value: `source` (`default`, `file`, `env`, `override`,
    /// `trigger`) and, when a trigger set it, `trigger` (its name).
    pub fn metadata(&self) -> Vec<(&'static str, String)> {
        match &self.source {
            Source::Trigger(name) => vec![("source", "trigger".to_owned()), ("trigger", name.to_string())],
            other => vec![("source", other.to_string())],
        }
    }

    fn mismatch(&self, wanted: &str) -> ResolveError {
        let kind = match self.value {
            ResolvedValue::Bool(_) => "a bool flag",
            ResolvedValue::String(_) => "a strategy flag (a string)",
            ResolvedValue::Number(_) => "a number flag",
        };
        ResolveError { code: ErrorCode::TypeMismatch, details: format!("flag `{}` is {kind}, not {wanted}", self.key) }
    }

    /// The value of a bool flag.
    pub fn as_bool(&self) -> Result<bool, ResolveError> {
        match self.value {
            ResolvedValue::Bool(b) => Ok(b),
            _ => Err(self.mismatch("a boolean")),
        }
    }

    /// The option of a strategy flag.
    pub fn as_string(&self) -> Result<String, ResolveError> {
        match &self.value {
            ResolvedValue::String(s) => Ok(s.clone()),
            _ => Err(self.mismatch("a string")),
        }
    }

    /// The value of a number flag.
    pub fn as_float(&self) -> Result<f64, ResolveError> {
        match self.value {
            ResolvedValue::Number(n) => Ok(n),
            _ => Err(self.mismatch("a float")),
        }
    }

    /// The value of a number flag that holds a whole number (a fraction is `TYPE_MISMATCH`).
    pub fn as_int(&self) -> Result<i64, ResolveError> {
        match self.value {
            ResolvedValue::Number(n) if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INT => Ok(n as i64),
            ResolvedValue::Number(n) => Err(ResolveError {
                code: ErrorCode::TypeMismatch,
                details: format!("flag `{}` is {n}, not an integer", self.key),
            }),
            _ => Err(self.mismatch("an integer")),
        }
    }
}

/// Evaluates flag `key`: its value in force, its variant, the reason and the source.
pub fn resolve(flags: &Flags, key: &str) -> Result<Resolution, ResolveError> {
    let not_found = || ResolveError { code: ErrorCode::FlagNotFound, details: format!("no flag `{key}`") };
    let kind = flags.kind(key).map_err(|_| not_found())?;
    let (variant, source) = flags.get(key).map_err(|_| not_found())?;
    // The registry writes the value in the flag's own syntax: `true`/`false`, the option's name, and a number
    // in Rust's shortest form, which reads back to the same `f64`.
    let value = match kind {
        FlagKind::Bool => ResolvedValue::Bool(variant == "true"),
        FlagKind::Strategy(_) => ResolvedValue::String(variant.clone()),
        FlagKind::Number { .. } => ResolvedValue::Number(variant.parse().unwrap_or(f64::NAN)),
    };
    let reason = Reason::of(&source);
    Ok(Resolution { key: key.to_owned(), value, variant, reason, source })
}

/// Evaluates every flag, by name.
pub fn resolve_all(flags: &Flags) -> Vec<Resolution> {
    let mut names: Vec<String> = flags.list().into_iter().map(|f| f.name).collect();
    names.sort();
    names.iter().filter_map(|name| resolve(flags, name).ok()).collect()
}
