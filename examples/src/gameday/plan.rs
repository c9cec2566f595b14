//! The GameDay plan: `configs/chaos/gameday.yaml`.

use std::path::Path;
use std::time::Duration;

use chaos_core::ChaosConfig;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The demo service's own limits.
    #[serde(default)]
    pub service: ServiceLimits,
    pub load: Load,
    pub slo: Slo,
    pub phases: Phases,
    pub scenarios: Vec<Scenario>,
}

/// The service's limits its triggers judge against.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLimits {
    /// The memory budget RSS is judged against, in MiB (as a container's limit; default: the limit the
    /// sensor reads, cgroup v2 `memory.max` or physical memory).
    #[serde(default)]
    pub memory_budget_mib: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    pub rps: u32,
    pub workers: u32,
    #[serde(with = "humantime_serde")]
    pub client_timeout: Duration,
    /// The share of each route in the load, and how many quote symbols it asks for.
    #[serde(default)]
    pub mix: Mix,
}

/// Relative weights of the demo's routes in the load, and the number of distinct quote symbols (asked for
/// with a skewed popularity: a few hot, a long tail).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub quote: u32,
    #[serde(default)]
    pub order: u32,
    #[serde(default)]
    pub report: u32,
    #[serde(default)]
    pub recommendations: u32,
    #[serde(default = "default_symbols")]
    pub symbols: u32,
}

fn default_symbols() -> u32 {
    8
}

impl Default for Mix {
    /// Quotes only, over 8 symbols.
    fn default() -> Self {
        Mix { quote: 1, order: 0, report: 0, recommendations: 0, symbols: default_symbols() }
    }
}

impl Mix {
    /// The sum of the weights.
    pub fn total(&self) -> u32 {
        self.quote + self.order + self.report + self.recommendations
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub user_error_rate: f64,
    #[serde(with = "humantime_serde")]
    pub p95: Duration,
    pub recovery_p95_factor: f64,
    /// Back to normal also means a p95 under this, whatever the baseline (the seeds' "p95 < 200 ms").
    #[serde(default = "default_recovery_p95", with = "humantime_serde")]
    pub recovery_p95: Duration,
    /// The auto-abort: the SLO guard disarms all chaos when a window is worse than this.
    pub abort: Abort,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abort {
    pub error_rate: f64,
    #[serde(with = "humantime_serde")]
    pub p95: Duration,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    pub min_requests: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phases {
    #[serde(with = "humantime_serde")]
    pub before: Duration,
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

fn default_recovery_p95() -> Duration {
    Duration::from_millis(200)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// The share of the dependency's calls the faults should hit (absent for a pressure-only scenario).
    #[serde(default)]
    pub injected_band: Option<[f64; 2]>,
    #[serde(with = "humantime_serde")]
    pub recovery_sla: Duration,
    /// The degradation the service must show: which flags turn on during the fault and off after it.
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// Where the rules apply: the quote provider's calls (default), or the order store's.
    #[serde(default)]
    pub on: Target,
    pub chaos: ChaosConfig,
}

/// The dependency a scenario's rules apply to: each has its own chaos switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The quote provider's calls (HTTP flavour).
    #[default]
    Provider,
    /// The order store's calls (the SQLite database, generic flavour).
    Store,
}

/// A degrade flag the scenario expects to turn on within `on_within` of the fault's start and back off
/// within `off_within` of its end. These are reaction times of the service, not scaled by `--time-scale`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub flag: String,
    #[serde(with = "humantime_serde")]
    pub on_within: Duration,
    #[serde(with = "humantime_serde")]
    pub off_within: Duration,
}

/// Durations as humantime strings (`250ms`, `4s`).
mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, de::Error};

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(de)?;
        humantime::parse_duration(&text).map_err(|e| D::Error::custom(format!("`{text}`: {e}")))
    }
}

impl Plan {
    /// Reads and checks the plan; errors name the file, the field and the reason.
    pub fn load(path: &Path) -> Result<Plan, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let plan: Plan = serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if plan.load.rps == 0 || plan.load.workers == 0 {
            return Err(format!("{}: load: rps and workers must be at least 1", path.display()));
        }
        if plan.load.mix.total() == 0 || plan.load.mix.symbols == 0 {
            return Err(format!("{}: load.mix: give some weight to a route and at least one symbol", path.display()));
        }
        for (i, s) in plan.scenarios.iter().enumerate() {
            if let Some([lo, hi]) = s.injected_band
                && (!(0.0..=1.0).contains(&lo) || !(lo..=1.0).contains(&hi))
            {
                return Err(format!("{}: scenarios[{i}].injected_band: need 0 ≤ low ≤ high ≤ 1", path.display()));
            }
            if s.injected_band.is_none() && s.chaos.pressure.is_empty() {
                return Err(format!(
                    "{}: scenarios[{i}].injected_band: a scenario with faults needs its band",
                    path.display()
                ));
            }
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_plan_loads_and_every_scenario_compiles() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/chaos/gameday.yaml");
        let plan = Plan::load(&path).unwrap();
        assert_eq!(plan.scenarios.len(), 7);
        for scenario in plan.scenarios {
            let controller = chaos_core::Controller::builder().environment(chaos_core::Environment::Test).build();
            let mut chaos = scenario.chaos;
            chaos.armed = false;
            controller.load(chaos).unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
        }
    }

    #[test]
    fn a_bad_plan_names_the_file_and_field() {
        let dir = std::env::temp_dir().join(format!("gameday-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plan.yaml");
        std::fs::write(&path, "load: { rps: 10, workers: 1, client_timeout: 1s }\nslo: {}\n").unwrap();
        let err = Plan::load(&path).unwrap_err();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
