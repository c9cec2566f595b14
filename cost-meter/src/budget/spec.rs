//! Budget files (`configs/budgets/*.yaml`): the schema, its validation, and the set of budgets of a directory.
//!
//! ```yaml
//! name: research-cluster            # unique across the directory: [a-z0-9][a-z0-9_-]*
//! owner: research@example.com       # who is alerted
//! description: shared research jobs # optional
//! monthly_cpu_hours: 1800           # at least one of the two amounts; positive and finite
//! monthly_memory_gb_hours: 5400
//! alert_thresholds: { warn: 0.7, critical: 0.9 }   # optional, these defaults; 0 < warn < critical <= 1
//! hysteresis: 0.05                  # optional, default 0.05; an alert clears below threshold - hysteresis
//! match: { team: research, env: prod }             # optional label selector (env, team, service, strategy,
//!                                                  # tier); exact values; empty or absent = every job
//! guardrails:                       # optional, applied while the budget is critical
//!   max_concurrency_at_critical: 2
//!   freeze_adhoc_at_critical: true
//! heavy_windows: ["22:00-06:00"]    # optional, UTC; absent = heavy jobs not gated by this budget,
//!                                   # [] = heavy jobs only by override
//! ```
//!
//! Critical is capped at 1 (100% of the budget) so that guardrails act before the budget is spent; an
//! overrun is still visible as a utilisation above 1.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{BudgetError, BudgetErrors};
use super::window::HeavyWindow;
use crate::{Labels, Tier};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    name: String,
    owner: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    monthly_cpu_hours: Option<f64>,
    #[serde(default)]
    monthly_memory_gb_hours: Option<f64>,
    #[serde(default)]
    alert_thresholds: Option<RawThresholds>,
    #[serde(default)]
    hysteresis: Option<f64>,
    #[serde(default, rename = "match")]
    selector: BTreeMap<String, String>,
    #[serde(default)]
    guardrails: Option<RawGuardrails>,
    #[serde(default)]
    heavy_windows: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThresholds {
    warn: f64,
    critical: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuardrails {
    #[serde(default)]
    max_concurrency_at_critical: Option<u64>,
    #[serde(default)]
    freeze_adhoc_at_critical: bool,
}

/// The utilisation (fraction of the monthly amount) at which a budget warns and goes critical.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Thresholds {
    /// Warn at or above this utilisation (default 0.7).
    pub warn: f64,
    /// Critical at or above this utilisation (default 0.9); guardrails apply.
    pub critical: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { warn: 0.7, critical: 0.9 }
    }
}

impl Thresholds {
    /// Warn at `warn` and go critical at `critical` utilisation (fractions of the budget).
    pub fn new(warn: f64, critical: f64) -> Self {
        Self { warn, critical }
    }
}

/// The default hysteresis: an alert clears only below its threshold minus 0.05.
pub const DEFAULT_HYSTERESIS: f64 = 0.05;

/// What a budget does to the process while it is critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GuardrailSpec {
    /// Lower the shared [`ConcurrencyLimit`](crate::guardrail::ConcurrencyLimit) to this many concurrent jobs or
    /// requests.
    pub max_concurrency_at_critical: Option<usize>,
    /// Refuse new ad-hoc runs (see [`AdhocFreeze`](crate::guardrail::AdhocFreeze)).
    pub freeze_adhoc_at_critical: bool,
}

brownout_foundation::setters! {
    impl GuardrailSpec {
        max_concurrency_at_critical: Some(usize),
        freeze_adhoc_at_critical: bool,
    }
}

/// Which jobs a budget covers: exact values of some of the labels `env`, `team`, `service`, `strategy`, `tier`.
/// An empty selector covers every job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(BTreeMap<String, String>);

impl Selector {
    /// A selector from `(label, value)` pairs; `Err` names a label that does not exist.
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, String> {
        let map: BTreeMap<String, String> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        for (k, v) in &map {
            if !Labels::NAMES.contains(&k.as_str()) {
                return Err(format!("`{k}` is not a label: expected env, team, service, strategy or tier"));
            }
            if k == "tier" {
                v.parse::<Tier>().map_err(|e| e.to_string())?;
            }
        }
        Ok(Selector(map))
    }

    /// Whether a job with these labels is covered.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|(k, v)| labels.get(k) == Some(v.as_str()))
    }

    /// The `(label, value)` pairs, sorted by label.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether it covers every job.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One validated budget.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Budget {
    /// Unique name: `[a-z0-9][a-z0-9_-]*`, at most 63 characters (it becomes a metric label value).
    pub name: String,
    /// Who owns it and is alerted.
    pub owner: String,
    /// What it is for.
    pub description: Option<String>,
    /// CPU-hours per calendar month (UTC), if CPU is budgeted.
    pub monthly_cpu_hours: Option<f64>,
    /// Memory GB-hours per calendar month (UTC), if memory is budgeted.
    pub monthly_memory_gb_hours: Option<f64>,
    /// Warn and critical utilisation.
    pub thresholds: Thresholds,
    /// How far below a threshold utilisation must fall for its alert to clear.
    pub hysteresis: f64,
    /// Which jobs it covers.
    pub selector: Selector,
    /// What it does while critical.
    pub guardrails: GuardrailSpec,
    /// When heavy jobs it covers may run (UTC); `None` = not gated by this budget.
    pub heavy_windows: Option<Vec<HeavyWindow>>,
    /// The file it came from.
    pub file: Option<PathBuf>,
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(format!("`{name}` is not a budget name: [a-z0-9][a-z0-9_-]*, at most 63 bytes")) }
}

fn check_amount(v: Option<f64>, field: &str, errors: &mut Vec<BudgetError>) -> Option<f64> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            errors.push(BudgetError::new(field, format!("must be a positive finite number, got {x}")));
            None
        }
        other => other,
    }
}

impl Budget {
    /// Parses and validates one budget file's YAML; `origin` names the file in errors. Every validation error
    /// is returned (a YAML or schema error stops at the first).
    pub fn parse(text: &str, origin: Option<&Path>) -> Result<Budget, BudgetErrors> {
        let raw: RawBudget =
            brownout_foundation::parse::yaml(text).map_err(|e| BudgetError::new(e.field, e.reason).in_file(origin))?;
        Self::check(raw, origin).map_err(|errs| BudgetErrors(errs.into_iter().map(|e| e.in_file(origin)).collect()))
    }

    /// Reads and validates a budget file.
    pub fn read(path: &Path) -> Result<Budget, BudgetErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| BudgetError::new("", format!("cannot read the file: {e}")).in_file(Some(path)))?;
        Self::parse(&text, Some(path))
    }

    fn check(raw: RawBudget, origin: Option<&Path>) -> Result<Budget, Vec<BudgetError>> {
        let mut errors = Vec::new();
        if let Err(r) = check_name(&raw.name) {
            errors.push(BudgetError::new("name", r));
        }
        if raw.owner.trim().is_empty() {
            errors.push(BudgetError::new("owner", "must not be empty"));
        }
        let cpu = check_amount(raw.monthly_cpu_hours, "monthly_cpu_hours", &mut errors);
        let mem = check_amount(raw.monthly_memory_gb_hours, "monthly_memory_gb_hours", &mut errors);
        if raw.monthly_cpu_hours.is_none() && raw.monthly_memory_gb_hours.is_none() {
            errors.push(BudgetError::new("", "needs monthly_cpu_hours, monthly_memory_gb_hours or both"));
        }
        let thresholds = match raw.alert_thresholds {
            None => Thresholds::default(),
            Some(RawThresholds { warn, critical }) => {
                if !(warn.is_finite() && warn > 0.0) {
                    errors.push(BudgetError::new("alert_thresholds.warn", format!("must be above 0, got {warn}")));
                } else if warn >= critical || critical.is_nan() {
                    errors.push(BudgetError::new(
                        "alert_thresholds.warn",
                        format!("must be below critical ({critical}), got {warn}"),
                    ));
                }
                if !(critical.is_finite() && critical > 0.0 && critical <= 1.0) {
                    errors.push(BudgetError::new(
                        "alert_thresholds.critical",
                        format!("must be within (0, 1], got {critical}"),
                    ));
                }
                Thresholds { warn, critical }
            }
        };
        let hysteresis = raw.hysteresis.unwrap_or(DEFAULT_HYSTERESIS);
        if !(hysteresis.is_finite() && hysteresis >= 0.0 && hysteresis < thresholds.warn) {
            errors.push(BudgetError::new(
                "hysteresis",
                format!("must be at least 0 and below warn ({}), got {hysteresis}", thresholds.warn),
            ));
        }
        let mut pairs = BTreeMap::new();
        for (k, v) in raw.selector {
            match Selector::new([(k.clone(), v.clone())]) {
                Ok(_) => {
                    pairs.insert(k, v);
                }
                Err(r) => errors.push(BudgetError::new(format!("match.{k}"), r)),
            }
        }
        let guardrails = match raw.guardrails {
            None => GuardrailSpec::default(),
            Some(g) => {
                let max = match g.max_concurrency_at_critical {
                    Some(0) => {
                        errors.push(BudgetError::new(
                            "guardrails.max_concurrency_at_critical",
                            "must be at least 1 (to stop new ad-hoc runs, use freeze_adhoc_at_critical)",
                        ));
                        None
                    }
                    Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                    None => None,
                };
                GuardrailSpec { max_concurrency_at_critical: max, freeze_adhoc_at_critical: g.freeze_adhoc_at_critical }
            }
        };
        let heavy_windows = raw.heavy_windows.map(|ws| {
            ws.iter()
                .enumerate()
                .filter_map(|(i, w)| {
                    w.parse::<HeavyWindow>()
                        .map_err(|r| errors.push(BudgetError::new(format!("heavy_windows[{i}]"), r)))
                        .ok()
                })
                .collect::<Vec<_>>()
        });
        if errors.is_empty() {
            Ok(Budget {
                name: raw.name,
                owner: raw.owner,
                description: raw.description,
                monthly_cpu_hours: cpu,
                monthly_memory_gb_hours: mem,
                thresholds,
                hysteresis,
                selector: Selector(pairs),
                guardrails,
                heavy_windows,
                file: origin.map(Path::to_path_buf),
            })
        } else {
            Err(errors)
        }
    }

    /// Whether this budget covers a job with these labels.
    pub fn covers(&self, labels: &Labels) -> bool {
        self.selector.matches(labels)
    }
}

/// The `name` of a budget file that failed validation, if it has a readable one.
fn name_only(file: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct NameOnly {
        name: String,
    }
    let text = std::fs::read_to_string(file).ok()?;
    serde_saphyr::from_str::<NameOnly>(&text).ok().map(|n| n.name)
}

/// The budgets of a directory, with unique names, in file-name order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BudgetSet {
    budgets: Vec<Budget>,
}

impl BudgetSet {
    /// A set from budgets; `Err` if two share a name.
    pub fn new(budgets: Vec<Budget>) -> Result<Self, BudgetErrors> {
        let mut seen = BTreeSet::new();
        let mut errors = Vec::new();
        for b in &budgets {
            if !seen.insert(b.name.as_str()) {
                let first = budgets.iter().find(|o| o.name == b.name).and_then(|o| o.file.as_ref());
                let where_ = first.map(|f| format!(" (also in {})", f.display())).unwrap_or_default();
                errors.push(
                    BudgetError::new("name", format!("`{}` is used by another budget{where_}", b.name))
                        .in_file(b.file.as_deref()),
                );
            }
        }
        if errors.is_empty() { Ok(BudgetSet { budgets }) } else { Err(BudgetErrors(errors)) }
    }

    /// Loads every `*.yaml` and `*.yml` file of a directory. All errors of all files are returned together.
    /// A directory without a budget file is an error.
    pub fn load_dir(dir: &Path) -> Result<Self, BudgetErrors> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| BudgetError::new("", format!("cannot read the directory: {e}")).in_file(Some(dir)))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(BudgetError::new("", "no budget files (*.yaml, *.yml)").in_file(Some(dir)).into());
        }
        let (mut budgets, mut errors) = (Vec::new(), Vec::new());
        // names of files refused for other reasons still take part in the uniqueness check
        let mut refused_names: Vec<(String, PathBuf)> = Vec::new();
        for file in &files {
            match Budget::read(file) {
                Ok(b) => budgets.push(b),
                Err(BudgetErrors(es)) => {
                    errors.extend(es);
                    if let Some(name) = name_only(file) {
                        refused_names.push((name, file.clone()));
                    }
                }
            }
        }
        for (i, (name, file)) in refused_names.iter().enumerate() {
            let earlier = refused_names[..i].iter().find(|(n, _)| n == name).map(|(_, f)| f);
            if let Some(other) = budgets.iter().find(|b| &b.name == name).and_then(|b| b.file.as_ref()).or(earlier) {
                errors.push(
                    BudgetError::new(
                        "name",
                        format!("`{name}` is used by another budget (also in {})", other.display()),
                    )
                    .in_file(Some(file)),
                );
            }
        }
        match BudgetSet::new(budgets) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(BudgetErrors(errors)),
            Err(BudgetErrors(es)) => {
                errors.extend(es);
                Err(BudgetErrors(errors))
            }
        }
    }

    /// Every budget.
    pub fn iter(&self) -> impl Iterator<Item = &Budget> {
        self.budgets.iter()
    }

    /// The budget called `name`.
    pub fn get(&self, name: &str) -> Option<&Budget> {
        self.budgets.iter().find(|b| b.name == name)
    }

    /// The budgets that cover a job with these labels.
    pub fn covering<'a>(&'a self, labels: &'a Labels) -> impl Iterator<Item = &'a Budget> + 'a {
        self.budgets.iter().filter(move |b| b.covers(labels))
    }

    /// How many budgets there are.
    pub fn len(&self) -> usize {
        self.budgets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.budgets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "name: research-cluster\nowner: research@example.com\nmonthly_cpu_hours: 1800\n\
        monthly_memory_gb_hours: 5400\nalert_thresholds: { warn: 0.7, critical: 0.9 }\n";

    #[test]
    fn the_issue_example_parses_with_defaults() {
        let b = Budget::parse(EXAMPLE, None).unwrap();
        assert_eq!(b.monthly_cpu_hours, Some(1800.0));
        assert_eq!(b.thresholds, Thresholds { warn: 0.7, critical: 0.9 });
        assert_eq!(b.hysteresis, DEFAULT_HYSTERESIS);
        assert!(b.selector.is_empty() && b.covers(&Labels::default()));
        assert_eq!(b.heavy_windows, None);
    }

    #[test]
    fn selectors_and_windows() {
        let text = format!(
            "{EXAMPLE}match: {{ team: research, tier: heavy }}\nheavy_windows: [\"22:00-06:00\"]\n\
             guardrails: {{ max_concurrency_at_critical: 2, freeze_adhoc_at_critical: true }}\n"
        );
        let b = Budget::parse(&text, None).unwrap();
        assert!(b.covers(&Labels::new("research", "bt").tier(Tier::Heavy)));
        assert!(!b.covers(&Labels::new("research", "bt")));
        assert!(!b.covers(&Labels::new("ops", "bt").tier(Tier::Heavy)));
        assert_eq!(b.guardrails.max_concurrency_at_critical, Some(2));
        assert_eq!(b.heavy_windows.unwrap()[0].to_string(), "22:00-06:00");
    }

    #[test]
    fn errors_name_the_field_and_all_are_reported() {
        let cases = [
            ("name: x\nowner: o\nmonthly_cpu_hours: 1\ncolour: red\n", "colour", "unknown field"),
            ("name: x\nowner: o\nmonthly_cpu_hours: -1\n", "monthly_cpu_hours", "positive"),
            ("name: x\nowner: o\nmonthly_cpu_hours: .inf\n", "monthly_cpu_hours", "finite"),
            ("name: x\nowner: o\n", "", "needs monthly_cpu_hours"),
            ("name: X Y\nowner: o\nmonthly_cpu_hours: 1\n", "name", "not a budget name"),
            (
                "name: x\nowner: o\nmonthly_cpu_hours: 1\nalert_thresholds: { warn: 0.9, critical: 0.8 }\n",
                "alert_thresholds.warn",
                "below critical",
            ),
            (
                "name: x\nowner: o\nmonthly_cpu_hours: 1\nalert_thresholds: { warn: 0.9, critical: 1.5 }\n",
                "alert_thresholds.critical",
                "(0, 1]",
            ),
            (
                "name: x\nowner: o\nmonthly_cpu_hours: 1\nalert_thresholds: { warn: 0.9 }\n",
                "alert_thresholds",
                "critical",
            ),
            ("name: x\nowner: o\nmonthly_cpu_hours: 1\nhysteresis: 0.8\n", "hysteresis", "below warn"),
            ("name: x\nowner: o\nmonthly_cpu_hours: 1\nmatch: { colour: red }\n", "match.colour", "not a label"),
            ("name: x\nowner: o\nmonthly_cpu_hours: 1\nmatch: { tier: huge }\n", "match.tier", "unknown tier"),
            (
                "name: x\nowner: o\nmonthly_cpu_hours: 1\nheavy_windows: [\"22:00-06:00\", \"25:00-01:00\"]\n",
                "heavy_windows[1]",
                "not a window",
            ),
            (
                "name: x\nowner: o\nmonthly_cpu_hours: 1\nguardrails: { max_concurrency_at_critical: 0 }\n",
                "guardrails.max_concurrency_at_critical",
                "at least 1",
            ),
            (
                "name: x\nowner: o\nmonthly_cpu_hours: 1\nguardrails: { max_concurrency_at_critical: -2 }\n",
                "guardrails.max_concurrency_at_critical",
                "",
            ),
        ];
        for (text, field, reason) in cases {
            let errs = Budget::parse(text, Some(Path::new("b.yaml"))).unwrap_err();
            let e = &errs.errors()[0];
            assert_eq!(e.field(), field, "{text}: {errs}");
            assert!(e.reason().contains(reason), "{text}: {errs}");
            assert_eq!(e.file(), Some(Path::new("b.yaml")));
        }
        let errs = Budget::parse("name: x\nowner: ''\nmonthly_cpu_hours: -1\nhysteresis: -1\n", None).unwrap_err();
        let fields: Vec<_> = errs.errors().iter().map(BudgetError::field).collect();
        assert_eq!(fields, ["owner", "monthly_cpu_hours", "hysteresis"]);
    }

    #[test]
    fn names_are_unique_in_a_set() {
        let a = Budget::parse(EXAMPLE, Some(Path::new("a.yaml"))).unwrap();
        let b = Budget { file: Some("b.yaml".into()), ..a.clone() };
        let errs = BudgetSet::new(vec![a, b]).unwrap_err();
        assert_eq!(errs.errors()[0].file(), Some(Path::new("b.yaml")));
        assert!(errs.to_string().contains("also in a.yaml"), "{errs}");
    }
}
