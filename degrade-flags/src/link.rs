//! Flags that drive breakers: a strategy flag whose options are forced-state names.

use std::sync::Arc;

use crate::breaker::{CircuitBreaker, ForcedState};
use crate::flags::{FlagError, FlagKind, Flags};

/// Keeps `breaker`'s forced state equal to the strategy flag `flag`, now and on every change.
///
/// The flag's options must all be forced-state names: `none`, `forced_open` (isolate the dependency),
/// `forced_closed`, `disabled`, `metrics_only`. For example, in `configs/feature_flags.yaml`:
///
/// ```yaml
/// flags:
///   quotes.breaker:
///     type: strategy
///     options: [none, forced_open, forced_closed, disabled, metrics_only]
///     default: none
/// ```
pub fn force_from_flag(flags: &Flags, flag: &str, breaker: Arc<CircuitBreaker>) -> Result<(), FlagError> {
    let handle = flags.strategy(flag)?;
    if let FlagKind::Strategy(options) = flags.kind(flag)?
        && let Some(bad) = options.iter().find(|o| o.parse::<ForcedState>().is_err())
    {
        return Err(FlagError::new(flag, format!("option `{bad}` is not a forced state")));
    }
    let current: ForcedState = handle.get().parse().map_err(|e| FlagError::new(flag, format!("{e}")))?;
    breaker.force(current);
    let name: Arc<str> = handle.name().into();
    flags.subscribe(move |change| {
        if change.flag == name
            && let Ok(forced) = change.new.parse::<ForcedState>()
        {
            breaker.force(forced);
        }
    });
    Ok(())
}
