//! Memory attribution: the opt-in [`CostAllocator`] and the accounting behind it.

mod global;
pub(crate) mod ledger;

pub use global::CostAllocator;
pub use ledger::{SLOTS, ScriptedClock, TICK, is_installed};
