//! Comparison with an earlier result, so CI can gate a release on a regression.

use std::fmt;

use super::LoadResult;

/// How much worse than the baseline a run may be.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Tolerance {
    /// Relative slack for p95 (worse than `baseline × (1 + relative)`) and throughput (below
    /// `baseline × (1 − relative)`). Default 0.10.
    pub relative: f64,
    /// Absolute slack for the error rate, a fraction: worse than `baseline + error_rate_abs`. Default 0.001
    /// (0.1 percentage point).
    pub error_rate_abs: f64,
}

impl Tolerance {
    /// A regression is a p95 or throughput worse by more than `relative` (a fraction), or an error rate higher
    /// by more than `error_rate_abs` (absolute).
    pub fn new(relative: f64, error_rate_abs: f64) -> Self {
        Self { relative, error_rate_abs }
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Self { relative: 0.10, error_rate_abs: 0.001 }
    }
}

/// One way a run is worse than its baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Regression {
    /// p95 latency (ms) above `baseline × (1 + relative)`.
    P95 {
        /// The baseline's p95, in ms.
        baseline: f64,
        /// This run's p95, in ms.
        current: f64,
        /// The largest p95 allowed, in ms.
        limit: f64,
    },
    /// Error rate (a fraction) above `baseline + error_rate_abs`.
    ErrorRate {
        /// The baseline's error rate.
        baseline: f64,
        /// This run's error rate.
        current: f64,
        /// The largest error rate allowed.
        limit: f64,
    },
    /// Throughput (req/s) below `baseline × (1 − relative)`.
    Throughput {
        /// The baseline's throughput.
        baseline: f64,
        /// This run's throughput.
        current: f64,
        /// The smallest throughput allowed.
        limit: f64,
    },
}

impl fmt::Display for Regression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::P95 { baseline, current, limit } => write!(
                f,
                "REGRESSION p95: {current:.3}ms vs baseline {baseline:.3}ms ({:+.1}%, limit {limit:.3}ms)",
                change(baseline, current)
            ),
            Self::ErrorRate { baseline, current, limit } => write!(
                f,
                "REGRESSION error rate: {:.3}% vs baseline {:.3}% (limit {:.3}%)",
                current * 100.0,
                baseline * 100.0,
                limit * 100.0
            ),
            Self::Throughput { baseline, current, limit } => write!(
                f,
                "REGRESSION throughput: {current:.1} req/s vs baseline {baseline:.1} req/s ({:+.1}%, limit {limit:.1} req/s)",
                change(baseline, current)
            ),
        }
    }
}

fn change(baseline: f64, current: f64) -> f64 {
    if baseline == 0.0 { 0.0 } else { (current / baseline - 1.0) * 100.0 }
}

/// The regressions of `current` against `baseline` (p95, error rate, throughput); empty when none.
pub fn compare(baseline: &LoadResult, current: &LoadResult, tolerance: Tolerance) -> Vec<Regression> {
    let mut regressions = Vec::new();
    let (b, c) = (baseline.latency_ms.p95, current.latency_ms.p95);
    let limit = b * (1.0 + tolerance.relative);
    if c > limit {
        regressions.push(Regression::P95 { baseline: b, current: c, limit });
    }
    let (b, c) = (baseline.error_rate, current.error_rate);
    let limit = b + tolerance.error_rate_abs;
    if c > limit {
        regressions.push(Regression::ErrorRate { baseline: b, current: c, limit });
    }
    let (b, c) = (baseline.throughput_rps, current.throughput_rps);
    let limit = b * (1.0 - tolerance.relative);
    if c < limit {
        regressions.push(Regression::Throughput { baseline: b, current: c, limit });
    }
    regressions
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn result(p95: f64, error_rate: f64, rps: f64) -> LoadResult {
        let json = format!(
            r#"{{"plan":{{"mode":"open","rate_per_sec":100,"requests":null,"duration_seconds":10,"warmup_seconds":0}},
            "requests":1000,"errors":0,"error_rate":{error_rate},"throughput_rps":{rps},"duration_seconds":10,
            "latency_ms":{{"min":1,"mean":2,"p50":2,"p90":3,"p95":{p95},"p99":9,"p999":12,"max":20}},
            "status_counts":{{}}}}"#
        );
        LoadResult::from_json(&json).unwrap()
    }

    #[test]
    fn within_tolerance_is_no_regression() {
        let base = result(100.0, 0.001, 1000.0);
        assert!(compare(&base, &result(109.9, 0.0019, 901.0), Tolerance::default()).is_empty());
        assert!(compare(&base, &result(50.0, 0.0, 5000.0), Tolerance::default()).is_empty(), "better is fine");
    }

    #[test]
    fn each_regression_is_reported_on_its_line() {
        let base = result(100.0, 0.001, 1000.0);
        let found = compare(&base, &result(130.0, 0.02, 700.0), Tolerance::default());
        let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "REGRESSION p95: 130.000ms vs baseline 100.000ms (+30.0%, limit 110.000ms)",
                "REGRESSION error rate: 2.000% vs baseline 0.100% (limit 0.200%)",
                "REGRESSION throughput: 700.0 req/s vs baseline 1000.0 req/s (-30.0%, limit 900.0 req/s)",
            ]
        );
        let strict = Tolerance { relative: 0.0, error_rate_abs: 0.0 };
        assert_eq!(compare(&base, &result(100.1, 0.001, 1000.0), strict).len(), 1);
    }

    proptest! {
        #[test]
        fn a_result_never_regresses_against_itself(p95 in 0.0f64..1e4, e in 0.0f64..=1.0, rps in 0.0f64..1e6, tol in 0.0f64..1.0) {
            let r = result(p95, e, rps);
            let tolerance = Tolerance { relative: tol, error_rate_abs: 0.0 };
            prop_assert!(compare(&r, &r, tolerance).is_empty());
        }

        #[test]
        fn worse_p95_regresses_exactly_past_the_tolerance(base in 0.1f64..1e4, factor in 0.5f64..2.0) {
            let tol = Tolerance::default();
            let found = compare(&result(base, 0.0, 100.0), &result(base * factor, 0.0, 100.0), tol);
            prop_assert_eq!(!found.is_empty(), base * factor > base * 1.1);
        }
    }
}
