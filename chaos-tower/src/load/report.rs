//! The result of a run: counts, rates, HdrHistogram percentiles; serde JSON both ways (a saved result is a
//! baseline).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Label, LoadMode, LoadPlan, Outcome};

/// Latencies are recorded in nanoseconds, from 1 ns to an hour, to 3 significant digits (0.1%).
const HIGHEST_NANOS: u64 = 3_600_000_000_000;

pub(crate) struct Recorder {
    histogram: Histogram<u64>,
    statuses: BTreeMap<Label, u64>,
    errors: u64,
    last: Option<Instant>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, HIGHEST_NANOS, 3).expect("valid histogram bounds"),
            statuses: BTreeMap::new(),
            errors: 0,
            last: None,
        }
    }

    pub(crate) fn record(&mut self, latency: Duration, outcome: Outcome, now: Instant) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(nanos);
        *self.statuses.entry(outcome.label()).or_default() += 1;
        self.errors += u64::from(!outcome.is_ok());
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
    }

    pub(crate) fn finish(self, plan: &LoadPlan, measure_start: Instant, missed: u64, max_lag: Duration) -> LoadResult {
        let duration = self.last.map_or(Duration::ZERO, |last| last.saturating_duration_since(measure_start));
        let status_counts = self.statuses.into_iter().map(|(label, n)| (label.to_string(), n)).collect();
        let mut result =
            LoadResult::from_histogram(PlanSummary::of(plan), self.histogram, self.errors, status_counts, duration);
        result.missed_sends = missed;
        result.max_send_lag_ms = ms(max_lag.as_nanos() as f64);
        result
    }
}

/// `errors / requests`, 0 for no requests.
pub(crate) fn error_rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 { 0.0 } else { errors as f64 / requests as f64 }
}

/// Requests per second over `duration`, 0 for an empty run.
pub(crate) fn throughput(requests: u64, duration: Duration) -> f64 {
    if duration.is_zero() { 0.0 } else { requests as f64 / duration.as_secs_f64() }
}

fn ms(nanos: f64) -> f64 {
    nanos / 1e6
}

/// The plan a result came from, as recorded in its JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlanSummary {
    /// `closed` or `open`.
    pub mode: String,
    /// Concurrent clients of a closed loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<u32>,
    /// Target rate of an open loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_sec: Option<f64>,
    /// The request budget.
    #[serde(default)]
    pub requests: Option<u64>,
    /// The time budget, in seconds.
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    /// The warm-up, in seconds.
    #[serde(default)]
    pub warmup_seconds: f64,
    /// What was driven: a URL, or a name for an in-process service (set by the caller; `run_url` sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl PlanSummary {
    /// The summary of `plan`, without a target.
    pub fn of(plan: &LoadPlan) -> Self {
        let (clients, rate_per_sec) = match plan.mode {
            LoadMode::Closed { clients } => (Some(clients), None),
            LoadMode::Open { rate_per_sec, .. } => (None, Some(rate_per_sec)),
        };
        Self {
            mode: plan.mode.name().to_owned(),
            clients,
            rate_per_sec,
            requests: plan.requests,
            duration_seconds: plan.duration.map(|d| d.as_secs_f64()),
            warmup_seconds: plan.warmup.as_secs_f64(),
            target: None,
        }
    }
}

/// Latency percentiles in milliseconds (HdrHistogram, 3 significant digits).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// The fastest answer.
    pub min: f64,
    /// The mean.
    pub mean: f64,
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The 99.9th percentile.
    pub p999: f64,
    /// The slowest answer.
    pub max: f64,
}

impl LatencySummary {
    /// The summary of these latencies, measured as a run's are (nanoseconds, from 1 ns to an hour, 3
    /// significant digits): the one percentile method of the harness and the GameDay.
    pub fn of_latencies(latencies: impl IntoIterator<Item = Duration>) -> Self {
        let mut h = Histogram::new_with_bounds(1, HIGHEST_NANOS, 3).expect("valid histogram bounds");
        for latency in latencies {
            h.saturating_record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
        }
        Self::of_histogram(&h)
    }

    /// The summary of a histogram of latencies in nanoseconds (as [`LoadResult::histogram`] holds).
    pub fn of_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let q = |p: f64| ms(h.value_at_quantile(p) as f64);
        Self {
            min: ms(h.min() as f64),
            mean: ms(h.mean()),
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max: ms(h.max() as f64),
        }
    }
}

/// The result of a run. Serialises to the JSON written by `--json` / `--out`, and reads back as a baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoadResult {
    /// The plan that produced it.
    pub plan: PlanSummary,
    /// Measured requests answered (successes and errors).
    pub requests: u64,
    /// Requests counted as errors.
    pub errors: u64,
    /// `errors / requests`, a fraction.
    pub error_rate: f64,
    /// Measured requests per second, over [`duration_seconds`](Self::duration_seconds).
    pub throughput_rps: f64,
    /// From the start of measurement to the last measured answer.
    pub duration_seconds: f64,
    /// Latency percentiles in milliseconds.
    pub latency_ms: LatencySummary,
    /// Answers per label: the HTTP status (`"200"`, `"429"`), `ok`, `error`, or `transport`.
    pub status_counts: BTreeMap<String, u64>,
    /// Open loop: sends that went out later than their slot by more than one interval plus 2 ms (two ticks of
    /// Tokio's millisecond timer): the service's backpressure, the in-flight cap or a busy machine kept the
    /// harness from the rate. Their delay is still counted in their latency.
    #[serde(default)]
    pub missed_sends: u64,
    /// Open loop: the largest delay between a request's intended and actual send time, in milliseconds.
    #[serde(default)]
    pub max_send_lag_ms: f64,
    /// The full histogram, for percentiles beyond the summary; absent in a result read from JSON.
    #[serde(skip)]
    pub histogram: Option<Histogram<u64>>,
}

impl LoadResult {
    /// The result of a run of `plan` whose latencies (in nanoseconds) are in `histogram`, `errors` of them
    /// failed, answered as `status_counts` says, measured over `duration` (from the start of measurement to the
    /// last answer): the rates and percentiles follow from them. For a load generator of your own that writes
    /// results and baselines in this format; an open loop's `missed_sends` and `max_send_lag_ms` start at 0.
    pub fn from_histogram(
        plan: PlanSummary,
        histogram: Histogram<u64>,
        errors: u64,
        status_counts: BTreeMap<String, u64>,
        duration: Duration,
    ) -> Self {
        let requests = histogram.len();
        LoadResult {
            plan,
            requests,
            errors,
            error_rate: error_rate(errors, requests),
            throughput_rps: throughput(requests, duration),
            duration_seconds: duration.as_secs_f64(),
            latency_ms: LatencySummary::of_histogram(&histogram),
            status_counts,
            missed_sends: 0,
            max_send_lag_ms: 0.0,
            histogram: Some(histogram),
        }
    }

    /// The latency at `percentile` (in `(0, 100]`), in milliseconds: from the histogram when the result has
    /// one, else from the summary when it holds that percentile (50, 90, 95, 99, 99.9, 100).
    pub fn percentile_ms(&self, percentile: f64) -> Option<f64> {
        if let Some(h) = &self.histogram {
            if h.is_empty() {
                return Some(0.0);
            }
            return Some(ms(h.value_at_percentile(percentile) as f64));
        }
        let l = &self.latency_ms;
        [(50.0, l.p50), (90.0, l.p90), (95.0, l.p95), (99.0, l.p99), (99.9, l.p999), (100.0, l.max)]
            .into_iter()
            .find(|(p, _)| *p == percentile)
            .map(|(_, v)| v)
    }

    /// The JSON form (pretty-printed).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a load result always serialises")
    }

    /// Reads a result written by [`to_json`](Self::to_json).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

impl fmt::Display for LoadResult {
    /// A short human summary table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.plan;
        let shape = match (p.clients, p.rate_per_sec) {
            (Some(c), _) => format!("closed loop, {c} client{}", if c == 1 { "" } else { "s" }),
            (_, Some(r)) => format!("open loop, {r} req/s"),
            _ => p.mode.clone(),
        };
        writeln!(f, "target      {}", p.target.as_deref().unwrap_or("in-process service"))?;
        writeln!(f, "mode        {shape}")?;
        writeln!(
            f,
            "requests    {} in {:.3} s  ({:.1} req/s)",
            self.requests, self.duration_seconds, self.throughput_rps
        )?;
        writeln!(f, "errors      {} ({:.3}%)", self.errors, self.error_rate * 100.0)?;
        let statuses: Vec<String> = self.status_counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        writeln!(f, "answers     {}", statuses.join(", "))?;
        let l = &self.latency_ms;
        writeln!(f, "latency ms  min {:.3}  mean {:.3}  max {:.3}", l.min, l.mean, l.max)?;
        writeln!(
            f,
            "            p50 {:.3}  p90 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}",
            l.p50, l.p90, l.p95, l.p99, l.p999
        )?;
        if p.mode == "open" {
            writeln!(f, "sends       {} missed, max lag {:.3} ms", self.missed_sends, self.max_send_lag_ms)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn json_round_trips_without_the_histogram() {
        let mut recorder = Recorder::new();
        let t0 = Instant::now();
        for ms in 1..=100u64 {
            let outcome =
                if ms % 10 == 0 { Outcome::http(::http::StatusCode::SERVICE_UNAVAILABLE) } else { Outcome::success() };
            recorder.record(Duration::from_millis(ms), outcome, t0 + Duration::from_secs(2));
        }
        let r = recorder.finish(&LoadPlan::closed(4).requests(100), t0, 0, Duration::ZERO);
        assert_eq!((r.requests, r.errors, r.error_rate, r.throughput_rps), (100, 10, 0.1, 50.0));
        assert_eq!(r.status_counts.get("503"), Some(&10));
        assert_eq!(r.status_counts.get("ok"), Some(&90));
        assert!((r.latency_ms.p95 - 95.0).abs() < 0.1, "{:?}", r.latency_ms);
        assert!((r.percentile_ms(75.0).unwrap() - 75.0).abs() < 0.1);
        let back = LoadResult::from_json(&r.to_json()).unwrap();
        assert_eq!((&back.plan, back.latency_ms, &back.status_counts), (&r.plan, r.latency_ms, &r.status_counts));
        assert_eq!(back.percentile_ms(95.0), Some(r.latency_ms.p95));
        assert_eq!(back.percentile_ms(75.0), None);
    }

    proptest! {
        #[test]
        fn percentiles_are_ordered_and_within_the_histogram_precision(
            latencies in proptest::collection::vec(1u64..10_000_000_000, 1..300),
            errors in 0usize..300,
        ) {
            let mut recorder = Recorder::new();
            let t0 = Instant::now();
            let errors = errors.min(latencies.len());
            for (i, &nanos) in latencies.iter().enumerate() {
                recorder.record(Duration::from_nanos(nanos), Outcome::from_ok(i >= errors), t0 + Duration::from_secs(1));
            }
            let r = recorder.finish(&LoadPlan::closed(1).requests(1), t0, 0, Duration::ZERO);
            let l = r.latency_ms;
            prop_assert!(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max);
            let mut sorted = latencies.clone();
            sorted.sort_unstable();
            // The true max and p95 (nearest rank), to 0.1%.
            let true_max = *sorted.last().unwrap() as f64 / 1e6;
            prop_assert!((l.max - true_max).abs() <= true_max * 1e-3 + 1e-6, "{} vs {}", l.max, true_max);
            let rank = ((0.95 * sorted.len() as f64).ceil() as usize).max(1);
            let true_p95 = sorted[rank - 1] as f64 / 1e6;
            prop_assert!((l.p95 - true_p95).abs() <= true_p95 * 1e-3 + 1e-6, "{} vs {}", l.p95, true_p95);
            prop_assert_eq!(r.requests, latencies.len() as u64);
            prop_assert_eq!(r.errors, errors as u64);
            prop_assert!((r.error_rate - errors as f64 / latencies.len() as f64).abs() < 1e-12);
            prop_assert!((r.throughput_rps - latencies.len() as f64).abs() < 1e-9);
        }
    }
}
