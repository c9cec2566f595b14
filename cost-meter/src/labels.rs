//! The labels a job carries, and its workload tier.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::str::FromStr;
use std::sync::{PoisonError, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The workload tier of a job: what it may cost and when it may run.
///
/// Tiers order by weight: `Interactive < Batch < Nightly < Heavy`. Budgets gate `Heavy` jobs to their windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
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

/// One label's value: an interned string. Every distinct value is stored once for the life of the process (as
/// the metrics exporter keeps every label set it has seen), so copying a job's labels (once per request under
/// `CostLayer`) allocates nothing and touches no shared state, dropping them does nothing, and comparing two
/// labels is comparing two pointers. Label values are metric labels: keep them few. Reads as a `&str`
/// (`Deref`), compares with strings, and is made from `&str` or `String` (`"replay".into()`; making one looks the
/// value up in the process's table of values).
#[derive(Clone, Default)]
pub struct Label(Option<&'static str>);

/// The process's label values, each stored once: values are few (they are metric labels), and a label made
/// from a value already seen finds it with a shared lock.
static INTERNED: RwLock<BTreeSet<&'static str>> = RwLock::new(BTreeSet::new());

impl Label {
    /// The value.
    pub fn as_str(&self) -> &str {
        self.0.unwrap_or("")
    }

    /// The label for `text` if its value is already stored (or empty).
    fn find(text: &str) -> Option<Label> {
        if text.is_empty() {
            return Some(Label(None));
        }
        INTERNED.read().unwrap_or_else(PoisonError::into_inner).get(text).map(|&value| Label(Some(value)))
    }

    /// The label for `text`, storing `text` as its value when it is new.
    fn store(text: Box<str>) -> Label {
        let mut values = INTERNED.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(&value) = values.get(&*text) {
            return Label(Some(value));
        }
        let value: &'static str = Box::leak(text);
        values.insert(value);
        Label(Some(value))
    }
}

impl Deref for Label {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Label {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Label {
    /// Two labels with the same text hold the same interned string: one pointer comparison.
    fn eq(&self, other: &Label) -> bool {
        match (self.0, other.0) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for Label {}

impl PartialEq<str> for Label {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Label {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Label {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Hash for Label {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Label) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Label {
    fn cmp(&self, other: &Label) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        Label::find(s).unwrap_or_else(|| Label::store(s.into()))
    }
}

impl From<&String> for Label {
    fn from(s: &String) -> Self {
        Label::from(s.as_str())
    }
}

impl From<String> for Label {
    fn from(s: String) -> Self {
        Label::find(&s).unwrap_or_else(|| Label::store(s.into_boxed_str()))
    }
}

impl From<Label> for String {
    fn from(l: Label) -> String {
        l.as_str().to_owned()
    }
}

impl Serialize for Label {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Label::from)
    }
}

/// The labels of a job. They go to metrics (low cardinality by design) and to records; the job id is not a
/// label (it goes to the record).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Labels {
    /// Deployment environment (`dev`, `staging`, `prod`).
    pub env: Label,
    /// Owning team.
    pub team: Label,
    /// Service or tool that runs the job.
    pub service: Label,
    /// Strategy, model or workload name (for a backtest: the strategy under test).
    pub strategy: Label,
    /// Workload tier.
    pub tier: Tier,
}

impl Labels {
    /// Labels with the given team and service; the other fields empty and the tier interactive. Cloning
    /// labels copies pointers to their interned values: nothing is allocated or counted.
    pub fn new(team: impl Into<Label>, service: impl Into<Label>) -> Self {
        Labels { team: team.into(), service: service.into(), ..Labels::default() }
    }

    /// Sets the environment.
    pub fn env(mut self, env: impl Into<Label>) -> Self {
        self.env = env.into();
        self
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: impl Into<Label>) -> Self {
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

    /// A copy, the same as `clone`: label values are interned ([`Label`]), so copies share no count that threads
    /// would contend for.
    #[deprecated(note = "label values are interned: `clone` touches no shared state")]
    pub fn replica(&self) -> Labels {
        self.clone()
    }

    /// The label names, in the order metrics carry them.
    pub const NAMES: [&'static str; 5] = ["env", "team", "service", "strategy", "tier"];
}

impl FromStr for Labels {
    type Err = String;

    /// Parses `name=value` pairs separated by commas (`team=research,service=backtester,tier=heavy`); names
    /// are those of [`Labels::NAMES`], each at most once; an empty text is no label.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut labels = Labels::default();
        let mut seen = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not name=value"))?;
            let (name, value) = (name.trim(), value.trim());
            if seen.contains(&name) {
                return Err(format!("label `{name}` given twice"));
            }
            match name {
                "env" => labels.env = value.into(),
                "team" => labels.team = value.into(),
                "service" => labels.service = value.into(),
                "strategy" => labels.strategy = value.into(),
                "tier" => labels.tier = value.parse().map_err(|e: UnknownTier| e.to_string())?,
                other => {
                    return Err(format!("`{other}` is not a label (expected one of {})", Labels::NAMES.join(", ")));
                }
            }
            seen.push(name);
        }
        Ok(labels)
    }
}

impl fmt::Display for Labels {
    /// The non-empty labels as `name=value` pairs separated by commas, in [`Labels::NAMES`] order (the tier
    /// always); parses back with `FromStr`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for name in Labels::NAMES {
            let value = self.get(name).unwrap_or_default();
            if value.is_empty() {
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
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

    #[test]
    fn equal_values_are_stored_once_and_compare_as_strings() {
        let labels = Labels::new("research", "backtester").env("prod");
        let copy = labels.clone();
        let shared = |a: &Label, b: &Label| matches!((a.0, b.0), (Some(a), Some(b)) if std::ptr::eq(a, b));
        assert!(shared(&labels.team, &copy.team));
        assert!(labels.strategy.0.is_none() && copy.strategy.0.is_none(), "the empty value holds no string");
        let made_again = Labels::new(String::from("research"), "backtester".to_owned().as_str()).env("prod");
        assert!(shared(&labels.team, &made_again.team) && shared(&labels.service, &made_again.service));
        assert_eq!(copy, made_again);
        assert!(labels.team == "research" && labels.strategy == String::new() && labels.strategy.is_empty());
        let json = serde_json::to_string(&labels).unwrap();
        assert_eq!(
            json,
            r#"{"env":"prod","team":"research","service":"backtester","strategy":"","tier":"interactive"}"#
        );
        assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), labels);
    }

    proptest::proptest! {
        #[test]
        fn labels_round_trip_through_their_text(
            env in "[a-z0-9-]{0,6}", team in "[a-z0-9-]{0,6}", service in "[a-z0-9-]{0,6}",
            strategy in "[a-z0-9-]{0,6}", tier in 0usize..4,
        ) {
            let labels = Labels::new(team, service).env(env).strategy(strategy).tier(Tier::ALL[tier]);
            proptest::prop_assert_eq!(labels.to_string().parse::<Labels>(), Ok(labels));
        }

        /// A label compares, orders and hashes as its text, however it was made.
        #[test]
        fn a_label_compares_orders_and_hashes_as_its_text(a in "[ab]{0,2}", b in "[ab]{0,2}") {
            use std::collections::hash_map::DefaultHasher;
            let (la, lb) = (Label::from(a.as_str()), Label::from(b.clone()));
            let hash = |x: &dyn Fn(&mut DefaultHasher)| {
                let mut h = DefaultHasher::new();
                x(&mut h);
                h.finish()
            };
            proptest::prop_assert_eq!(la == lb, a == b);
            proptest::prop_assert_eq!(la.cmp(&lb), a.cmp(&b));
            proptest::prop_assert_eq!(la.clone(), la.clone());
            proptest::prop_assert_eq!(&*la, a.as_str());
            proptest::prop_assert_eq!(hash(&|h| la.hash(h)), hash(&|h| a.as_str().hash(h)));
            // Made again from its text, by either route, a label is the same value.
            let same = |x: &Label, y: &Label| matches!((x.0, y.0), (Some(x), Some(y)) if std::ptr::eq(x, y));
            proptest::prop_assert!(same(&Label::from(a.clone()), &la) || a.is_empty());
            proptest::prop_assert!(same(&Label::from(b.as_str()), &lb) || b.is_empty());
        }

        #[test]
        fn label_text_never_panics(text in ".{0,40}") {
            let _ = text.parse::<Labels>();
        }
    }

    #[test]
    fn bad_label_text_says_why() {
        assert!("colour=blue".parse::<Labels>().unwrap_err().contains("`colour` is not a label"));
        assert!("team".parse::<Labels>().unwrap_err().contains("not name=value"));
        assert!("team=a,team=b".parse::<Labels>().unwrap_err().contains("given twice"));
        assert!("tier=huge".parse::<Labels>().unwrap_err().contains("`huge`"));
    }
}
