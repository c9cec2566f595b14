//! Faults requested by the caller through `x-chaos-*` headers, for contract tests through a real HTTP stack.
//!
//! Off unless the rule set enables them. A request asks with `x-chaos-delay-ms: N` and/or
//! `x-chaos-abort-status: S`, and proves it may with `x-chaos-token`, compared in constant time. Without a
//! matching token the headers are ignored, so the feature reveals nothing to a stranger. With one, a malformed
//! value is answered `400` and a delay is clamped to the configured maximum.

use std::time::Duration;

use ::http::{HeaderMap, HeaderName, StatusCode};
use subtle::ConstantTimeEq;

/// `x-chaos-delay-ms`.
pub static DELAY_HEADER: HeaderName = HeaderName::from_static("x-chaos-delay-ms");
/// `x-chaos-abort-status`.
pub static ABORT_HEADER: HeaderName = HeaderName::from_static("x-chaos-abort-status");
/// `x-chaos-token`.
pub static TOKEN_HEADER: HeaderName = HeaderName::from_static("x-chaos-token");

/// What the headers of one request ask for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Asked {
    /// Nothing (no fault header, or no valid token).
    Nothing,
    /// Faults to inject.
    Faults { delay: Option<Duration>, abort: Option<StatusCode> },
    /// An authenticated request with a malformed value: answer 400 with this reason.
    Invalid(&'static str),
}

/// Reads the fault headers of a request.
pub(crate) fn read(headers: &HeaderMap, token: &[u8], max_delay: Duration) -> Asked {
    let delay = headers.get(&DELAY_HEADER);
    let abort = headers.get(&ABORT_HEADER);
    if delay.is_none() && abort.is_none() {
        return Asked::Nothing;
    }
    let authorised = headers.get(&TOKEN_HEADER).is_some_and(|given| bool::from(given.as_bytes().ct_eq(token)));
    if !authorised {
        tracing::debug!("x-chaos-* headers without a valid x-chaos-token: ignored");
        return Asked::Nothing;
    }
    let delay = match delay.map(|v| parse_u64(v.as_bytes())) {
        None => None,
        Some(Some(ms)) => Some(Duration::from_millis(ms).min(max_delay)),
        Some(None) => {
            return Asked::Invalid("x-chaos-delay-ms must be a whole number of milliseconds");
        }
    };
    let abort = match abort.map(|v| parse_u64(v.as_bytes())) {
        None => None,
        Some(Some(code @ 100..=599)) => StatusCode::from_u16(code as u16).ok(),
        Some(_) => {
            return Asked::Invalid("x-chaos-abort-status must be an HTTP status within 100-599");
        }
    };
    Asked::Faults { delay, abort }
}

/// Decimal digits only; saturates instead of overflowing (a huge delay is then clamped).
fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let bytes = bytes.trim_ascii();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0'))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"0123456789abcdef";

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| ((*n).clone(), v.parse().unwrap())).collect()
    }

    #[test]
    fn ignored_without_the_right_token() {
        let max = Duration::from_secs(5);
        assert_eq!(read(&headers(&[(&DELAY_HEADER, "100")]), TOKEN, max), Asked::Nothing);
        let wrong = headers(&[(&DELAY_HEADER, "100"), (&TOKEN_HEADER, "0123456789abcdeX")]);
        assert_eq!(read(&wrong, TOKEN, max), Asked::Nothing);
    }

    #[test]
    fn delay_is_clamped_and_status_checked() {
        let max = Duration::from_secs(5);
        let h = headers(&[(&DELAY_HEADER, "99999999999999999999999"), (&TOKEN_HEADER, "0123456789abcdef")]);
        assert_eq!(read(&h, TOKEN, max), Asked::Faults { delay: Some(max), abort: None });
        let h = headers(&[(&ABORT_HEADER, "503"), (&TOKEN_HEADER, "0123456789abcdef")]);
        assert_eq!(read(&h, TOKEN, max), Asked::Faults { delay: None, abort: Some(StatusCode::SERVICE_UNAVAILABLE) });
        for bad in ["-5", "abc", "600", "99", ""] {
            let h = headers(&[(&ABORT_HEADER, bad), (&TOKEN_HEADER, "0123456789abcdef")]);
            assert!(matches!(read(&h, TOKEN, max), Asked::Invalid(_)), "{bad}");
        }
        let h = headers(&[(&DELAY_HEADER, "-1"), (&TOKEN_HEADER, "0123456789abcdef")]);
        assert!(matches!(read(&h, TOKEN, max), Asked::Invalid(_)));
    }
}
