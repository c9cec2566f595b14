//! The GameDay plan (YAML; the shipped one is `configs/chaos/gameday.yaml`).

use std::path::Path;
use std::time::Duration;

use brownout_chaos::ChaosConfig;
use serde::Deserialize;

/// A GameDay plan.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Plan {
    /// The service's own limits.
    #[serde(default)]
    pub service: ServiceLimits,
    /// The load offered while the runner watches.
    pub load: Load,
    /// What users must see, and when chaos is aborted.
    pub slo: Slo,
    /// The phases around each fault.
    pub phases: Phases,
    /// The scenarios, in order.
    pub scenarios: Vec<Scenario>,
}

/// The service's limits its triggers judge against.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceLimits {
    /// The memory budget RSS is judged against, in MiB (as a container's limit; default: the limit the
    /// sensor reads, cgroup v2 `memory.max` or physical memory).
    #[serde(default)]
    pub memory_budget_mib: Option<u64>,
    /// The service's timeout on its dependency, for a target the runner builds (the built-in demo); a remote
    /// or user's service has its own.
    #[serde(default, with = "brownout_foundation::duration::option")]
    pub dependency_timeout: Option<Duration>,
}

/// The load the runner offers while it watches: an open loop at `rps`, a weighted mix of routes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Load {
    /// Requests per second, sent on schedule whatever the answers (latency is measured from each request's
    /// intended send time).
    pub rps: u32,
    /// Requests in flight at most.
    pub workers: u32,
    /// A request not answered within this is a failed request (default 5 s).
    #[serde(default = "default_request_timeout", with = "brownout_foundation::duration")]
    pub request_timeout: Duration,
    /// How many distinct `{key}` values a route's path and body draw from, with a skewed popularity (a few hot
    /// keys and a long tail, about 30% of requests on the first 10%); a route may set its own.
    #[serde(default = "default_keys")]
    pub keys: u32,
    /// The routes and their weights (default: `GET /` alone, critical).
    #[serde(default = "default_routes")]
    pub routes: Vec<RouteSpec>,
    /// An answer carrying this header came from a fallback (default `x-served-from`, what the demo sets).
    #[serde(default = "default_fallback_header")]
    pub fallback_header: String,
    /// An answer carrying this header with this value (`name: value`) is a degraded answer the user cannot
    /// use: it counts as an error (default `x-degraded: stale`).
    #[serde(default = "default_stale_header")]
    pub stale_header: String,
    /// A header giving the age of the data answered, in milliseconds (the demo's `x-quote-age-ms`); its p95
    /// and maximum are reported per phase. Absent: not read.
    #[serde(default)]
    pub age_header: Option<String>,
}

/// One route of the load. Its `path` and `body` may hold `{key}` (a key drawn from the route's `keys`, skewed)
/// and `{seq}` (the request's sequence number, unique in the run).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RouteSpec {
    /// The route's name in reports (`quote`, `order`).
    pub name: String,
    /// `GET` by default.
    #[serde(default = "default_method")]
    pub method: String,
    /// The path and query, from `/`.
    pub path: String,
    /// A JSON body (sent with `content-type: application/json`).
    #[serde(default)]
    pub body: Option<String>,
    /// Relative weight in the mix.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Critical routes carry the SLO (their errors and latency are judged); non-critical ones may be shed.
    #[serde(default)]
    pub critical: bool,
    /// This route's own number of keys (default: the load's `keys`).
    #[serde(default)]
    pub keys: Option<u32>,
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_keys() -> u32 {
    8
}

fn default_method() -> String {
    "GET".to_owned()
}

fn default_weight() -> u32 {
    1
}

fn default_routes() -> Vec<RouteSpec> {
    vec![RouteSpec {
        name: "root".into(),
        method: default_method(),
        path: "/".into(),
        body: None,
        weight: 1,
        critical: true,
        keys: None,
    }]
}

fn default_fallback_header() -> String {
    "x-served-from".to_owned()
}

fn default_stale_header() -> String {
    "x-degraded: stale".to_owned()
}

/// The service level users must see during a fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Slo {
    /// The largest share of critical requests that may fail during a fault (a fallback answer is not a
    /// failure), per critical route.
    pub user_error_rate: f64,
    /// The critical routes' p95 during a fault, and the pre-flight's limit.
    #[serde(with = "brownout_foundation::duration")]
    pub p95: Duration,
    /// Back to normal: p95 within this factor of the baseline's (and under `recovery_p95`).
    pub recovery_p95_factor: f64,
    /// Back to normal also means a p95 under this, whatever the baseline (the seeds' "p95 < 200 ms").
    #[serde(default = "default_recovery_p95", with = "brownout_foundation::duration")]
    pub recovery_p95: Duration,
    /// The auto-abort: the SLO guard disarms all chaos when a window is worse than this.
    pub abort: Abort,
}

/// The SLO guard: chaos is disarmed at once when a window is worse than this.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Abort {
    /// Abort when a window's critical error rate exceeds this.
    pub error_rate: f64,
    /// Or its p95 exceeds this.
    #[serde(with = "brownout_foundation::duration")]
    pub p95: Duration,
    /// The guard's window.
    #[serde(with = "brownout_foundation::duration")]
    pub window: Duration,
    /// A window with fewer requests is not judged.
    pub min_requests: u32,
}

/// The phases around each fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Phases {
    /// The steady state before each fault (scaled by the time scale).
    #[serde(with = "brownout_foundation::duration")]
    pub before: Duration,
    /// The recovery phase after it (scaled; at least the SLA plus two windows).
    #[serde(with = "brownout_foundation::duration")]
    pub after: Duration,
    /// Recovery is judged on windows of this length (not scaled: a property of the service).
    #[serde(with = "brownout_foundation::duration")]
    pub window: Duration,
}

fn default_recovery_p95() -> Duration {
    Duration::from_millis(200)
}

/// One scenario: a fault, its expected effect and its recovery SLA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Scenario {
    /// Its name: letters, digits, `_`, `-`, `.` (it names the report files).
    pub name: String,
    /// What the fault is, in words.
    #[serde(default)]
    pub description: String,
    /// How long the fault lasts (scaled by the time scale).
    #[serde(with = "brownout_foundation::duration")]
    pub duration: Duration,
    /// The share of the dependency's calls the faults should hit (absent for a pressure-only scenario).
    #[serde(default)]
    pub injected_band: Option<[f64; 2]>,
    /// Back on the normal path within this of the fault's end (scaled by the time scale).
    #[serde(with = "brownout_foundation::duration")]
    pub recovery_sla: Duration,
    /// The degradation the service must show: which flags turn on during the fault and off after it.
    #[serde(default)]
    pub expect: Vec<Expectation>,
    /// The fault switch the rules go to (a name the target knows: the demo has `provider`, the quote
    /// provider's calls, and `store`, the order store's); absent: the target's first switch.
    #[serde(default)]
    pub on: Option<String>,
    /// The rules armed during the fault (the format of every chaos config).
    pub chaos: ChaosConfig,
}

/// A degrade flag the scenario expects to turn on within `on_within` of the fault's start (of the moment its
/// resource pressure was in place, for a pressure scenario) and back off within `off_within` of its end. These
/// are reaction times of the service, not scaled by `--time-scale`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Expectation {
    /// The flag.
    pub flag: String,
    /// On within this of the fault's start (of the pressure in place, for a pressure scenario).
    #[serde(with = "brownout_foundation::duration")]
    pub on_within: Duration,
    /// Off within this of its end.
    #[serde(with = "brownout_foundation::duration")]
    pub off_within: Duration,
}

impl Plan {
    /// Reads and checks the plan; errors name the file, the field and the reason.
    pub fn load(path: &Path) -> Result<Plan, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        Plan::from_yaml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks a plan from YAML text; errors name the field and the reason.
    pub fn from_yaml(text: &str) -> Result<Plan, String> {
        if brownout_foundation::text::is_blank_document(text) {
            return Err("the plan is empty (only blanks and comments)".into());
        }
        let plan: Plan = brownout_foundation::parse::yaml(text).map_err(|e| e.to_string())?;
        plan.check()?;
        Ok(plan)
    }

    fn check(&self) -> Result<(), String> {
        let plan = self;
        if plan.load.rps == 0 || plan.load.workers == 0 {
            return Err("load: rps and workers must be at least 1".into());
        }
        if plan.load.routes.iter().map(|r| u64::from(r.weight)).sum::<u64>() == 0 {
            return Err("load.routes: give some weight to a route".into());
        }
        for (i, r) in plan.load.routes.iter().enumerate() {
            if !r.path.starts_with('/') {
                return Err(format!("load.routes[{i}].path: `{}` must start with `/`", r.path));
            }
            if http::Method::from_bytes(r.method.as_bytes()).is_err() {
                return Err(format!("load.routes[{i}].method: `{}` is not an HTTP method", r.method));
            }
            if r.keys.unwrap_or(plan.load.keys) == 0 {
                return Err(format!("load.routes[{i}].keys: at least 1"));
            }
        }
        if !plan.load.stale_header.contains(':') {
            return Err(format!("load.stale_header: `{}` is not `name: value`", plan.load.stale_header));
        }
        for (i, s) in plan.scenarios.iter().enumerate() {
            let safe = !s.name.is_empty()
                && s.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                && !s.name.starts_with('.');
            if !safe {
                return Err(format!(
                    "scenarios[{i}].name: `{}`: use letters, digits, `_`, `-` and `.` (it names the report files)",
                    s.name
                ));
            }
            if let Some([lo, hi]) = s.injected_band
                && (!(0.0..=1.0).contains(&lo) || !(lo..=1.0).contains(&hi))
            {
                return Err(format!("scenarios[{i}].injected_band: need 0 ≤ low ≤ high ≤ 1"));
            }
            if s.injected_band.is_none() && s.chaos.pressure.is_empty() {
                return Err(format!("scenarios[{i}].injected_band: a scenario with faults needs its band"));
            }
            if let Some(j) = plan.scenarios[..i].iter().position(|other| other.name == s.name) {
                return Err(format!("scenarios[{i}].name: `{}` is also scenarios[{j}]'s name", s.name));
            }
        }
        Ok(())
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
            let controller =
                brownout_chaos::Controller::builder().environment(brownout_chaos::Environment::Test).build();
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

    /// The shipped plan with one value broken: the error names the path down to it.
    fn shipped_with(from: &str, to: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/chaos/gameday.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains(from), "the shipped plan has `{from}`");
        text.replacen(from, to, 1)
    }

    #[test]
    fn errors_name_the_nested_field() {
        let err = Plan::from_yaml(&shipped_with("rps: 200", "rps: fast")).unwrap_err();
        assert!(err.starts_with("load.rps: "), "{err}");
        let err = Plan::from_yaml(&shipped_with("  rps: 200", "  rps: 200\n  surprise: 1")).unwrap_err();
        assert!(err.contains("surprise"), "{err}");
        assert_eq!(Plan::from_yaml("# nothing\n\n").unwrap_err(), "the plan is empty (only blanks and comments)");
    }
}
