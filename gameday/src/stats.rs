//! Per-phase statistics, the "back to normal" test behind recovery, and the injected-rate band.

use std::time::Duration;

use serde::Serialize;

use brownout_tower::load::LatencySummary;

use crate::load::Sample;

/// What one phase measured. Errors and latency are the critical routes', where the SLO applies; shedding is
/// the non-critical routes'.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct PhaseStats {
    /// Requests started in the phase.
    pub requests: usize,
    /// Of which on critical routes.
    pub critical_requests: usize,
    /// Critical requests not answered as the user needed.
    pub user_errors: usize,
    /// Errors among critical requests.
    pub error_rate: f64,
    /// The error rate of the worst critical route (each critical route must keep the SLO on its own: a
    /// failing orders route is not hidden by many good quotes), and which route it is.
    pub worst_error_rate: f64,
    /// The worst critical route's name.
    pub worst_route: Option<String>,
    /// Fallback answers among critical requests.
    pub fallbacks: usize,
    /// Their share of critical requests.
    pub fallback_rate: f64,
    /// Degraded answers the user could not use (the plan's `stale_header`).
    pub stale: usize,
    /// The age of the data answered (the plan's `age_header`): p95 and oldest, in milliseconds.
    pub age_p95_ms: f64,
    /// The oldest.
    pub age_max_ms: f64,
    /// Requests on non-critical routes.
    pub non_critical_requests: usize,
    /// Of which shed.
    pub shed: usize,
    /// Shed answers among non-critical requests.
    pub shed_rate: f64,
    /// Requests per second started in the phase.
    pub throughput_rps: f64,
    /// Critical requests' latency percentiles (HdrHistogram, as the load harness's), in milliseconds.
    pub p50_ms: f64,
    /// The 95th percentile.
    pub p95_ms: f64,
    /// The 99th percentile.
    pub p99_ms: f64,
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

impl PhaseStats {
    /// The statistics of `samples` over `span`; `routes` names the plan's routes (by index).
    pub fn of(samples: &[Sample], span: Duration, routes: &[String]) -> Self {
        let critical: Vec<&Sample> = samples.iter().filter(|s| s.critical).collect();
        let latency = LatencySummary::of_latencies(critical.iter().map(|s| s.latency));
        let user_errors = critical.iter().filter(|s| !s.ok).count();
        let fallbacks = critical.iter().filter(|s| s.fallback).count();
        let non_critical = samples.len() - critical.len();
        let shed = samples.iter().filter(|s| s.shed).count();
        let ages: Vec<Duration> = samples
            .iter()
            .filter(|s| s.ok || s.stale)
            .filter_map(|s| Some(Duration::from_millis(u64::from(s.age_ms?))))
            .collect();
        let age = LatencySummary::of_latencies(ages);
        let mut worst: (f64, Option<u16>) = (0.0, None);
        let mut indices: Vec<u16> = critical.iter().map(|s| s.route).collect();
        indices.sort_unstable();
        indices.dedup();
        for route in indices {
            let of_route: Vec<&&Sample> = critical.iter().filter(|s| s.route == route).collect();
            let rate = share(of_route.iter().filter(|s| !s.ok).count(), of_route.len());
            if rate > worst.0 || worst.1.is_none() {
                worst = (rate, Some(route));
            }
        }
        PhaseStats {
            worst_error_rate: worst.0,
            worst_route: worst.1.map(|i| routes.get(usize::from(i)).cloned().unwrap_or_else(|| format!("route {i}"))),
            requests: samples.len(),
            critical_requests: critical.len(),
            user_errors,
            error_rate: share(user_errors, critical.len()),
            fallbacks,
            fallback_rate: share(fallbacks, critical.len()),
            stale: samples.iter().filter(|s| s.stale).count(),
            age_p95_ms: age.p95,
            age_max_ms: age.max,
            non_critical_requests: non_critical,
            shed,
            shed_rate: share(shed, non_critical),
            throughput_rps: samples.len() as f64 / span.as_secs_f64().max(1e-9),
            p50_ms: latency.p50,
            p95_ms: latency.p95,
            p99_ms: latency.p99,
        }
    }
}

/// The service's state at one instant, sampled by the runner while the scenario runs.
#[derive(Debug, Clone)]
pub struct StateTick {
    pub at: Duration,
    pub breaker_closed: bool,
    /// The degrade flags away from their default at that instant.
    pub degraded: Vec<String>,
}

/// What "back on its normal path" means for one window.
#[derive(Debug, Clone, Copy)]
pub struct Normal {
    pub max_error_rate: f64,
    pub p95_limit: Duration,
    /// The baseline's fallback and shed shares: a recovered window is within `tolerance` of them.
    pub baseline_fallback_rate: f64,
    pub baseline_shed_rate: f64,
    pub tolerance: f64,
}

impl Normal {
    /// Why the window is not normal, or `None` when it is.
    pub fn judge(&self, stats: &PhaseStats, states: &[&StateTick]) -> Option<String> {
        if stats.requests == 0 {
            return Some("no requests".into());
        }
        if let Some(open) = states.iter().find(|t| !t.breaker_closed) {
            return Some(format!("breaker not closed at {:.2}s", open.at.as_secs_f64()));
        }
        if let Some(t) = states.iter().find(|t| !t.degraded.is_empty()) {
            return Some(format!("degrade flags on: {}", t.degraded.join(", ")));
        }
        if stats.worst_error_rate > self.max_error_rate {
            return Some(format!("error rate {:.3}", stats.worst_error_rate));
        }
        if stats.p95_ms > self.p95_limit.as_secs_f64() * 1e3 {
            return Some(format!("p95 {:.1} ms", stats.p95_ms));
        }
        if stats.fallback_rate > self.baseline_fallback_rate + self.tolerance {
            return Some(format!("fallback share {:.3}", stats.fallback_rate));
        }
        if stats.shed_rate > self.baseline_shed_rate + self.tolerance {
            return Some(format!("shed share {:.3}", stats.shed_rate));
        }
        None
    }
}

/// Time from the fault's end to the start of the first window that is back to normal (see [`Normal`]).
/// `None`: not back to normal within the samples given.
pub fn recovery_time(
    after: &[Sample],
    states: &[StateTick],
    fault_end: Duration,
    window: Duration,
    normal: &Normal,
) -> Option<Duration> {
    let last = after.iter().map(|s| s.at).max()?;
    let mut start = fault_end;
    while start <= last {
        let end = start + window;
        let in_window: Vec<Sample> = after.iter().filter(|s| s.at >= start && s.at < end).copied().collect();
        let in_states: Vec<&StateTick> = states.iter().filter(|t| t.at >= start && t.at < end).collect();
        if normal.judge(&PhaseStats::of(&in_window, window, &[]), &in_states).is_none() {
            return Some(start - fault_end);
        }
        start = end;
    }
    None
}

/// The band an injected rate is judged against: the plan's band, widened by the sampling noise of `calls`
/// random draws (3.29 standard deviations of a binomial rate: a correct layer falls outside once in 1,000
/// runs). A layer that injects at another rate than its rules say still falls outside.
pub fn judged_band(band: [f64; 2], calls: u64) -> [f64; 2] {
    let [lo, hi] = band;
    if calls == 0 {
        return band;
    }
    let noise = |p: f64| 3.29 * (p * (1.0 - p) / calls as f64).sqrt();
    [(lo - noise(lo)).max(0.0), (hi + noise(hi)).min(1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: u64, latency_ms: u64, ok: bool) -> Sample {
        Sample {
            at: Duration::from_millis(at_ms),
            latency: Duration::from_millis(latency_ms),
            route: 0,
            critical: true,
            ok,
            fallback: false,
            shed: false,
            stale: false,
            age_ms: None,
        }
    }

    fn tick(at_ms: u64, closed: bool, degraded: &[&str]) -> StateTick {
        StateTick {
            at: Duration::from_millis(at_ms),
            breaker_closed: closed,
            degraded: degraded.iter().map(|d| d.to_string()).collect(),
        }
    }

    const NORMAL: Normal = Normal {
        max_error_rate: 0.01,
        p95_limit: Duration::from_millis(100),
        baseline_fallback_rate: 0.0,
        baseline_shed_rate: 0.0,
        tolerance: 0.01,
    };

    #[test]
    fn percentiles_are_the_load_harness_histograms() {
        let samples: Vec<Sample> = (1..=100).map(|i| s(i, i, true)).collect();
        let stats = PhaseStats::of(&samples, Duration::from_secs(1), &["quote".into()]);
        // HdrHistogram at 3 significant digits: within 0.1% of the nearest rank.
        for (got, want) in [(stats.p50_ms, 50.0), (stats.p95_ms, 95.0), (stats.p99_ms, 99.0)] {
            assert!((got - want).abs() <= want * 1e-3, "{got} vs {want}");
        }
        assert_eq!(stats.worst_route.as_deref(), Some("quote"));
    }

    #[test]
    fn recovery_is_the_first_window_back_on_the_normal_path() {
        let window = Duration::from_millis(250);
        // Errors in the first window; healthy answers afterwards.
        let mut after: Vec<Sample> = (0..10).map(|i| s(1000 + i * 10, 5, false)).collect();
        after.extend((0..75).map(|i| s(1250 + i * 10, 5, true)));
        let all_closed: Vec<StateTick> = (0..40).map(|i| tick(1000 + i * 20, true, &[])).collect();
        let r = recovery_time(&after, &all_closed, Duration::from_secs(1), window, &NORMAL);
        assert_eq!(r, Some(Duration::from_millis(250)));

        // Users see no error, but the breaker stays open until 1.5 s: not normal yet.
        let open_until: Vec<StateTick> = (0..40).map(|i| tick(1000 + i * 20, 1000 + i * 20 >= 1500, &[])).collect();
        let r = recovery_time(&after, &open_until, Duration::from_secs(1), window, &NORMAL);
        assert_eq!(r, Some(Duration::from_millis(500)));

        // A degrade flag on until 1.7 s.
        let flag: Vec<StateTick> = (0..50)
            .map(|i| tick(1000 + i * 20, true, if 1000 + i * 20 < 1700 { &["quotes.source"] } else { &[] }))
            .collect();
        let r = recovery_time(&after, &flag, Duration::from_secs(1), window, &NORMAL);
        assert_eq!(r, Some(Duration::from_millis(750)));
    }

    #[test]
    fn fallback_answers_are_not_normal() {
        let window = Duration::from_millis(250);
        // Every answer a success, but from the cache until 1.5 s.
        let after: Vec<Sample> =
            (0..100).map(|i| Sample { fallback: 1000 + i * 10 < 1500, ..s(1000 + i * 10, 5, true) }).collect();
        let ticks: Vec<StateTick> = (0..50).map(|i| tick(1000 + i * 20, true, &[])).collect();
        let r = recovery_time(&after, &ticks, Duration::from_secs(1), window, &NORMAL);
        assert_eq!(r, Some(Duration::from_millis(500)));
    }

    #[test]
    fn the_band_widens_with_sampling_noise_only() {
        assert_eq!(judged_band([0.4, 0.6], 0), [0.4, 0.6]);
        let [lo, hi] = judged_band([0.4, 0.6], 100);
        assert!((0.23..0.25).contains(&lo) && (0.75..0.77).contains(&hi), "{lo} {hi}");
        let [lo, hi] = judged_band([0.4, 0.6], 1_000_000);
        assert!(lo > 0.398 && hi < 0.602);
        assert_eq!(judged_band([0.95, 1.0], 50)[1], 1.0);
    }
}
