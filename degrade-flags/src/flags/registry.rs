//! The flag registry: definitions, the layered sources of each flag's value, lock-free handles and
//! change notification.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use brownout_foundation::sync::{lock, read, write};

use super::error::FlagError;
use super::file::{FlagFile, FlagSpec, check_name};
use super::value::{FlagKind, FlagValue};

/// Which source decided a flag's value, highest precedence first.
///
/// Every change of a value is logged with `by=trigger` when a trigger made it (set or cleared the trigger
/// layer) and `by=manual` otherwise: an override, the environment or the flag file, all a person's doing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Set by the program (or the admin API) with [`Flags::set`].
    Override,
    /// From the environment variable `DEGRADE_<FLAG>`.
    Env,
    /// The flag file's `value:` (what `degrade set` writes): a person's setting, so it wins over triggers.
    File,
    /// Flipped by a trigger; the name says which. Triggers move only flags no person has set.
    Trigger(Arc<str>),
    /// Nothing set it: the flag's default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Override => f.write_str("override"),
            Source::Env => f.write_str("env"),
            Source::Trigger(name) => write!(f, "trigger:{name}"),
            Source::File => f.write_str("file"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// One change of a flag's value, as subscribers see it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlagChange {
    /// The flag.
    pub flag: Arc<str>,
    /// The value before.
    pub old: String,
    /// The value now.
    pub new: String,
    /// Whether the flag is now away from its default (degraded).
    pub degraded: bool,
    /// Which source decided.
    pub source: Source,
}

#[derive(Debug, Default)]
struct Layers {
    overridden: Option<FlagValue>,
    env: Option<FlagValue>,
    /// The triggers that are on, by name, oldest first.
    triggers: Vec<(Arc<str>, FlagValue)>,
    file: Option<FlagValue>,
}

impl Layers {
    fn effective(&self, default: FlagValue) -> (FlagValue, Source) {
        if let Some(v) = self.overridden {
            (v, Source::Override)
        } else if let Some(v) = self.env {
            (v, Source::Env)
        } else if let Some(v) = self.file {
            (v, Source::File)
        } else if let Some((name, v)) = self.strongest_trigger(default) {
            (v, Source::Trigger(name.clone()))
        } else {
            (default, Source::Default)
        }
    }

    /// Among the triggers that are on, the one that degrades most: for a number, the value furthest from the
    /// default (two shedding triggers at 50 and 90: 90); otherwise the trigger that turned on last.
    fn strongest_trigger(&self, default: FlagValue) -> Option<(&Arc<str>, FlagValue)> {
        let distance = |v: FlagValue| match (v, default) {
            (FlagValue::Number(v), FlagValue::Number(d)) => (v - d).abs(),
            _ => 0.0,
        };
        let mut best: Option<(&Arc<str>, FlagValue)> = None;
        for (name, value) in &self.triggers {
            if best.is_none_or(|(_, b)| distance(*value) >= distance(b)) {
                best = Some((name, *value));
            }
        }
        best
    }

    /// Turns trigger `name` on with `value`, or off.
    fn set_trigger(&mut self, name: Arc<str>, value: Option<FlagValue>) {
        self.triggers.retain(|(n, _)| *n != name);
        if let Some(value) = value {
            self.triggers.push((name, value));
        }
    }
}

/// A defined flag: its type and default, the word readers load, and the layers behind it.
pub(crate) struct FlagState {
    pub(crate) name: Arc<str>,
    pub(crate) kind: FlagKind,
    pub(crate) default: FlagValue,
    pub(crate) description: Option<String>,
    /// The effective value, encoded: the only thing a reader touches.
    word: AtomicU64,
    layers: Mutex<(Layers, Source)>,
    gauge: metrics::Gauge,
}

impl fmt::Debug for FlagState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flag").field("name", &self.name).field("value", &self.value()).finish()
    }
}

impl FlagState {
    fn new(spec: &FlagSpec) -> Self {
        metrics::describe_gauge!("degrade_flag", "A degrade flag's value (bool 0/1, strategy index, number).");
        let gauge = metrics::gauge!("degrade_flag", "flag" => spec.name.clone());
        gauge.set(spec.default.as_gauge());
        Self {
            name: spec.name.as_str().into(),
            kind: spec.kind.clone(),
            default: spec.default,
            description: spec.description.clone(),
            word: AtomicU64::new(spec.default.encode()),
            layers: Mutex::new((Layers::default(), Source::Default)),
            gauge,
        }
    }

    #[inline]
    pub(crate) fn word(&self) -> u64 {
        self.word.load(Ordering::Relaxed)
    }

    pub(crate) fn value(&self) -> FlagValue {
        FlagValue::decode(&self.kind, self.word())
    }

    /// Changes one layer and recomputes; returns the change if the value moved. `by` is `trigger` or `manual`.
    fn update(&self, by: &'static str, change: impl FnOnce(&mut Layers)) -> Option<FlagChange> {
        let mut guard = lock(&self.layers);
        let (layers, source) = &mut *guard;
        change(layers);
        let (value, new_source) = layers.effective(self.default);
        let old = self.value();
        *source = new_source.clone();
        if old == value {
            return None;
        }
        self.word.store(value.encode(), Ordering::Relaxed);
        self.gauge.set(value.as_gauge());
        let change = FlagChange {
            flag: self.name.clone(),
            old: self.kind.format(old),
            new: self.kind.format(value),
            degraded: value != self.default,
            source: new_source,
        };
        tracing::info!(
            degrade_mode = %if change.degraded { "ON" } else { "OFF" },
            flag = %change.flag,
            value = %change.new,
            was = %change.old,
            source = %change.source,
            by = %by,
            "degrade flag changed"
        );
        Some(change)
    }

    fn source(&self) -> Source {
        lock(&self.layers).1.clone()
    }
}

type Subscriber = Arc<dyn Fn(&FlagChange) + Send + Sync>;

struct Inner {
    flags: RwLock<BTreeMap<String, Arc<FlagState>>>,
    subscribers: RwLock<Vec<Subscriber>>,
    /// Serialises file loads; the file last loaded and what it said.
    loading: Mutex<Option<(PathBuf, FlagFile)>>,
}

/// The flags of a process: cheap to clone, every clone sees the same flags.
///
/// A flag's value comes from its highest-precedence source: a programmatic override ([`set`](Self::set), the
/// admin API), the environment (`DEGRADE_<FLAG>`, the name upper-cased with `.` and `-` as `_`), the flag
/// file's `value:` (what `degrade set` writes), a trigger ([`set_trigger`](Self::set_trigger)), and finally
/// its default. Every source above the triggers is a person's setting, so a manual setting always wins over
/// a trigger and stays until a person removes it (`degrade unset`, [`unset`](Self::unset)); a trigger moves
/// only a flag that no person has set. Readers hold a typed handle ([`BoolFlag`], [`StrategyFlag`],
/// [`NumberFlag`]) whose `get` is one relaxed atomic load.
#[derive(Clone)]
pub struct Flags {
    inner: Arc<Inner>,
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = read(&self.inner.flags);
        f.debug_map().entries(flags.iter()).finish()
    }
}

impl Default for Flags {
    fn default() -> Self {
        Self::new()
    }
}

/// A row of [`Flags::list`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FlagInfo {
    /// Name.
    pub name: String,
    /// `bool`, `strategy` or `number`.
    pub kind: &'static str,
    /// The value in force.
    pub value: String,
    /// The default.
    pub default: String,
    /// Which source decided.
    pub source: Source,
    /// What the flag does.
    pub description: Option<String>,
}

/// The environment variable that sets `flag`: `quotes.source` → `DEGRADE_QUOTES_SOURCE`.
pub fn env_var(flag: &str) -> String {
    let mut var = String::from("DEGRADE_");
    var.extend(flag.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    var
}

impl Flags {
    /// No flags yet.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                flags: RwLock::new(BTreeMap::new()),
                subscribers: RwLock::new(Vec::new()),
                loading: Mutex::new(None),
            }),
        }
    }

    /// Flags defined and set by a file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, FlagError> {
        let flags = Self::new();
        flags.load_file(path)?;
        Ok(flags)
    }

    /// Defines a flag in code (or checks that an existing one has the same type).
    pub fn define(&self, name: &str, kind: FlagKind, default: &str) -> Result<(), FlagError> {
        check_name(name).map_err(|r| FlagError::new(name, r))?;
        let default = kind.parse(default).map_err(|r| FlagError::new(format!("{name}.default"), r))?;
        let spec = FlagSpec { name: name.to_owned(), kind, default, value: None, description: None };
        let env = read_env(&spec)?;
        let state = self.entry(&spec)?;
        let change = state.update("manual", |l| l.env = env);
        self.publish(change.into_iter().collect());
        Ok(())
    }

    /// The state for `spec`, created if new; an existing flag must keep its type.
    fn entry(&self, spec: &FlagSpec) -> Result<Arc<FlagState>, FlagError> {
        let mut flags = write(&self.inner.flags);
        if let Some(existing) = flags.get(&spec.name) {
            if existing.kind != spec.kind {
                return Err(FlagError::new(
                    format!("flags.{}.type", spec.name),
                    format!(
                        "the flag is a {} already; a flag's type cannot change while it runs",
                        existing.kind.name()
                    ),
                ));
            }
            return Ok(existing.clone());
        }
        let state = Arc::new(FlagState::new(spec));
        flags.insert(spec.name.clone(), state.clone());
        Ok(state)
    }

    /// Loads a flag file: defines its flags and sets their file layer, all or nothing. Flags the new file no
    /// longer sets fall back to their other sources. On error nothing changes.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<(), FlagError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| FlagError::new("", format!("cannot read the file: {e}")).in_file(Some(path)));
        let bytes = bytes
            .inspect_err(|e| tracing::warn!(error = %e, "flag file rejected; the last good flags stay in force"))?;
        self.load_bytes(path, &bytes)
    }

    /// [`load_file`](Self::load_file) from the file's bytes, as a watcher read them; `path` names the file.
    pub fn load_bytes(&self, path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), FlagError> {
        let path = path.as_ref();
        let mut loading = lock(&self.inner.loading);
        let file = FlagFile::from_bytes(bytes, path).map_err(|e| {
            tracing::warn!(error = %e, "flag file rejected; the last good flags stay in force");
            e
        })?;
        if loading.as_ref().is_some_and(|(p, last)| p == path && *last == file) {
            tracing::debug!(file = %path.display(), "flag file unchanged; nothing to do");
            return Ok(());
        }
        // Check everything before changing anything.
        let mut envs = Vec::with_capacity(file.flags.len());
        {
            let flags = read(&self.inner.flags);
            for spec in file.flags.values() {
                if let Some(existing) = flags.get(&spec.name).filter(|e| e.kind != spec.kind) {
                    let e = FlagError::new(
                        format!("flags.{}.type", spec.name),
                        format!(
                            "the flag is a {} already; a flag's type cannot change while it runs",
                            existing.kind.name()
                        ),
                    )
                    .in_file(Some(path));
                    tracing::warn!(error = %e, "flag file rejected; the last good flags stay in force");
                    return Err(e);
                }
                envs.push(read_env(spec)?);
            }
        }
        let mut changes = Vec::new();
        for (spec, env) in file.flags.values().zip(envs) {
            let state = self.entry(spec)?;
            changes.extend(state.update("manual", |l| {
                l.file = spec.value;
                l.env = env;
            }));
        }
        let others: Vec<Arc<FlagState>> = {
            let flags = read(&self.inner.flags);
            flags.iter().filter(|(name, _)| !file.flags.contains_key(*name)).map(|(_, s)| s.clone()).collect()
        };
        for state in others {
            changes.extend(state.update("manual", |l| l.file = None));
        }
        tracing::info!(file = %path.display(), flags = file.flags.len(), "flag file loaded");
        *loading = Some((path.to_path_buf(), file));
        drop(loading);
        self.publish(changes);
        Ok(())
    }

    /// The file last loaded.
    pub fn file(&self) -> Option<PathBuf> {
        lock(&self.inner.loading).as_ref().map(|(path, _)| path.clone())
    }

    fn state(&self, name: &str) -> Result<Arc<FlagState>, FlagError> {
        let flags = read(&self.inner.flags);
        flags.get(name).cloned().ok_or_else(|| FlagError::new(name, "no such flag"))
    }

    fn typed(&self, name: &str, want: &'static str) -> Result<Arc<FlagState>, FlagError> {
        let state = self.state(name)?;
        if state.kind.name() != want {
            return Err(FlagError::new(name, format!("is a {} flag, not a {want} flag", state.kind.name())));
        }
        Ok(state)
    }

    /// A handle on a bool flag.
    pub fn bool(&self, name: &str) -> Result<BoolFlag, FlagError> {
        self.typed(name, "bool").map(|state| BoolFlag { state })
    }

    /// A handle on a strategy flag.
    pub fn strategy(&self, name: &str) -> Result<StrategyFlag, FlagError> {
        self.typed(name, "strategy").map(|state| StrategyFlag { state })
    }

    /// A handle on a number flag.
    pub fn number(&self, name: &str) -> Result<NumberFlag, FlagError> {
        self.typed(name, "number").map(|state| NumberFlag { state })
    }

    /// Overrides a flag from code or an admin API: the highest precedence. `value` is checked against the
    /// flag's type.
    pub fn set(&self, name: &str, value: &str) -> Result<(), FlagError> {
        let state = self.state(name)?;
        let value = state.kind.parse(value).map_err(|r| FlagError::new(name, r))?;
        let change = state.update("manual", |l| l.overridden = Some(value));
        self.publish(change.into_iter().collect());
        Ok(())
    }

    /// Drops the override of a flag.
    pub fn unset(&self, name: &str) -> Result<(), FlagError> {
        let state = self.state(name)?;
        let change = state.update("manual", |l| l.overridden = None);
        self.publish(change.into_iter().collect());
        Ok(())
    }

    /// Turns trigger `trigger` on with `value` (`Some`) or off (`None`) for a flag. Several triggers may hold
    /// one flag: the one that degrades most decides (for a number flag the value furthest from the default,
    /// otherwise the one that turned on last); a trigger turning off leaves the others in force.
    /// A manual setting (override or environment) still wins.
    pub fn set_trigger(&self, name: &str, value: Option<FlagValue>, trigger: &str) -> Result<(), FlagError> {
        let state = self.state(name)?;
        if let Some(v) = value {
            let valid = match (&state.kind, v) {
                (FlagKind::Bool, FlagValue::Bool(_)) => true,
                (FlagKind::Strategy(o), FlagValue::Strategy(i)) => (i as usize) < o.len(),
                (FlagKind::Number { min, max }, FlagValue::Number(n)) => n >= *min && n <= *max,
                _ => false,
            };
            if !valid {
                return Err(FlagError::new(name, format!("{v} is not a valid {} value", state.kind.name())));
            }
        }
        let trigger: Arc<str> = trigger.into();
        let change = state.update("trigger", |l| l.set_trigger(trigger, value));
        if change.is_none() && value.is_some() && !matches!(state.source(), Source::Trigger(_)) {
            tracing::info!(flag = name, source = %state.source(), "trigger fired but a manual setting decides");
        }
        self.publish(change.into_iter().collect());
        Ok(())
    }

    /// The type of a flag.
    pub fn kind(&self, name: &str) -> Result<FlagKind, FlagError> {
        Ok(self.state(name)?.kind.clone())
    }

    /// The value in force and its source.
    pub fn get(&self, name: &str) -> Result<(String, Source), FlagError> {
        let state = self.state(name)?;
        Ok((state.kind.format(state.value()), state.source()))
    }

    /// Every flag, by name.
    pub fn list(&self) -> Vec<FlagInfo> {
        let flags = read(&self.inner.flags);
        flags
            .values()
            .map(|s| FlagInfo {
                name: s.name.to_string(),
                kind: s.kind.name(),
                value: s.kind.format(s.value()),
                default: s.kind.format(s.default),
                source: s.source(),
                description: s.description.clone(),
            })
            .collect()
    }

    /// Calls `f` after every change of any flag's value (never under a lock of the registry).
    pub fn subscribe(&self, f: impl Fn(&FlagChange) + Send + Sync + 'static) {
        write(&self.inner.subscribers).push(Arc::new(f));
    }

    fn publish(&self, changes: Vec<FlagChange>) {
        if changes.is_empty() {
            return;
        }
        let subscribers = read(&self.inner.subscribers).clone();
        for change in &changes {
            for subscriber in &subscribers {
                subscriber(change);
            }
        }
    }
}

fn read_env(spec: &FlagSpec) -> Result<Option<FlagValue>, FlagError> {
    let var = env_var(&spec.name);
    match std::env::var(&var) {
        Ok(text) => spec.kind.parse(&text).map(Some).map_err(|r| FlagError::new(format!("{var} (environment)"), r)),
        Err(_) => Ok(None),
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            state: Arc<FlagState>,
        }

        impl $name {
            /// The flag's name.
            pub fn name(&self) -> &str {
                &self.state.name
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.state.fmt(f)
            }
        }
    };
}

handle!(
    /// A bool flag: [`get`](Self::get) is one relaxed atomic load.
    BoolFlag
);
handle!(
    /// A strategy flag: [`index`](Self::index) is one relaxed atomic load.
    StrategyFlag
);
handle!(
    /// A number flag: [`get`](Self::get) is one relaxed atomic load.
    NumberFlag
);

impl BoolFlag {
    /// Is the flag on?
    #[inline]
    pub fn get(&self) -> bool {
        self.state.word() != 0
    }
}

impl StrategyFlag {
    /// The index of the strategy in force among the flag's options.
    #[inline]
    pub fn index(&self) -> usize {
        self.state.word() as usize
    }

    /// The name of the strategy in force.
    #[inline]
    pub fn get(&self) -> &str {
        match &self.state.kind {
            FlagKind::Strategy(options) => options.get(self.index()).map_or("", |o| o),
            _ => "",
        }
    }
}

impl NumberFlag {
    /// The number in force.
    #[inline]
    pub fn get(&self) -> f64 {
        f64::from_bits(self.state.word())
    }
}
