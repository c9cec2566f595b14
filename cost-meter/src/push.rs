//! Pushing a finished job's cost to a Prometheus Pushgateway: the convention for batch jobs, which end before
//! a scrape could see them.
//!
//! [`push`] sends the metrics of [`exposition`] with `PUT /metrics/job/cost_meter_run/<label>@base64/<value>…`
//! (the grouping key is the job's non-empty labels, never its id: one group per label set, as the
//! metrics facade keeps per-job ids out of labels). A `PUT` replaces the group's metrics, so the group holds
//! the last run of that label set; Prometheus scrapes the Pushgateway (with `honor_labels: true`) and the
//! recording rules sum over the series. Plain HTTP only (a Pushgateway on the cluster network or loopback).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::{JobRecord, Labels};

/// The `job` of the grouping key.
pub const PUSH_JOB: &str = "cost_meter_run";

/// The metrics of one finished run in the text exposition format (version 0.0.4), without labels: the
/// grouping key carries them.
///
/// ```
/// use brownout_cost::{CpuMode, JobRecord, Labels, MemoryMode};
/// let record = JobRecord::new("bt-1", Labels::new("research", "backtester"), 1.0e9, 10.0)
///     .cpu(18.5, CpuMode::ChildRusage)
///     .memory(2.0e9, MemoryMode::TreeRss)
///     .peak_bytes(300_000_000);
/// let text = brownout_cost::push::exposition(&record, Some(0));
/// assert!(text.contains("cost_meter_run_cpu_seconds 18.5\n"));
/// assert!(text.contains("cost_meter_run_last_completion_timestamp_seconds 1000000010\n"));
/// ```
pub fn exposition(record: &JobRecord, exit: Option<u8>) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: f64| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"));
    };
    gauge(
        "cost_meter_run_cpu_seconds",
        "CPU seconds of the last run (the kernel's rusage of its tree).",
        record.cpu_seconds,
    );
    gauge(
        "cost_meter_run_memory_byte_seconds",
        "Resident memory of the last run's process tree integrated over time, in byte-seconds.",
        record.memory_byte_seconds,
    );
    gauge("cost_meter_run_wall_seconds", "Wall time of the last run, in seconds.", record.wall_seconds);
    gauge(
        "cost_meter_run_peak_resident_bytes",
        "Peak resident memory of the last run's tree.",
        record.peak_bytes as f64,
    );
    gauge(
        "cost_meter_run_cache_hit",
        "1 if the last run was served from the result cache.",
        f64::from(u8::from(record.cache_hit)),
    );
    if let Some(code) = exit {
        gauge("cost_meter_run_exit_code", "Exit status of the last run (128+N: killed by signal N).", f64::from(code));
    }
    gauge(
        "cost_meter_run_last_completion_timestamp_seconds",
        "When the last run finished, Unix seconds.",
        (record.started_at_unix + record.wall_seconds).round(),
    );
    out
}

/// URL-safe base64 (RFC 4648 §5) with padding, as the Pushgateway reads `label@base64/value`.
fn base64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The path of a push for `labels`: `/metrics/job/cost_meter_run` then every non-empty label.
pub fn push_path(labels: &Labels) -> String {
    let mut path = format!("/metrics/job/{PUSH_JOB}");
    for name in Labels::NAMES {
        let value = labels.get(name).unwrap_or_default();
        if !value.is_empty() {
            path.push_str(&format!("/{name}@base64/{}", base64url(value.as_bytes())));
        }
    }
    path
}

/// Pushes `record` to the Pushgateway at `url` (`http://host:port`, optionally with a path prefix) with
/// `PUT`; an error names what failed (the address, or the status and body the Pushgateway answered).
pub fn push(url: &str, record: &JobRecord, exit: Option<u8>) -> io::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "only http:// URLs are supported"))?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("`{authority}` resolves to nothing")))?;
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = exposition(record, exit);
    let request = format!(
        "PUT {prefix}{} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: text/plain; version=0.0.4\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        push_path(&record.labels),
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else {
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b.trim());
        Err(io::Error::other(format!("answered {status}: {body}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(text: &str) -> Vec<u8> {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let vals: Vec<u32> =
            text.bytes().filter(|b| *b != b'=').map(|b| ABC.iter().position(|a| *a == b).unwrap() as u32).collect();
        let mut out = Vec::new();
        for c in vals.chunks(4) {
            let n = c.iter().enumerate().fold(0u32, |n, (i, v)| n | (v << (18 - 6 * i)));
            for i in 0..c.len() - 1 {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        out
    }

    proptest! {
        #[test]
        fn base64url_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let text = base64url(&bytes);
            prop_assert_eq!(text.len() % 4, 0);
            prop_assert_eq!(decode(&text), bytes);
        }
    }

    #[test]
    fn known_base64url_values() {
        assert_eq!(base64url(b"research"), "cmVzZWFyY2g=");
        assert_eq!(base64url(b"a/b?"), "YS9iPw==");
        assert_eq!(
            push_path(&Labels::new("r", "s")),
            "/metrics/job/cost_meter_run/team@base64/cg==/service@base64/cw==/tier@base64/aW50ZXJhY3RpdmU="
        );
    }
}
