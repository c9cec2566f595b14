//! Degrade flags: typed switches for degrade modes, read with one atomic load.
//!
//! - [`Flags`]: the registry; values from overrides, the environment, triggers and the flag file, in that order.
//! - [`BoolFlag`], [`StrategyFlag`], [`NumberFlag`]: handles whose `get` is one relaxed atomic load.
//! - [`FlagFile`]: the `configs/feature_flags.yaml` format; [`FlagWatcher`] reloads it on change, over
//!   [`FileWatcher`], which calls a function on every change of any file.
//! - [`Hysteresis`] and [`Trigger`]: flip a flag from a signal.
//! - [`edit::set_value`]: the in-place edit behind `degrade set`.
//!
//! Every change of a value logs `degrade_mode=ON|OFF flag=<name> value=… source=… by=trigger|manual` through
//! `tracing` (ON when the flag is away from its default; `by=trigger` when a trigger made the change) and sets
//! the gauge `degrade_flag{flag}` (0/1 for a bool, the option's index for a strategy, the number for a number).

pub mod edit;
mod error;
mod file;
mod registry;
mod trigger;
mod value;
mod watch;

pub use error::FlagError;
pub use file::{FlagFile, FlagSpec};
pub use registry::{BoolFlag, FlagChange, FlagInfo, Flags, NumberFlag, Source, StrategyFlag, env_var};
pub use trigger::{Hysteresis, Trigger};
pub use value::{FlagKind, FlagValue};
pub use watch::{FileWatcher, FlagWatcher};
