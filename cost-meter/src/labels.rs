//! The labels a job carries, and its workload tier.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The workload tier of a job: what it may cost and when it may run.
///
/// Tiers order by weight: `Interactive < Batch < Nightly < Heavy`. Budgets gate `Heavy` jobs to their windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// A request or a user waiting on an answer.
    #[default]
    Interactive,
    /// A job started by hand or by a pipeline, nobody waiting on it interactively.
    Batch,
    /// A scheduled nightly job.
    Nightly,
    /// An expensive job (a full backtest, a large benchmark) that runs only inside configured windows.
    Heavy,
}

impl Tier {
    /// Every tier, lightest first.
    pub const ALL: [Tier; 4] = [Tier::Interactive, Tier::Batch, Tier::Nightly, Tier::Heavy];

    /// The tier's name as written in files and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Interactive => "interactive",
            Tier::Batch => "batch",
            Tier::Nightly => "nightly",
            Tier::Heavy => "heavy",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a tier name that is not one of `interactive`, `batch`, `nightly`, `heavy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTier(String);

impl fmt::Display for UnknownTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown tier `{}`: expected interactive, batch, nightly or heavy", self.0)
    }
}

impl std::error::Error for UnknownTier {}

impl FromStr for Tier {
    type Err = UnknownTier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| UnknownTier(s.to_owned()))
    }
}

/// The labels of a job. They go to metrics (low cardinality by design) and to records; the job id is not a
/// label (it goes to the record).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Labels {
    /// Deployment environment (`dev`, `staging`, `prod`).
    pub env: String,
    /// Owning team.
    pub team: String,
    /// Service or tool that runs the job.
    pub service: String,
    /// Strategy, model or workload name (for a backtest: the strategy under test).
    pub strategy: String,
    /// Workload tier.
    pub tier: Tier,
}

impl Labels {
    /// Labels with the given team and service; the other fields empty and the tier interactive.
    pub fn new(team: impl Into<String>, service: impl Into<String>) -> Self {
        Labels { team: team.into(), service: service.into(), ..Labels::default() }
    }

    /// Sets the environment.
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = env.into();
        self
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: impl Into<String>) -> Self {
        self.strategy = strategy.into();
        self
    }

    /// Sets the tier.
    pub fn tier(mut self, tier: Tier) -> Self {
        self.tier = tier;
        self
    }

    /// The value of the label called `name` (`env`, `team`, `service`, `strategy`, `tier`), if it exists.
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "env" => Some(&self.env),
            "team" => Some(&self.team),
            "service" => Some(&self.service),
            "strategy" => Some(&self.strategy),
            "tier" => Some(self.tier.as_str()),
            _ => None,
        }
    }

    /// The label names, in the order metrics carry them.
    pub const NAMES: [&'static str; 5] = ["env", "team", "service", "strategy", "tier"];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_names_round_trip() {
        for tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>(), Ok(tier));
        }
        let err = "huge".parse::<Tier>().unwrap_err();
        assert!(err.to_string().contains("`huge`"), "{err}");
    }

    #[test]
    fn labels_get_by_name() {
        let labels = Labels::new("research", "backtester").env("prod").strategy("momo").tier(Tier::Heavy);
        let values: Vec<_> = Labels::NAMES.iter().map(|n| labels.get(n).unwrap()).collect();
        assert_eq!(values, ["prod", "research", "backtester", "momo", "heavy"]);
        assert_eq!(labels.get("job_id"), None);
    }
}
