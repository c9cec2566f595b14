//! The caller's gRPC deadline: the `grpc-timeout` request header.

use std::time::Duration;

use ::http::HeaderMap;

/// The `grpc-timeout` header's value as a duration, or `None` when it is absent or malformed (then a hang
/// runs to its `max`). The gRPC-over-HTTP/2 grammar: 1 to 8 ASCII digits, then a unit: `H` hours, `M`
/// minutes, `S` seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds.
pub(crate) fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?;
    let deadline = parse(value.as_bytes());
    if deadline.is_none() {
        tracing::debug!(
            ?value,
            "malformed grpc-timeout (1 to 8 digits, then H, M, S, m, u or n): the hang runs to its max"
        );
    }
    deadline
}

fn parse(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reads_each_unit() {
        assert_eq!(parse(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse(b"3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse(b"5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse(b"7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        for bad in [&b""[..], b"m", b"5", b"5s", b"123456789S", b"-5S", b" 5S", b"5 S", b"1.5S"] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn every_valid_value_reads_back(n in 0u64..100_000_000, unit in prop::sample::select(&b"HMSmun"[..])) {
            let value = format!("{n}{}", unit as char);
            let expected = match unit {
                b'H' => Duration::from_secs(n * 3600),
                b'M' => Duration::from_secs(n * 60),
                b'S' => Duration::from_secs(n),
                b'm' => Duration::from_millis(n),
                b'u' => Duration::from_micros(n),
                _ => Duration::from_nanos(n),
            };
            prop_assert_eq!(parse(value.as_bytes()), Some(expected));
        }

        #[test]
        fn any_bytes_parse_without_panic(value in prop::collection::vec(any::<u8>(), 0..12)) {
            let _ = parse(&value);
        }
    }
}
