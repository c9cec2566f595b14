//! The shared switch: the active rule set, armed or not, and the per-service [`Decider`] that reads it.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use brownout_foundation::sync::lock;
use http::StatusCode;
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::compile::compile;
use crate::config::ChaosConfig;
use crate::environment::Environment;
use crate::error::ConfigError;
use crate::fault::{Delay, ErrorFault, Outcome};
use crate::injection::{ActiveFault, Injection};
use crate::metrics;
use crate::pressure::{PressureRunner, PressureStatus};
use crate::rng::Stream;
use crate::rule::{NONE, RuleSet, Verdict};
use crate::target::RequestFacts;

/// Bit 0 of the state word: armed. The rest: a generation bumped by every change.
const ARMED: u64 = 1;
const GENERATION: u64 = 2;

static NEXT_CONTROLLER: AtomicU64 = AtomicU64::new(1);

/// The production guard's one slot: which controller has an experiment armed in prod.
static PROD_SLOT: Mutex<Option<(u64, String)>> = Mutex::new(None);

type Hook = Box<dyn Fn() + Send + Sync>;

struct Shared {
    id: u64,
    /// `generation << 1 | armed`; the only word the hot path reads when nothing is armed.
    state: AtomicU64,
    current: ArcSwap<RuleSet>,
    env: Environment,
    clock: Arc<dyn Clock>,
    /// Serialises load, arm and disarm (never taken on the request path).
    write: Mutex<()>,
    on_disarm: Vec<Hook>,
    /// The armed set's resource pressure (see `sync_pressure`).
    pressure: PressureRunner,
    /// Why the set is held disarmed: set by a kill switch, an abort or the TTL, cleared only by
    /// [`Controller::arm`]. Written under `write`.
    latch: Mutex<Option<String>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let mut slot = lock(&PROD_SLOT);
        if slot.as_ref().is_some_and(|(id, _)| *id == self.id) {
            *slot = None;
        }
    }
}

/// The shared chaos switch: holds the active rule set and whether it is armed. Cheap to clone; every clone
/// (and every [`Decider`]) sees the same state.
///
/// Changes ([`load`](Self::load), [`arm`](Self::arm), [`disarm`](Self::disarm)) are rare and serialised;
/// deciders pick them up at their next request.
#[derive(Clone)]
pub struct Controller {
    shared: Arc<Shared>,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("environment", &self.shared.env)
            .field("armed", &self.is_armed())
            .field("rules", &self.shared.current.load().user_rules)
            .finish()
    }
}

/// Builds a [`Controller`] with a chosen environment, clock and disarm hooks.
pub struct ControllerBuilder {
    env: Environment,
    clock: Arc<dyn Clock>,
    on_disarm: Vec<Hook>,
}

impl fmt::Debug for ControllerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerBuilder").field("env", &self.env).finish_non_exhaustive()
    }
}

impl ControllerBuilder {
    /// The environment (default: [`Environment::from_env`]).
    pub fn environment(mut self, env: Environment) -> Self {
        self.env = env;
        self
    }

    /// The clock for rule windows and the TTL (default: [`SystemClock`], as chaos-core assumes no runtime;
    /// chaos-tower's `ChaosHandle` passes `TokioClock`, so its rules follow paused time).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// A function called after every disarm (kill switch, TTL expiry), for example to wake requests that
    /// are sleeping in an injected delay.
    pub fn on_disarm(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_disarm.push(Box::new(hook));
        self
    }

    /// Builds a controller with an empty, disarmed rule set.
    pub fn build(self) -> Controller {
        let empty = compile(ChaosConfig { armed: false, ..ChaosConfig::default() }, self.env, self.clock.clone(), None)
            .expect("the empty config is valid");
        Controller {
            shared: Arc::new(Shared {
                id: NEXT_CONTROLLER.fetch_add(1, Ordering::Relaxed),
                state: AtomicU64::new(0),
                current: ArcSwap::from_pointee(empty),
                env: self.env,
                clock: self.clock,
                write: Mutex::new(()),
                on_disarm: self.on_disarm,
                pressure: PressureRunner::default(),
                latch: Mutex::new(None),
            }),
        }
    }
}

impl Default for Controller {
    fn default() -> Self {
        Self::new()
    }
}

impl Controller {
    /// A controller for the environment named by `BROWNOUT_ENV`, on the system clock, with nothing loaded.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to choose the environment, clock and hooks.
    pub fn builder() -> ControllerBuilder {
        ControllerBuilder { env: Environment::from_env(), clock: Arc::new(SystemClock), on_disarm: Vec::new() }
    }

    /// The environment this controller guards.
    pub fn environment(&self) -> Environment {
        self.shared.env
    }

    /// Is a rule set armed right now?
    pub fn is_armed(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) & ARMED != 0
    }

    /// A decider for one service instance: it picks up the rule set armed now, if any, so that clones of a
    /// service that is never called itself (a prototype in a `BoxCloneService`) start from it too.
    pub fn decider(&self) -> Decider {
        let state = self.shared.state.load(Ordering::Acquire);
        let mut decider = Decider {
            shared: self.shared.clone(),
            set: self.shared.current.load_full(),
            // State 0 is never an armed state: the first armed request refreshes, which adopts the stream.
            state: 0,
            stream: Stream::default(),
        };
        if state & ARMED != 0 {
            decider.refresh(state);
        }
        decider
    }

    /// Validates and installs a new rule set, all or nothing: on error nothing changes and the last good rules
    /// stay active.
    ///
    /// What a load does:
    /// - **Identical config: nothing.** No rule restarts, no counter resets, the seed stays.
    /// - **Changed config while armed:** rules whose settings are unchanged (same name, same fields, same
    ///   set-wide `blast_radius`) keep their window and counters; changed and new rules start their window now.
    ///   The TTL keeps counting from the arming: a reload never extends it. A config without `seed` keeps the
    ///   current seed.
    /// - **Latched disarmed** (after [`disarm`](Self::disarm), an abort or the TTL): the new rules are loaded
    ///   and stay disarmed whatever `armed:` says, until someone calls [`arm`](Self::arm).
    /// - Otherwise `armed: true` (the default) arms the set and `armed: false` disarms it.
    pub fn load(&self, config: ChaosConfig) -> Result<LoadReport, ConfigError> {
        self.load_from(config, None)
    }

    /// Reads a config file and [`load`](Self::load)s it; errors name the file.
    pub fn load_path(&self, path: impl AsRef<Path>) -> Result<LoadReport, ConfigError> {
        let path = path.as_ref();
        let config = ChaosConfig::from_path(path)?;
        self.load_from(config, Some(path))
    }

    /// Parses the bytes of a config file (YAML, or JSON for a `.json` path) and [`load`](Self::load)s them;
    /// errors name `path`. For watchers that read the file once and hand over its bytes.
    pub fn load_bytes(&self, path: impl AsRef<Path>, bytes: &[u8]) -> Result<LoadReport, ConfigError> {
        let path = path.as_ref();
        let config = ChaosConfig::from_bytes(bytes, path)?;
        self.load_from(config, Some(path))
    }

    fn load_from(&self, config: ChaosConfig, origin: Option<&Path>) -> Result<LoadReport, ConfigError> {
        let shared = &self.shared;
        let _write = lock(&shared.write);
        let latched = lock(&shared.latch).clone();
        let old = shared.current.load_full();
        let was_armed = self.is_armed();
        let file = origin.map(|p| p.display().to_string()).unwrap_or_default();
        if old.config == config {
            tracing::debug!(file, "chaos config unchanged; nothing to do");
            return Ok(LoadReport { changed: false, restarted: Vec::new(), armed: was_armed, held_by: latched });
        }
        let arm = config.armed && latched.is_none();
        let experiment = config.experiment.clone().unwrap_or_default();
        let result = compile(config, shared.env, shared.clock.clone(), Some(&old)).and_then(|set| {
            if arm {
                self.claim_prod(&experiment)?;
            }
            Ok(set)
        });
        let set = match result {
            Ok(set) => set,
            Err(e) => {
                let e = e.in_file(origin);
                tracing::warn!(error = %e, "chaos config rejected; the last good rules stay active");
                return Err(e);
            }
        };
        let (rules, seed) = (set.user_rules, set.seed);
        let continues = arm && was_armed;
        let restarted = if continues {
            set.continue_from(&old);
            set.changed_rules(&old)
        } else {
            if arm {
                set.mark_armed();
            } else {
                self.release_prod();
            }
            if arm { set.config.rules.iter().map(|r| r.name.trim().to_owned()).collect() } else { Vec::new() }
        };
        let same_pressure = old.config.pressure == set.config.pressure && old.ttl == set.ttl;
        shared.current.store(Arc::new(set));
        self.bump(arm);
        if !(continues && same_pressure) {
            self.sync_pressure(arm);
        }
        match &latched {
            Some(reason) => tracing::warn!(
                experiment = %experiment, rules, seed, env = %shared.env, file, latched_by = %reason,
                "chaos rules loaded and held disarmed: arm explicitly to apply them"
            ),
            None => tracing::info!(
                experiment = %experiment, rules, seed, armed = arm, env = %shared.env, file,
                restarted = ?restarted, "chaos rules loaded"
            ),
        }
        if arm && !was_armed {
            crate::event::emit(
                "chaos_armed",
                "chaos",
                &experiment,
                &format!("chaos armed by a load: {rules} rules"),
                serde_json::json!({ "rules": rules, "env": shared.env.as_str(), "seed": seed }),
            );
        } else if !arm && was_armed {
            crate::event::emit(
                "chaos_disarmed",
                "chaos",
                &experiment,
                "chaos disarmed by a load (`armed: false`)",
                serde_json::json!({ "reason": "config" }),
            );
        }
        if !arm {
            self.run_disarm_hooks();
        }
        Ok(LoadReport { changed: true, restarted, armed: arm, held_by: latched })
    }

    /// Arms the current rule set (again), restarting its windows and TTL, and lifts the latch of a kill switch
    /// or abort. In prod it needs `allow_prod: true` and the process's production slot.
    pub fn arm(&self) -> Result<(), ConfigError> {
        let _write = lock(&self.shared.write);
        let set = self.shared.current.load_full();
        if self.shared.env == Environment::Prod && !set.config.allow_prod {
            return Err(ConfigError::new(
                "allow_prod",
                "the process runs in prod and the config does not say `allow_prod: true`",
            ));
        }
        self.claim_prod(set.config.experiment.as_deref().unwrap_or_default())?;
        *lock(&self.shared.latch) = None;
        set.mark_armed();
        self.bump(true);
        self.sync_pressure(true);
        let experiment = set.config.experiment.as_deref().unwrap_or_default();
        tracing::info!(experiment, "chaos armed");
        crate::event::emit(
            "chaos_armed",
            "chaos",
            experiment,
            &format!("chaos armed: {} rules", set.config.rules.len()),
            serde_json::json!({ "rules": set.config.rules.len(), "env": self.shared.env.as_str() }),
        );
        Ok(())
    }

    /// Why the rules are held disarmed (`"kill switch"`, `"ttl expired"`, an abort's reason), if a kill switch
    /// latched: no load re-arms them until [`arm`](Self::arm).
    pub fn latched(&self) -> Option<String> {
        lock(&self.shared.latch).clone()
    }

    /// The kill switch: disarms everything. Every request from now on passes untouched; delays in flight are
    /// woken through the [`on_disarm`](ControllerBuilder::on_disarm) hooks.
    /// The switch latches: no load re-arms the rules until [`arm`](Self::arm) (see [`latched`](Self::latched)).
    pub fn disarm(&self) {
        self.disarm_because("kill switch");
    }

    /// [`disarm`](Self::disarm) with the reason the latch reports (an SLO guard's abort, an operator's note).
    pub fn disarm_because(&self, reason: &str) {
        {
            let _write = lock(&self.shared.write);
            let mut latch = lock(&self.shared.latch);
            if latch.is_none() {
                *latch = Some(reason.to_owned());
            }
            drop(latch);
            if !self.is_armed() {
                return;
            }
            self.bump(false);
            self.release_prod();
            self.sync_pressure(false);
        }
        tracing::info!(reason, "chaos disarmed");
        crate::metrics::count_disarm(reason);
        let config = self.shared.current.load();
        let experiment = config.config.experiment.as_deref().unwrap_or_default();
        if reason == "slo guard" {
            crate::event::emit(
                "chaos_aborted",
                "slo_guard",
                experiment,
                "the SLO guard aborted the chaos",
                serde_json::json!({ "reason": reason }),
            );
        }
        crate::event::emit(
            "chaos_disarmed",
            "chaos",
            experiment,
            &format!("chaos disarmed: {reason}"),
            serde_json::json!({ "reason": reason }),
        );
        self.run_disarm_hooks();
    }

    fn run_disarm_hooks(&self) {
        for hook in &self.shared.on_disarm {
            hook();
        }
    }

    fn bump(&self, armed: bool) {
        let state = self.shared.state.load(Ordering::Relaxed);
        let next = (state & !ARMED).wrapping_add(GENERATION) | u64::from(armed);
        self.shared.state.store(next, Ordering::Release);
        metrics::set_armed(armed);
    }

    fn claim_prod(&self, experiment: &str) -> Result<(), ConfigError> {
        if self.shared.env != Environment::Prod {
            return Ok(());
        }
        let mut slot = lock(&PROD_SLOT);
        match &*slot {
            Some((id, other)) if *id != self.shared.id => Err(ConfigError::new(
                "experiment",
                format!("experiment `{other}` is already armed in prod; one at a time"),
            )),
            _ => {
                *slot = Some((self.shared.id, experiment.to_owned()));
                Ok(())
            }
        }
    }

    fn release_prod(&self) {
        let mut slot = lock(&PROD_SLOT);
        if slot.as_ref().is_some_and(|(id, _)| *id == self.shared.id) {
            *slot = None;
        }
    }

    // --- Resource pressure: started with the armed rule set, stopped (within 100 ms) with it. ---

    /// Called under the write lock after every arm, load and disarm.
    fn sync_pressure(&self, armed: bool) {
        if armed {
            // What is left of the TTL: all of it on arming, less after a reload that continued the set.
            let set = self.shared.current.load_full();
            let elapsed = set.now_nanos().saturating_sub(set.armed_at.load(Ordering::Acquire));
            let left = set.ttl.saturating_sub(Duration::from_nanos(elapsed));
            self.shared.pressure.restart(&set.config.pressure, left.max(Duration::from_millis(1)));
        } else {
            self.shared.pressure.stop();
        }
    }

    /// The pressures of the armed rule set (running, or finished with their reason), in config order; empty
    /// while disarmed.
    pub fn pressure(&self) -> Vec<PressureStatus> {
        self.shared.pressure.statuses()
    }

    /// The config of the active rule set, as loaded.
    pub fn config(&self) -> ChaosConfig {
        self.shared.current.load().config.clone()
    }

    /// Counters of the active rule set.
    pub fn snapshot(&self) -> Snapshot {
        let set = self.shared.current.load_full();
        Snapshot {
            armed: self.is_armed(),
            latched: self.latched(),
            environment: self.shared.env.as_str(),
            experiment: set.config.experiment.clone(),
            seed: set.seed,
            active_faults: set.active_total.load(Ordering::Relaxed),
            rules: set
                .rules
                .iter()
                .map(|r| RuleStats {
                    name: r.name.to_string(),
                    kind: r.kind().as_str(),
                    sampled: r.counter.load(Ordering::Relaxed),
                    injected: r.injected.load(Ordering::Relaxed),
                    overflow: r.overflow.load(Ordering::Relaxed),
                    active: r.active.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }
}

/// A point-in-time view of the active rule set's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// Armed right now.
    pub armed: bool,
    /// Why the rules are held disarmed until armed explicitly (see [`Controller::latched`]).
    pub latched: Option<String>,
    /// The guarded environment.
    pub environment: &'static str,
    /// The experiment's name.
    pub experiment: Option<String>,
    /// The samplers' seed (write it into the config to replay).
    pub seed: u64,
    /// Faults active across all rules.
    pub active_faults: u32,
    /// Per rule, in config order (the header pseudo-rule last).
    pub rules: Vec<RuleStats>,
}

/// What a [`Controller::load`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LoadReport {
    /// The config differed from the active one; `false`: nothing changed at all.
    pub changed: bool,
    /// The rules whose window and counters started afresh (changed or new, or all of them on arming).
    pub restarted: Vec<String>,
    /// Armed after the load.
    pub armed: bool,
    /// Set when a latched kill switch held the new rules disarmed: its reason.
    pub held_by: Option<String>,
}

/// One rule's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RuleStats {
    /// Rule name.
    pub name: String,
    /// Fault kind.
    pub kind: &'static str,
    /// Requests the counting samplers (`exact`, `every_nth`, `first_n`) have seen.
    pub sampled: u64,
    /// Faults injected.
    pub injected: u64,
    /// Faults chosen but skipped by a bound.
    pub overflow: u64,
    /// Faults active now.
    pub active: u32,
}

/// Where [`Decider::scan`] stopped: the rest of the decision reads the request. Pass it to
/// [`Decider::choose`] or [`Decider::decide_pending`] of the same decider, for the same request.
#[derive(Debug)]
#[must_use = "finish the decision with `Decider::decide_pending`"]
pub struct Pending {
    /// The first rule that chose the request so far ([`NONE`]: none).
    first: usize,
    /// The rules that read the request have had their decision ([`Decider::choose`]).
    chosen: bool,
}

/// The per-service reader of a [`Controller`]: keep one in each service instance and call
/// [`decide`](Self::decide) once per request.
///
/// With nothing armed, `decide` is one atomic load and a branch. When armed, it reuses its cached rule set
/// until the controller's generation changes: no lock, no allocation, no reference-count traffic unless a
/// fault fires.
pub struct Decider {
    shared: Arc<Shared>,
    set: Arc<RuleSet>,
    state: u64,
    stream: Stream,
}

impl Clone for Decider {
    /// A clone keeps the rule set its source picked up and draws from a stream of its own, derived now for
    /// that set. (If the set has changed since, the clone's first armed request picks up the new one, as its
    /// source's would: every request compares the controller's state first.) A service cloned per request
    /// (`BoxCloneService`, a handler's `clone().oneshot(..)`) so pays, per clone, the two reference counts
    /// (controller and rule set) and, when armed, a stream number from the thread's block of the set's numbers
    /// (one shared atomic add per 1,024 clones on a thread), not a load of the current set; the drop gives the
    /// two counts back.
    fn clone(&self) -> Self {
        let (mut stream, state) = (Stream::default(), self.state);
        if state != 0 {
            stream.adopt(self.set.id, self.set.seed, &self.set.next_stream);
        }
        Self { shared: self.shared.clone(), set: self.set.clone(), state, stream }
    }
}

impl fmt::Debug for Decider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decider").field("state", &self.state).finish()
    }
}

impl Decider {
    /// Is anything armed? One atomic load.
    #[inline]
    pub fn is_armed(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) & ARMED != 0
    }

    /// The controller this decider reads (for a fault that must watch the kill switch while it runs).
    pub fn controller(&self) -> Controller {
        Controller { shared: self.shared.clone() }
    }

    /// Decides the faults for one request. `None` means "pass it through untouched".
    #[inline]
    pub fn decide(&mut self, facts: &RequestFacts<'_>) -> Option<Injection> {
        let pending = self.scan()?;
        self.decide_pending(pending, facts)
    }

    /// The first half of [`decide`](Self::decide), for callers whose request is costly to look at or to
    /// keep in place (the HTTP layer): decides every untargeted random rule without reading the request, with
    /// one random draw however many there are. `None` means "pass it through untouched", as from `decide`;
    /// otherwise finish with [`decide_pending`](Self::decide_pending) on this decider, with the request's
    /// facts (or first [`choose`](Self::choose)). With nothing armed it is one atomic load and a branch.
    #[inline]
    pub fn scan(&mut self) -> Option<Pending> {
        let state = self.shared.state.load(Ordering::Acquire);
        if state & ARMED == 0 {
            return None;
        }
        if state != self.state {
            self.refresh(state);
        }
        let set = &*self.set;
        let mut first = NONE;
        if set.any_random != 0 {
            // The decider adopted the stream for this set when it picked the set up (`refresh`).
            let u = self.stream.next_adopted();
            if u < set.any_random {
                first = set.first_random(u);
            }
        }
        // The rules that read the request (and the headers, with header faults on) come next.
        (first != NONE || set.reads_request).then_some(Pending { first, chosen: false })
    }

    /// Does a rule of the rule set [`scan`](Self::scan) picked up read the request's headers (a header
    /// condition or a key)? When not, [`choose`](Self::choose) may be given facts without them
    /// ([`RequestFacts::http_path_method`]).
    #[inline]
    pub fn reads_headers(&self) -> bool {
        self.set.reads_headers
    }

    /// The rules that read the request decide on its facts, in place (only those whose method and route
    /// prefix could match are looked at). `None` when no rule chose the request and header faults are off:
    /// pass it through untouched. Otherwise finish with [`decide_pending`](Self::decide_pending).
    #[inline]
    pub fn choose(&mut self, pending: Pending, facts: &RequestFacts<'_>) -> Option<Pending> {
        let first = self.first(pending, facts);
        (first != NONE || self.set.header.is_some()).then_some(Pending { first, chosen: true })
    }

    /// The second half of [`decide`](Self::decide), after [`scan`](Self::scan) (or [`choose`](Self::choose))
    /// returned `pending`: the rules that read the request, and the faults of the rule that chose it.
    #[inline]
    pub fn decide_pending(&mut self, pending: Pending, facts: &RequestFacts<'_>) -> Option<Injection> {
        match self.first(pending, facts) {
            NONE => None,
            first => self.decide_from(first, facts),
        }
    }

    #[inline]
    fn first(&mut self, pending: Pending, facts: &RequestFacts<'_>) -> usize {
        if pending.chosen { pending.first } else { self.set.scan_request(pending.first, facts, &mut self.stream) }
    }

    /// Picks up a changed rule set, and derives this decider's random stream for it here rather than on the
    /// hot path (the same stream, drawn in the same order, as when it was derived at the first draw).
    #[cold]
    fn refresh(&mut self, state: u64) {
        self.set = self.shared.current.load_full();
        self.state = state;
        self.stream.adopt(self.set.id, self.set.seed, &self.set.next_stream);
    }

    /// A rule chose this request: the slow path that takes slots and builds the injection.
    #[cold]
    #[inline(never)]
    fn decide_from(&mut self, first: usize, facts: &RequestFacts<'_>) -> Option<Injection> {
        match self.set.decide_from(first, facts, &mut self.stream) {
            Verdict::None => None,
            Verdict::Inject(injection) => Some(injection),
            Verdict::Expired => {
                self.expire();
                None
            }
        }
    }

    #[cold]
    fn expire(&self) {
        let controller = Controller { shared: self.shared.clone() };
        let current = controller.shared.current.load();
        if current.id == self.set.id {
            drop(current);
            controller.disarm_because("ttl expired");
        }
    }

    /// The header-fault settings when header faults are enabled and armed: `(token, max_delay)`.
    #[inline]
    pub fn header_faults(&mut self) -> Option<(&[u8], Duration)> {
        let state = self.shared.state.load(Ordering::Acquire);
        if state & ARMED == 0 {
            return None;
        }
        if state != self.state {
            self.refresh(state);
        }
        self.set.header.as_ref().map(|h| (&*h.token, h.max_delay))
    }

    /// Adds caller-requested faults (already authenticated and clamped by the caller) to `injection`,
    /// accounted to the `header` pseudo-rule and its bounds. Parts the injection already has are kept.
    pub fn add_header_faults(
        &mut self,
        injection: Option<Injection>,
        delay: Option<Duration>,
        abort: Option<StatusCode>,
    ) -> Option<Injection> {
        let mut injection = injection.unwrap_or_default();
        if let Some(delay) = delay.filter(|_| injection.delay.is_none())
            && let Some(index) = self.set.admit_header()
        {
            injection.delay = Some(ActiveFault::new(self.set.clone(), index, Delay::Sleep(delay)));
        }
        if let Some(status) = abort.filter(|_| injection.outcome.is_none())
            && let Some(index) = self.set.admit_header()
        {
            let fault = ErrorFault {
                status,
                grpc: None,
                message: format!("injected {status} (requested by header)").into(),
                body: bytes::Bytes::new(),
                headers: http::HeaderMap::new(),
            };
            injection.outcome = Some(ActiveFault::new(self.set.clone(), index, Outcome::Error(Arc::new(fault))));
        }
        (!injection.is_empty()).then_some(injection)
    }
}
