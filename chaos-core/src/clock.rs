//! Injectable time: the rule windows, the TTL and the SLO guard read a [`Clock`], so tests can move time by
//! hand. The clock is Brownout's one clock ([`brownout_foundation::clock`]), shared with the circuit breakers and
//! the degrade triggers; chaos-tower plugs in its `TokioClock`, so tests under `tokio::time::pause` see rule
//! windows move with the paused time.

pub use brownout_foundation::clock::{Clock, ManualClock, SystemClock};
