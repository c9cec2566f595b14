//! YAML and JSON documents into serde types, with the path of the field an error is about.
//!
//! ```
//! #[derive(Debug, serde::Deserialize)]
//! struct Doc {
//!     #[allow(dead_code)]
//!     rules: Vec<Rule>,
//! }
//! #[derive(Debug, serde::Deserialize)]
//! struct Rule {
//!     #[allow(dead_code)]
//!     rate: f64,
//! }
//!
//! let e = brownout_foundation::parse::yaml::<Doc>("rules:\n  - rate: 0.5\n  - rate: lots\n").unwrap_err();
//! assert_eq!(e.field, "rules[1].rate");
//! let e = brownout_foundation::parse::json::<Doc>(r#"{"rules": [{"rate": "x"}]}"#).unwrap_err();
//! assert_eq!(e.field, "rules[0].rate");
//! ```

use std::fmt;

use serde::de::DeserializeOwned;

/// A document that was refused: the path of the offending field (`rules[2].sample.rate`; empty for the
/// document as a whole) and the parser's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathError {
    /// The path of the offending field; empty for the whole document.
    pub field: String,
    /// Why it was refused.
    pub reason: String,
}

impl PathError {
    fn new(field: String, reason: impl Into<String>) -> Self {
        // `serde_path_to_error` names the root `.`.
        let field = if field == "." { String::new() } else { field };
        Self { field, reason: reason.into() }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}

impl std::error::Error for PathError {}

/// Parses YAML (`serde-saphyr`, without source snippets in messages) into `T`. Stops at the first error.
///
/// # Errors
///
/// Invalid YAML, or a document that does not fit `T`, with the field path.
#[cfg(feature = "yaml")]
pub fn yaml<T: DeserializeOwned>(text: &str) -> Result<T, PathError> {
    let options = serde_saphyr::options! { with_snippet: false };
    let mut field = String::new();
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            field = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| PathError::new(field, e.to_string().trim_start_matches("error: ")))
}

/// Parses JSON into `T`; anything but whitespace after the value is refused. Stops at the first error.
///
/// # Errors
///
/// Invalid JSON, a document that does not fit `T` (with the field path), or trailing characters.
pub fn json<T: DeserializeOwned>(text: &str) -> Result<T, PathError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| PathError::new(e.path().to_string(), e.into_inner().to_string()))?;
    de.end().map_err(|e| PathError::new(String::new(), e.to_string()))?;
    Ok(value)
}

// The tests read YAML beside JSON.
#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        name: String,
        #[serde(default)]
        limits: BTreeMap<String, Limit>,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Limit {
        max: u32,
    }

    #[test]
    fn yaml_errors_name_the_field() {
        let e = yaml::<Doc>("name: a\nlimits:\n  cpu: { max: -1 }\n").unwrap_err();
        assert_eq!(e.field, "limits.cpu.max");
        assert!(!e.reason.starts_with("error: "), "{e}");
        assert!(e.to_string().starts_with("limits.cpu.max: "), "{e}");
        let e = yaml::<Doc>("name: a\nextra: 1\n").unwrap_err();
        assert!(e.reason.contains("extra"), "{e}");
        let e = yaml::<Doc>("limits: {}\n").unwrap_err();
        assert_eq!(e.field, "", "a missing field is the document's");
        assert!(e.reason.contains("name"), "{e}");
        assert!(yaml::<Doc>("name: [unclosed\n").is_err());
    }

    #[test]
    fn yaml_and_json_read_the_same_document() {
        let want = Doc { name: "a".into(), limits: BTreeMap::from([("cpu".into(), Limit { max: 3 })]) };
        assert_eq!(yaml::<Doc>("name: a\nlimits:\n  cpu:\n    max: 3\n"), Ok(want));
        let want = Doc { name: "a".into(), limits: BTreeMap::from([("cpu".into(), Limit { max: 3 })]) };
        assert_eq!(json::<Doc>(r#"{"name": "a", "limits": {"cpu": {"max": 3}}}"#), Ok(want));
    }

    #[test]
    fn json_errors_name_the_field_and_trailing_text_is_refused() {
        let e = json::<Doc>(r#"{"name": "a", "limits": {"cpu": {"max": "x"}}}"#).unwrap_err();
        assert_eq!(e.field, "limits.cpu.max");
        let e = json::<Doc>(r#"{"name": "a"} {"#).unwrap_err();
        assert_eq!(e.field, "");
        assert!(e.reason.contains("trailing"), "{e}");
        assert_eq!(e.to_string(), e.reason);
    }

    proptest! {
        #[test]
        fn a_bad_limit_is_named_by_its_key(key in "[a-z]{1,8}", value in "[a-z]{1,8}") {
            let e = yaml::<Doc>(&format!("name: a\nlimits:\n  {key}:\n    max: {value}\n")).unwrap_err();
            prop_assert_eq!(&e.field, &format!("limits.{key}.max"));
            let e = json::<Doc>(&format!(r#"{{"name": "a", "limits": {{"{key}": {{"max": "{value}"}}}}}}"#)).unwrap_err();
            prop_assert_eq!(e.field, format!("limits.{key}.max"));
        }

        #[test]
        fn any_text_parses_or_errs_without_panic(text in "\\PC{0,60}") {
            let _ = yaml::<Doc>(&text);
            let _ = json::<Doc>(&text);
        }
    }
}
