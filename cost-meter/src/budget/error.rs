//! The error of budget files: it names the file, the field and the reason.

use std::fmt;
use std::path::{Path, PathBuf};

/// A budget file, or one field of it, that was refused.
///
/// `Display` reads `configs/budgets/x.yaml: alert_thresholds.warn: must be below critical (0.9), got 0.95`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetError {
    file: Option<PathBuf>,
    field: String,
    reason: String,
}

impl BudgetError {
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

    /// The path of the offending field, such as `guardrails.max_concurrency_at_critical`; empty for the whole
    /// document.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Why it was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}: ", file.display())?,
            None => f.write_str("budget: ")?,
        }
        if self.field.is_empty() { f.write_str(&self.reason) } else { write!(f, "{}: {}", self.field, self.reason) }
    }
}

impl std::error::Error for BudgetError {}

/// Every error found in a budget file or a directory of them (loading reports all of them, not just the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetErrors(pub Vec<BudgetError>);

impl BudgetErrors {
    /// The errors, in file order.
    pub fn errors(&self) -> &[BudgetError] {
        &self.0
    }
}

impl fmt::Display for BudgetErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BudgetErrors {}

impl From<BudgetError> for BudgetErrors {
    fn from(e: BudgetError) -> Self {
        BudgetErrors(vec![e])
    }
}
