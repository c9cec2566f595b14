//! CPU-hour and memory-GB-hour metering per job span, budgets and guardrails for Brownout.
//!
//! The README's cost-meter section says what is built and how to use it.
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

mod labels;
mod record;

pub use labels::{Labels, Tier, UnknownTier};
pub use record::{BYTES_PER_GB, BadRecord, CpuMode, JobRecord, MemoryMode, gb_hours, read_records};

// budgets
pub mod budget;
