//! Per-phase statistics, recovery time and the verdict of a scenario.

use std::time::Duration;

use serde::Serialize;

use super::load::Sample;

/// What one phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseStats {
    pub requests: usize,
    pub user_errors: usize,
    pub fallbacks: usize,
    pub error_rate: f64,
    pub throughput_rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl PhaseStats {
    pub fn of(samples: &[Sample], span: Duration) -> Self {
        let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
        latencies.sort();
        let user_errors = samples.iter().filter(|s| !s.ok).count();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        PhaseStats {
            requests: samples.len(),
            user_errors,
            fallbacks: samples.iter().filter(|s| s.fallback).count(),
            error_rate: if samples.is_empty() { 0.0 } else { user_errors as f64 / samples.len() as f64 },
            throughput_rps: samples.len() as f64 / span.as_secs_f64().max(1e-9),
            p50_ms: ms(percentile(&latencies, 0.50)),
            p95_ms: ms(percentile(&latencies, 0.95)),
            p99_ms: ms(percentile(&latencies, 0.99)),
        }
    }
}

/// Time from the end of the fault to the start of the first window whose error rate is within the SLO and
/// whose p95 is within `factor` × the baseline p95. `None`: not recovered within the samples given.
pub fn recovery_time(
    after: &[Sample],
    fault_end: Duration,
    window: Duration,
    max_error_rate: f64,
    p95_limit: Duration,
) -> Option<Duration> {
    let last = after.iter().map(|s| s.at).max()?;
    let mut start = fault_end;
    while start <= last {
        let in_window: Vec<Sample> = after.iter().filter(|s| s.at >= start && s.at < start + window).copied().collect();
        if !in_window.is_empty() {
            let stats = PhaseStats::of(&in_window, window);
            if stats.error_rate <= max_error_rate && stats.p95_ms <= p95_limit.as_secs_f64() * 1e3 {
                return Some(start - fault_end);
            }
        }
        start += window;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: u64, latency_ms: u64, ok: bool) -> Sample {
        Sample { at: Duration::from_millis(at_ms), latency: Duration::from_millis(latency_ms), ok, fallback: false }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<Sample> = (1..=100).map(|i| s(i, i, true)).collect();
        let stats = PhaseStats::of(&samples, Duration::from_secs(1));
        assert_eq!((stats.p50_ms, stats.p95_ms, stats.p99_ms), (50.0, 95.0, 99.0));
    }

    #[test]
    fn recovery_is_the_first_healthy_window() {
        let mut after: Vec<Sample> = (0..10).map(|i| s(1000 + i * 10, 5, false)).collect();
        after.extend((0..10).map(|i| s(1250 + i * 10, 5, true)));
        let r =
            recovery_time(&after, Duration::from_secs(1), Duration::from_millis(250), 0.01, Duration::from_millis(100));
        assert_eq!(r, Some(Duration::from_millis(250)));
    }
}
