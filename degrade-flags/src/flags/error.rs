//! The error of flag files and flag values: it names the file, the field and the reason.

use std::fmt;
use std::path::{Path, PathBuf};

/// A flag file, flag name or value that was refused. The flags in force before stay in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    file: Option<PathBuf>,
    field: String,
    reason: String,
}

impl FlagError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { file: None, field: field.into(), reason: reason.into() }
    }

    pub(crate) fn in_file(mut self, file: Option<&Path>) -> Self {
        if self.file.is_none() {
            self.file = file.map(Path::to_path_buf);
        }
        self
    }

    /// The file, when the error came from one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The field, such as `flags.quotes.source.default`; empty for the whole document.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why it was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: ", file.display())?,
            None => f.write_str("flags: ")?,
        }
        if self.field.is_empty() { f.write_str(&self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}

impl std::error::Error for FlagError {}
