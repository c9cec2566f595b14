//! The typed error of the generic flavour.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use brownout_chaos::{BodyFault, FaultKind, GrpcCode, Outcome};

/// A fault injected by a chaos rule, as an error: retries, breakers and dashboards can tell it from a real
/// one with `err.is::<InjectedError>()`.
#[derive(Debug, Clone)]
pub struct InjectedError {
    rule: Arc<str>,
    kind: FaultKind,
    detail: Detail,
}

#[derive(Debug, Clone)]
enum Detail {
    None,
    Status(u16, Arc<str>),
    Grpc(GrpcCode, Arc<str>),
    RetryAfter(Duration),
    HangElapsed(Duration),
}

impl InjectedError {
    pub(crate) fn from_outcome(rule: Arc<str>, outcome: &Outcome) -> Self {
        let detail = match outcome {
            Outcome::Error(e) => match e.grpc {
                Some(code) => Detail::Grpc(code, e.message.clone()),
                None => Detail::Status(e.status.as_u16(), e.message.clone()),
            },
            Outcome::RateLimit(r) => Detail::RetryAfter(Duration::from_secs(r.retry_after_secs)),
            Outcome::Hang { max } => Detail::HangElapsed(*max),
            Outcome::Reset => Detail::None,
        };
        Self { rule, kind: outcome.kind(), detail }
    }

    /// A body fault (throttle, truncate) of `rule`.
    pub(crate) fn from_body_fault(rule: Arc<str>, fault: &BodyFault) -> Self {
        let kind = match fault {
            BodyFault::Throttle { .. } => FaultKind::Throttle,
            BodyFault::Truncate { .. } => FaultKind::Truncate,
        };
        Self { rule, kind, detail: Detail::None }
    }

    /// The name of the rule that injected the fault.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The kind of fault.
    pub fn kind(&self) -> FaultKind {
        self.kind
    }

    /// For a rate-limit fault, how long the caller should wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.detail {
            Detail::RetryAfter(d) => Some(d),
            _ => None,
        }
    }

    /// For an error fault with an HTTP status, that status.
    pub fn status(&self) -> Option<u16> {
        match self.detail {
            Detail::Status(s, _) => Some(s),
            _ => None,
        }
    }

    /// For an error fault with a gRPC code, that code.
    pub fn grpc_code(&self) -> Option<GrpcCode> {
        match self.detail {
            Detail::Grpc(c, _) => Some(c),
            _ => None,
        }
    }
}

impl fmt::Display for InjectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chaos rule `{}` injected {}", self.rule, self.kind)?;
        match &self.detail {
            Detail::None => Ok(()),
            Detail::Status(_, message) | Detail::Grpc(_, message) => write!(f, ": {message}"),
            Detail::RetryAfter(d) => write!(f, " (retry after {}s)", d.as_secs()),
            Detail::HangElapsed(d) => write!(f, " (gave up after {d:?})"),
        }
    }
}

impl std::error::Error for InjectedError {}
