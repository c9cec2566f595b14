//! What the runner runs against: a [`Target`] sends the load somewhere, arms and disarms its fault switches,
//! and says what state the service is in. [`InProcess`] is a service in this process (a user's `Router` in
//! their own `cargo test`, or the built-in demo); [`crate::Remote`] is a running service reached over HTTP
//! through its admin API.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use brownout_chaos::pressure::PressureStatus;
use brownout_chaos::{ChaosConfig, Controller};
use brownout_degrade::Flags;
use brownout_degrade::breaker::{CircuitBreaker, State as BreakerState};
use brownout_tower::ChaosHandle;
use serde::Serialize;

use crate::load::{BoxFuture, Client};

/// A fault switch's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Calls that reached the switch's fault layer so far, when the target can count them: the denominator of
    /// the injected rate (without it, the rate's band is not judged).
    pub calls: Option<u64>,
    /// Faults injected so far (every replica's, for a remote target).
    pub injected: u64,
}

brownout_foundation::setters! {
    impl Counters {
        calls: Some(u64),
        injected: u64,
    }
}

/// The service's state at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct State {
    /// The circuit breakers not closed (open, half-open, or forced).
    pub breakers_open: Vec<String>,
    /// The degrade flags away from their default.
    pub degraded: Vec<String>,
}

brownout_foundation::setters! {
    impl State {
        breakers_open: Vec<String>,
        degraded: Vec<String>,
    }
}

/// What the service's finished requests have cost so far (cost-meter's records, summed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct CostSample {
    /// Requests metered.
    pub requests: u64,
    /// Their CPU time.
    pub cpu_seconds: f64,
    /// Their live heap bytes integrated over their lives.
    pub memory_byte_seconds: f64,
    /// Of the requests, those whose memory cost-meter's allocator measured.
    pub allocator_requests: u64,
}

brownout_foundation::setters! {
    impl CostSample {
        requests: u64,
        cpu_seconds: f64,
        memory_byte_seconds: f64,
        allocator_requests: u64,
    }
}

/// What the requests finished in one phase cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct PhaseCost {
    /// Requests metered (finished) in the phase.
    pub requests: u64,
    /// Their CPU time.
    pub cpu_seconds: f64,
    /// CPU time per request, in milliseconds.
    pub cpu_ms_per_request: f64,
    /// Their live heap bytes integrated over their lives, in byte-seconds.
    pub memory_byte_seconds: f64,
    /// The same in GB-hours.
    pub memory_gb_hours: f64,
    /// `allocator` when every request's memory was measured by cost-meter's allocator, else `reservation`.
    pub memory_mode: &'static str,
}

impl CostSample {
    /// The cost of what finished between `earlier` and this sample.
    pub fn since(self, earlier: CostSample) -> PhaseCost {
        let requests = self.requests.saturating_sub(earlier.requests);
        let cpu_seconds = (self.cpu_seconds - earlier.cpu_seconds).max(0.0);
        let memory_byte_seconds = (self.memory_byte_seconds - earlier.memory_byte_seconds).max(0.0);
        let metered = self.allocator_requests.saturating_sub(earlier.allocator_requests);
        PhaseCost {
            requests,
            cpu_seconds,
            cpu_ms_per_request: if requests == 0 { 0.0 } else { cpu_seconds * 1e3 / requests as f64 },
            memory_byte_seconds,
            memory_gb_hours: memory_byte_seconds / 1e9 / 3600.0,
            memory_mode: if metered == requests { "allocator" } else { "reservation" },
        }
    }
}

/// What the target's own checks found after a scenario (the demo: every acknowledged order applied once).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Settled {
    /// Why the scenario fails, if it does (empty: the checks hold).
    pub failures: Vec<String>,
    /// What the checks measured, for the report (`execution.checks`).
    pub details: serde_json::Value,
}

brownout_foundation::setters! {
    impl Settled {
        failures: Vec<String>,
        details: serde_json::Value,
    }
}

/// What a GameDay runs against. Every method that talks to the service may fail (a remote replica that does
/// not answer); the runner reports the error and disarms.
pub trait Target: Send + Sync {
    /// How the target names itself in the output (`the demo service on 127.0.0.1:40321`).
    fn describe(&self) -> String;

    /// Where the load goes.
    fn client(&self) -> Client;

    /// The fault switches, by name; a scenario's `on` picks one, the first is the default.
    fn switches(&self) -> Vec<String>;

    /// Loads `config` into the switch and arms it; returns the samplers' seed.
    fn arm<'a>(&'a self, switch: &'a str, config: ChaosConfig) -> BoxFuture<'a, Result<u64, String>>;

    /// The kill switch of one switch.
    fn disarm<'a>(&'a self, switch: &'a str) -> BoxFuture<'a, Result<(), String>>;

    /// The switch's counters.
    fn counters<'a>(&'a self, switch: &'a str) -> BoxFuture<'a, Result<Counters, String>>;

    /// The service's breakers and flags now.
    fn state(&self) -> BoxFuture<'_, Result<State, String>>;

    /// The switch's resource pressures and what they achieved (empty: none, or not known).
    fn pressure<'a>(&'a self, _switch: &'a str) -> BoxFuture<'a, Vec<PressureStatus>> {
        Box::pin(async { Vec::new() })
    }

    /// The service's cost so far, when it is metered in this process.
    fn cost(&self) -> Option<CostSample> {
        None
    }

    /// The switch's controller when it lives in this process: the SLO guard then disarms it at once, rather
    /// than at the runner's next look (every 20 ms).
    fn controller(&self, _switch: &str) -> Option<Controller> {
        None
    }

    /// The service runs in this process: the process's resident memory is the service's.
    fn in_process(&self) -> bool {
        false
    }

    /// The target's own checks, after a scenario's after phase.
    fn settle(&self) -> BoxFuture<'_, Settled> {
        Box::pin(async { Settled::default() })
    }

    /// Checks, before any load, that the target can be driven (a remote replica answers its admin API with
    /// the token given); `Err` says why not, and the run is not made.
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

type CallsFn = dyn Fn() -> u64 + Send + Sync;
type CostFn = dyn Fn() -> CostSample + Send + Sync;
type SettleFn = dyn Fn() -> BoxFuture<'static, Settled> + Send + Sync;

/// A service in this process, under test: its client (in-process through [`Client::service`], or over
/// loopback), its chaos switches, and what the runner may read of it (breakers, flags, call counters, cost).
///
/// ```
/// use brownout_gameday::{Client, InProcess};
/// use brownout_tower::ChaosHandle;
///
/// let provider = ChaosHandle::for_environment(brownout_chaos::Environment::Test);
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
/// let target = InProcess::new(Client::service(app)).switch("provider", provider);
/// # let _ = target;
/// ```
#[derive(Clone)]
pub struct InProcess {
    name: String,
    client: Client,
    switches: Vec<(String, ChaosHandle)>,
    calls: BTreeMap<String, Arc<CallsFn>>,
    breakers: Vec<Arc<CircuitBreaker>>,
    flags: Vec<Flags>,
    cost: Option<Arc<CostFn>>,
    settle: Option<Arc<SettleFn>>,
    held: Vec<Arc<dyn std::any::Any + Send + Sync>>,
}

impl fmt::Debug for InProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcess")
            .field("name", &self.name)
            .field("client", &self.client)
            .field("switches", &self.switches.iter().map(|(n, _)| n).collect::<Vec<_>>())
            .field("breakers", &self.breakers.len())
            .finish_non_exhaustive()
    }
}

impl InProcess {
    /// A target whose load goes through `client`; add its switches, breakers and flags.
    pub fn new(client: Client) -> InProcess {
        InProcess {
            name: "the service under test".into(),
            client,
            switches: Vec::new(),
            calls: BTreeMap::new(),
            breakers: Vec::new(),
            flags: Vec::new(),
            cost: None,
            settle: None,
            held: Vec::new(),
        }
    }

    /// Keeps `value` alive as long as the target (a file watcher, trigger tasks, a server's abort guard).
    pub fn hold(mut self, value: impl Send + Sync + 'static) -> Self {
        self.held.push(Arc::new(value));
        self
    }

    /// How the target names itself in the output.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// A fault switch: the chaos handle of a fault layer in the service (the first one added is the
    /// default `on`).
    pub fn switch(mut self, name: impl Into<String>, chaos: ChaosHandle) -> Self {
        self.switches.push((name.into(), chaos));
        self
    }

    /// The calls that reached switch `name`'s fault layer so far (the injected rate's denominator).
    pub fn calls(mut self, name: impl Into<String>, calls: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.calls.insert(name.into(), Arc::new(calls));
        self
    }

    /// A circuit breaker whose state the runner watches (open during a fault, closed again to recover).
    pub fn breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.breakers.push(breaker);
        self
    }

    /// Degrade flags the runner watches: a flag away from its default is a degradation.
    pub fn flags(mut self, flags: Flags) -> Self {
        self.flags.push(flags);
        self
    }

    /// The service's cost so far (per phase in the reports).
    pub fn cost(mut self, cost: impl Fn() -> CostSample + Send + Sync + 'static) -> Self {
        self.cost = Some(Arc::new(cost));
        self
    }

    /// A check after each scenario (its failures fail the scenario).
    pub fn settle(mut self, settle: impl Fn() -> BoxFuture<'static, Settled> + Send + Sync + 'static) -> Self {
        self.settle = Some(Arc::new(settle));
        self
    }

    fn handle(&self, switch: &str) -> Result<&ChaosHandle, String> {
        self.switches.iter().find(|(n, _)| n == switch).map(|(_, h)| h).ok_or_else(|| {
            let known: Vec<&str> = self.switches.iter().map(|(n, _)| n.as_str()).collect();
            format!("no fault switch named `{switch}` (the target has: {})", known.join(", "))
        })
    }
}

impl Target for InProcess {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn client(&self) -> Client {
        self.client.clone()
    }

    fn switches(&self) -> Vec<String> {
        self.switches.iter().map(|(n, _)| n.clone()).collect()
    }

    fn arm<'a>(&'a self, switch: &'a str, config: ChaosConfig) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            let chaos = self.handle(switch)?;
            chaos.load(config).map_err(|e| e.to_string())?;
            // A previous scenario's kill switch latches: the runner arms explicitly.
            chaos.arm().map_err(|e| e.to_string())?;
            Ok(chaos.snapshot().seed)
        })
    }

    fn disarm<'a>(&'a self, switch: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.handle(switch)?.disarm();
            Ok(())
        })
    }

    fn counters<'a>(&'a self, switch: &'a str) -> BoxFuture<'a, Result<Counters, String>> {
        Box::pin(async move {
            let chaos = self.handle(switch)?;
            let injected = chaos.snapshot().rules.iter().map(|r| r.injected).sum();
            Ok(Counters { calls: self.calls.get(switch).map(|calls| calls()), injected })
        })
    }

    fn state(&self) -> BoxFuture<'_, Result<State, String>> {
        Box::pin(async move {
            let breakers_open = self
                .breakers
                .iter()
                .filter(|b| b.state() != BreakerState::Closed)
                .map(|b| b.name().to_owned())
                .collect();
            let degraded =
                self.flags.iter().flat_map(|f| f.list()).filter(|f| f.value != f.default).map(|f| f.name).collect();
            Ok(State { breakers_open, degraded })
        })
    }

    fn pressure<'a>(&'a self, switch: &'a str) -> BoxFuture<'a, Vec<PressureStatus>> {
        Box::pin(async move { self.handle(switch).map(|c| c.controller().pressure()).unwrap_or_default() })
    }

    fn cost(&self) -> Option<CostSample> {
        self.cost.as_ref().map(|cost| cost())
    }

    fn controller(&self, switch: &str) -> Option<Controller> {
        self.handle(switch).ok().map(|c| c.controller().clone())
    }

    fn in_process(&self) -> bool {
        true
    }

    fn settle(&self) -> BoxFuture<'_, Settled> {
        match &self.settle {
            Some(settle) => settle(),
            None => Box::pin(async { Settled::default() }),
        }
    }
}
