//! The pre-run estimate: what a job will cost, from the history of similar jobs, and what share of its
//! budgets that is ("this backtest will use ~12 CPU-hours, 4% of the budget").

use std::fmt;

use super::spec::BudgetSet;
use super::usage::Usage;
use crate::{JobRecord, Labels};

/// The label sets tried in turn, most similar first. A level is used when it has at least
/// [`MIN_SIMILAR`] jobs; if none has, the most specific level with any job is used.
const LEVELS: [&[&str]; 4] =
    [&["team", "service", "strategy", "tier"], &["team", "service", "tier"], &["team", "service"], &["team"]];

/// How many similar jobs make an estimate without falling back to fewer labels.
pub const MIN_SIMILAR: usize = 3;

/// A job's share of one budget covering it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EstimateShare {
    /// The budget.
    pub budget: String,
    /// The median CPU-hours as a fraction of the monthly CPU-hours, if CPU is budgeted.
    pub cpu: Option<f64>,
    /// The median GB-hours as a fraction of the monthly GB-hours, if memory is budgeted.
    pub memory: Option<f64>,
}

/// What a job is expected to cost.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Estimate {
    /// The labels that similar jobs share with it.
    pub matched_on: Vec<&'static str>,
    /// How many similar jobs.
    pub similar: usize,
    /// Median usage of the similar jobs (each resource on its own).
    pub median: Usage,
    /// Mean usage.
    pub mean: Usage,
    /// 90th percentile (nearest rank).
    pub p90: Usage,
    /// Shares of the budgets covering the job.
    pub shares: Vec<EstimateShare>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    if q == 0.5 {
        let n = sorted.len();
        return if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Estimates a job with `labels` from `history`; `None` if no job of the same team is in the history.
/// Cache hits (`cache_hit: true`, charged nothing) are left out.
pub fn estimate(history: &[JobRecord], labels: &Labels, budgets: &BudgetSet) -> Option<Estimate> {
    let similar_at = |names: &[&str]| -> Vec<Usage> {
        // A cache hit ran nothing: it says nothing about what the job costs.
        history
            .iter()
            .filter(|r| !r.cache_hit && names.iter().all(|n| r.labels.get(n) == labels.get(n)))
            .map(Usage::of)
            .collect()
    };
    let mut chosen: Option<(&[&'static str], Vec<Usage>)> = None;
    for level in LEVELS {
        let found = similar_at(level);
        if found.len() >= MIN_SIMILAR {
            chosen = Some((level, found));
            break;
        }
        if chosen.is_none() && !found.is_empty() {
            chosen = Some((level, found));
        }
    }
    let (level, found) = chosen?;
    let mut cpu: Vec<f64> = found.iter().map(|u| u.cpu_hours).collect();
    let mut mem: Vec<f64> = found.iter().map(|u| u.memory_gb_hours).collect();
    cpu.sort_by(f64::total_cmp);
    mem.sort_by(f64::total_cmp);
    let n = found.len() as f64;
    let median = Usage { cpu_hours: quantile(&cpu, 0.5), memory_gb_hours: quantile(&mem, 0.5) };
    let shares = budgets
        .covering(labels)
        .map(|b| EstimateShare {
            budget: b.name.clone(),
            cpu: b.monthly_cpu_hours.map(|m| median.cpu_hours / m),
            memory: b.monthly_memory_gb_hours.map(|m| median.memory_gb_hours / m),
        })
        .collect();
    Some(Estimate {
        matched_on: level.to_vec(),
        similar: found.len(),
        median,
        mean: Usage { cpu_hours: cpu.iter().sum::<f64>() / n, memory_gb_hours: mem.iter().sum::<f64>() / n },
        p90: Usage { cpu_hours: quantile(&cpu, 0.9), memory_gb_hours: quantile(&mem, 0.9) },
        shares,
    })
}

fn amount(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}")
    } else if x >= 0.1 {
        format!("{x:.1}")
    } else if x > 0.0 {
        // two significant digits: a short job's 0.00015 CPU-hours is not "0.000"
        let decimals = (-x.log10().floor()) as usize + 1;
        format!("{x:.decimals$}")
    } else {
        "0".into()
    }
}

fn percent(x: f64) -> String {
    if x >= 0.01 { format!("{:.0}%", x * 100.0) } else { format!("{:.1}%", x * 100.0) }
}

impl fmt::Display for Estimate {
    /// `this job will use ~12 CPU-hours and ~3.5 GB-hours (median of 14 similar jobs: same team, service,
    /// strategy, tier; p90 18 CPU-hours), 0.7% of research-cluster's monthly CPU-hours`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this job will use ~{} CPU-hours and ~{} GB-hours (median of {} similar job{}: same {}; p90 {} CPU-hours)",
            amount(self.median.cpu_hours),
            amount(self.median.memory_gb_hours),
            self.similar,
            if self.similar == 1 { "" } else { "s" },
            self.matched_on.join(", "),
            amount(self.p90.cpu_hours),
        )?;
        for s in &self.shares {
            match (s.cpu, s.memory) {
                (Some(c), _) => write!(f, ", {} of {}'s monthly CPU-hours", percent(c), s.budget)?,
                (None, Some(m)) => write!(f, ", {} of {}'s monthly GB-hours", percent(m), s.budget)?,
                (None, None) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpuMode, MemoryMode, Tier};

    fn job(labels: Labels, cpu_hours: f64) -> JobRecord {
        JobRecord {
            job_id: "j".into(),
            labels,
            started_at_unix: 0.0,
            wall_seconds: 1.0,
            cpu_seconds: cpu_hours * 3600.0,
            cpu_mode: CpuMode::ThreadCpu,
            memory_byte_seconds: 0.0,
            memory_gb_hours: cpu_hours / 4.0,
            peak_bytes: 0,
            reserved_bytes: 0,
            memory_mode: MemoryMode::Reservation,
            cache_hit: false,
        }
    }

    #[test]
    fn similar_jobs_first_then_fewer_labels() {
        let bt = Labels::new("research", "backtester").strategy("momo").tier(Tier::Heavy);
        let other = Labels::new("research", "backtester").strategy("carry").tier(Tier::Heavy);
        let history = vec![job(bt.clone(), 10.0), job(bt.clone(), 12.0), job(bt.clone(), 14.0), job(other, 100.0)];
        let budgets = BudgetSet::new(vec![
            super::super::Budget::parse("name: r\nowner: o\nmonthly_cpu_hours: 300\n", None).unwrap(),
        ])
        .unwrap();
        let e = estimate(&history, &bt, &budgets).unwrap();
        assert_eq!((e.similar, e.matched_on.len()), (3, 4));
        assert_eq!(e.median.cpu_hours, 12.0);
        assert_eq!(e.shares[0].cpu, Some(0.04));
        assert!(e.to_string().contains("~12 CPU-hours"), "{e}");
        assert!(e.to_string().contains("4% of r's monthly CPU-hours"), "{e}");
        // a new strategy: falls back to team + service + tier (4 jobs)
        let new = Labels::new("research", "backtester").strategy("new").tier(Tier::Heavy);
        let e = estimate(&history, &new, &budgets).unwrap();
        assert_eq!((e.similar, e.matched_on), (4, vec!["team", "service", "tier"]));
        assert!(estimate(&history, &Labels::new("ops", "x"), &budgets).is_none());
    }

    #[test]
    fn cache_hits_are_not_history() {
        let labels = Labels::new("research", "features");
        let mut history = vec![job(labels.clone(), 2.0), job(labels.clone(), 2.0), job(labels.clone(), 2.0)];
        for _ in 0..5 {
            let mut hit = job(labels.clone(), 0.0);
            hit.cache_hit = true;
            history.push(hit);
        }
        let budgets = BudgetSet::new(Vec::new()).unwrap();
        let e = estimate(&history, &labels, &budgets).unwrap();
        assert_eq!((e.similar, e.median.cpu_hours), (3, 2.0));
    }

    #[test]
    fn short_jobs_keep_two_significant_digits() {
        assert_eq!(amount(0.000146), "0.00015");
        assert_eq!(amount(0.05), "0.050");
        assert_eq!(amount(0.0), "0");
        assert_eq!(amount(12.0), "12");
    }
}
