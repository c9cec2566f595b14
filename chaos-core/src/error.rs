//! The one error type of config loading: it names the file, the field and the reason.

use std::fmt;
use std::path::{Path, PathBuf};

/// A chaos config that was rejected. The rule set that was active before stays active.
///
/// `Display` reads `configs/chaos/x.yaml: rules[2].sample.rate: must be within [0, 1], got 1.5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: Option<PathBuf>,
    field: String,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { file: None, field: field.into(), reason: reason.into() }
    }

    pub(crate) fn in_file(mut self, file: Option<&Path>) -> Self {
        if self.file.is_none() {
            self.file = file.map(Path::to_path_buf);
        }
        self
    }

    /// The file the config came from, when it came from one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The path of the offending field, such as `rules[2].sample.rate`; empty for the document as a whole.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why the value was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: ", file.display())?,
            None => f.write_str("chaos config: ")?,
        }
        if self.field.is_empty() { f.write_str(&self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}

impl std::error::Error for ConfigError {}
