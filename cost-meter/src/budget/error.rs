//! The error of budget files: it names the file, the field and the reason.

use std::fmt;

brownout_foundation::field_error! {
    /// A budget file, or one field of it, that was refused.
    ///
    /// `Display` reads `configs/budgets/x.yaml: alert_thresholds.warn: must be below critical (0.9), got 0.95`.
    pub struct BudgetError { subject: "budget", field_example: "guardrails.max_concurrency_at_critical" }
}

/// Every error found in a budget file or a directory of them (loading reports all of them, not just the first).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_structs, reason = "a newtype: its one field is the value")]
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
