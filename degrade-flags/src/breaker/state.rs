//! States, forced states and transitions, and how they are packed into the breaker's one state word.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The phase of the breaker's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum State {
    /// Calls are admitted and their outcomes judged over the sliding window.
    Closed,
    /// Calls are rejected until the open duration has passed.
    Open,
    /// A bounded number of probe calls are admitted; they decide between closed and open.
    HalfOpen,
}

impl State {
    /// The lowercase name used in metrics labels and logs: `closed`, `open`, `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }

    pub(crate) fn bits(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }

    fn from_bits(bits: u64) -> Self {
        match bits & PHASE_MASK {
            0 => State::Closed,
            1 => State::Open,
            _ => State::HalfOpen,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An override of the state machine, meant to be driven by a degrade flag.
///
/// Entering or leaving any forced state restarts the state machine: closed, with an empty window and no
/// backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ForcedState {
    /// No override: the state machine decides.
    #[default]
    None,
    /// Isolate the dependency: every call is rejected (and counted as `rejected`).
    ForcedOpen,
    /// Every call is admitted and recorded in the window (the snapshot shows the rates), but the breaker
    /// never opens.
    ForcedClosed,
    /// Every call is admitted and nothing is recorded: no window, no call metrics. The cheapest mode.
    Disabled,
    /// The state machine runs as usual (transitions, events, metrics, snapshot) but every call is admitted,
    /// including those it would reject: a dry run. Calls admitted this way are counted in the call metrics
    /// but change nothing in the machine.
    MetricsOnly,
}

impl ForcedState {
    /// The snake-case name: `none`, `forced_open`, `forced_closed`, `disabled`, `metrics_only`.
    pub fn as_str(self) -> &'static str {
        match self {
            ForcedState::None => "none",
            ForcedState::ForcedOpen => "forced_open",
            ForcedState::ForcedClosed => "forced_closed",
            ForcedState::Disabled => "disabled",
            ForcedState::MetricsOnly => "metrics_only",
        }
    }

    pub(crate) fn bits(self) -> u64 {
        (match self {
            ForcedState::None => 0,
            ForcedState::ForcedOpen => 1,
            ForcedState::ForcedClosed => 2,
            ForcedState::Disabled => 3,
            ForcedState::MetricsOnly => 4,
        }) << FORCED_SHIFT
    }

    fn from_bits(bits: u64) -> Self {
        match (bits & FORCED_MASK) >> FORCED_SHIFT {
            0 => ForcedState::None,
            1 => ForcedState::ForcedOpen,
            2 => ForcedState::ForcedClosed,
            3 => ForcedState::Disabled,
            _ => ForcedState::MetricsOnly,
        }
    }
}

impl fmt::Display for ForcedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`ForcedState`] from a string (for example a flag value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownForcedState(String);

impl fmt::Display for UnknownForcedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown forced state `{}`: expected none, forced_open, forced_closed, disabled or metrics_only",
            self.0
        )
    }
}

impl std::error::Error for UnknownForcedState {}

impl FromStr for ForcedState {
    type Err = UnknownForcedState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "none" => ForcedState::None,
            "forced_open" => ForcedState::ForcedOpen,
            "forced_closed" => ForcedState::ForcedClosed,
            "disabled" => ForcedState::Disabled,
            "metrics_only" => ForcedState::MetricsOnly,
            other => return Err(UnknownForcedState(other.to_owned())),
        })
    }
}

/// What the breaker reports: its phase under its override.
///
/// The `circuit_breaker_state{breaker}` gauge is [`Status::code`]; the `from` and `to` labels of
/// `circuit_breaker_transitions_total` are [`Status::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The phase of the state machine (closed while forced open, forced closed or disabled).
    pub state: State,
    /// The override in force.
    pub forced: ForcedState,
}

impl Status {
    /// The label of this status: the phase's name (`closed`, `open`, `half_open`) when nothing or
    /// metrics-only is forced, else the forced state's name (`forced_open`, `forced_closed`, `disabled`).
    pub fn label(self) -> &'static str {
        match self.forced {
            ForcedState::None | ForcedState::MetricsOnly => self.state.as_str(),
            forced => forced.as_str(),
        }
    }

    /// The value of the `circuit_breaker_state` gauge: 0 closed, 1 open, 2 half-open, 3 forced open,
    /// 4 forced closed, 5 disabled. Metrics-only reports the phase of the machine (0, 1 or 2).
    pub fn code(self) -> u8 {
        match self.forced {
            ForcedState::None | ForcedState::MetricsOnly => self.state.bits() as u8,
            ForcedState::ForcedOpen => 3,
            ForcedState::ForcedClosed => 4,
            ForcedState::Disabled => 5,
        }
    }
}

/// A change of [`Status`], as given to a listener (see [`CircuitBreaker::with_listener`]).
///
/// [`CircuitBreaker::with_listener`]: super::CircuitBreaker::with_listener
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition {
    /// Before the change.
    pub from: Status,
    /// After the change.
    pub to: Status,
    /// When it happened: nanoseconds on the breaker's clock since the breaker was built.
    pub at_nanos: u64,
}

// The state word: bits 0..2 the phase, bits 2..5 the forced state, bits 8.. a generation bumped by every
// change, so a permit taken before a change can tell it is stale.
pub(crate) const PHASE_MASK: u64 = 0b11;
pub(crate) const FORCED_SHIFT: u32 = 2;
pub(crate) const FORCED_MASK: u64 = 0b111 << FORCED_SHIFT;
pub(crate) const STATUS_MASK: u64 = PHASE_MASK | FORCED_MASK;
pub(crate) const GENERATION_ONE: u64 = 1 << 8;

pub(crate) fn status_of(word: u64) -> Status {
    Status { state: State::from_bits(word), forced: ForcedState::from_bits(word) }
}

/// The next word: same generation + 1, the given phase and override.
pub(crate) fn next_word(word: u64, state: State, forced: ForcedState) -> u64 {
    ((word & !STATUS_MASK).wrapping_add(GENERATION_ONE)) | state.bits() | forced.bits()
}
