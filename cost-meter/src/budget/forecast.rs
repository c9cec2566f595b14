//! The month-end forecast: usage so far, extrapolated at the month's average burn rate.

use std::time::SystemTime;

use super::civil::{Month, unix_seconds};
use super::spec::Budget;
use super::usage::{Usage, Utilization};

/// Where a budget will be at the end of the month if it keeps burning at its average rate so far.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Forecast {
    /// The month.
    pub month: Month,
    /// The fraction of the month elapsed (0–1).
    pub elapsed: f64,
    /// Usage so far.
    pub usage: Usage,
    /// Usage projected at the end of the month.
    pub projected: Usage,
    /// Utilisation projected at the end of the month.
    pub projected_utilization: Utilization,
    /// When the budget (the first of its resources) runs out at this rate, in Unix seconds, if before the end of
    /// the month.
    pub exhausted_at_unix: Option<i64>,
}

impl Forecast {
    /// The forecast of `budget` with `usage` counted in `month`, at `now`. Before the month starts nothing is
    /// extrapolated; after it ends the projection is the usage.
    pub fn new(budget: &Budget, month: Month, usage: Usage, now: SystemTime) -> Forecast {
        let (start, len) = (month.start_unix() as f64, month.seconds() as f64);
        let elapsed = ((unix_seconds(now) - start) / len).clamp(0.0, 1.0);
        // At least a minute elapsed, so a job just after midnight does not project to infinity.
        let factor = if elapsed >= 1.0 { 1.0 } else { 1.0 / elapsed.max(60.0 / len) };
        let projected = if elapsed > 0.0 { usage.scaled(factor) } else { usage };
        let rate_cpu = usage.cpu_hours / (elapsed.max(60.0 / len) * len);
        let rate_mem = usage.memory_gb_hours / (elapsed.max(60.0 / len) * len);
        let until = |limit: Option<f64>, used: f64, rate: f64| {
            limit.filter(|_| rate > 0.0).map(|l| start + elapsed * len + ((l - used).max(0.0)) / rate)
        };
        let exhausted_at_unix = [
            until(budget.monthly_cpu_hours, usage.cpu_hours, rate_cpu),
            until(budget.monthly_memory_gb_hours, usage.memory_gb_hours, rate_mem),
        ]
        .into_iter()
        .flatten()
        .filter(|&t| t < start + len && elapsed < 1.0)
        .min_by(f64::total_cmp)
        .map(|t| t as i64);
        Forecast {
            month,
            elapsed,
            usage,
            projected,
            projected_utilization: Utilization::of(budget, projected),
            exhausted_at_unix,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_third_of_the_month_projects_three_times() {
        let budget = super::super::Budget::parse("name: b\nowner: o\nmonthly_cpu_hours: 900\n", None).unwrap();
        let nov = Month::new(2026, 11).unwrap(); // 30 days
        let now = UNIX_EPOCH + Duration::from_secs(nov.start_unix() as u64 + 10 * 86_400);
        let f = Forecast::new(&budget, nov, Usage { cpu_hours: 400.0, memory_gb_hours: 0.0 }, now);
        assert!((f.projected.cpu_hours - 1200.0).abs() < 1e-6);
        assert!((f.projected_utilization.cpu.unwrap() - 4.0 / 3.0).abs() < 1e-9);
        // 900 h at 40 h/day: day 22.5
        assert_eq!(f.exhausted_at_unix, Some(nov.start_unix() + 22 * 86_400 + 43_200));
        let slow = Forecast::new(&budget, nov, Usage { cpu_hours: 100.0, memory_gb_hours: 0.0 }, now);
        assert_eq!(slow.exhausted_at_unix, None);
    }
}
