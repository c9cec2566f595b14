//! The shared switch of the chaos layers.

use std::path::Path;
use std::sync::Arc;

use brownout_chaos::{ChaosConfig, ConfigError, Controller, Decider, Environment, LoadReport, Snapshot};
use brownout_foundation::clock::TokioClock;
use tokio::sync::Notify;

use crate::chaos::ChaosLayer;
use crate::http::HttpChaosLayer;

/// The switch behind every chaos layer: the active rules, armed or not, and the kill switch.
///
/// Cheap to clone; every clone, and every layer and service made from it, sees the same state. Keep one in
/// your admin code to reload, arm or [`disarm`](Self::disarm).
#[derive(Clone, Debug)]
pub struct ChaosHandle {
    controller: Controller,
    wake: Arc<Notify>,
}

impl Default for ChaosHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl ChaosHandle {
    /// A handle with no rules, for the environment named by `BROWNOUT_ENV` (see [`Environment::from_env`]).
    pub fn new() -> Self {
        Self::for_environment(Environment::from_env())
    }

    /// A handle with no rules, for an explicit environment. Its rule windows and TTL read [`TokioClock`], so
    /// they follow `tokio::time::pause` in tests.
    pub fn for_environment(env: Environment) -> Self {
        let wake = Arc::new(Notify::new());
        let hook = wake.clone();
        let controller =
            Controller::builder().environment(env).clock(TokioClock).on_disarm(move || hook.notify_waiters()).build();
        Self { controller, wake }
    }

    /// For tests, in one call: a handle for [`Environment::Test`] loaded with the rules of `yaml` (armed
    /// unless the YAML says `armed: false`). A YAML that does not parse or validate is an error naming the
    /// field. (Feature `yaml`, on by default.)
    ///
    /// ```
    /// use brownout_tower::ChaosHandle;
    ///
    /// let chaos = ChaosHandle::for_test("rules: [{ name: fail-all, sample: { mode: exact, rate: 1.0 }, fault: { error: {} } }]")?;
    /// assert!(chaos.is_armed());
    /// assert!(ChaosHandle::for_test("rules: [{ name: x, sample: { rate: 2.0 } }]").is_err());
    /// # Ok::<(), brownout_chaos::ConfigError>(())
    /// ```
    #[cfg(feature = "yaml")]
    pub fn for_test(yaml: &str) -> Result<Self, ConfigError> {
        let handle = Self::for_environment(Environment::Test);
        handle.load(ChaosConfig::from_yaml_str(yaml, None)?)?;
        Ok(handle)
    }

    /// For tests: a handle for [`Environment::Test`] with no rules and the kill switch thrown. The kill switch
    /// latches: a later [`load`](Self::load) stays disarmed until [`arm`](Self::arm), so a test can load its
    /// rules and arm them when it is ready.
    ///
    /// ```
    /// use brownout_tower::ChaosHandle;
    ///
    /// let chaos = ChaosHandle::disarmed_for_test();
    /// assert!(!chaos.is_armed() && chaos.latched().is_some());
    /// # Ok::<(), brownout_chaos::ConfigError>(())
    /// ```
    pub fn disarmed_for_test() -> Self {
        let handle = Self::for_environment(Environment::Test);
        handle.disarm();
        handle
    }

    /// A handle loaded with `config` (armed if the config says so, as it does by default).
    pub fn from_config(config: ChaosConfig) -> Result<Self, ConfigError> {
        let handle = Self::new();
        handle.load(config)?;
        Ok(handle)
    }

    /// A handle loaded from a YAML or JSON file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let handle = Self::new();
        handle.load_path(path)?;
        Ok(handle)
    }

    /// Replaces the rule set atomically; on error the last good rules stay active. An identical config
    /// changes nothing; after a kill switch the new rules stay disarmed until [`arm`](Self::arm). See
    /// [`Controller::load`] for what restarts.
    pub fn load(&self, config: ChaosConfig) -> Result<LoadReport, ConfigError> {
        self.controller.load(config)
    }

    /// Reads a file and [`load`](Self::load)s it; errors name the file, the field and the reason.
    pub fn load_path(&self, path: impl AsRef<Path>) -> Result<LoadReport, ConfigError> {
        self.controller.load_path(path)
    }

    /// [`load`](Self::load)s the bytes of the file `path` (YAML, or JSON for `.json`), as a file watcher
    /// read them.
    pub fn load_bytes(&self, path: impl AsRef<Path>, bytes: &[u8]) -> Result<LoadReport, ConfigError> {
        self.controller.load_bytes(path, bytes)
    }

    /// Arms the current rules again, restarting their windows, and lifts a latched kill switch.
    pub fn arm(&self) -> Result<(), ConfigError> {
        self.controller.arm()
    }

    /// The kill switch: disarms everything at the next request, cuts short the delays and hangs in flight
    /// (their request then goes to the inner service, without the injected outcome), and latches: no reload
    /// re-arms until [`arm`](Self::arm).
    pub fn disarm(&self) {
        self.controller.disarm();
    }

    /// Why the rules are held disarmed, if a kill switch or abort latched (see [`Controller::latched`]).
    pub fn latched(&self) -> Option<String> {
        self.controller.latched()
    }

    /// Is anything armed?
    pub fn is_armed(&self) -> bool {
        self.controller.is_armed()
    }

    /// The active rules' counters.
    pub fn snapshot(&self) -> Snapshot {
        self.controller.snapshot()
    }

    /// The core controller behind this handle.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// A layer of the generic flavour over this handle.
    pub fn layer(&self) -> ChaosLayer {
        ChaosLayer::new(self.clone())
    }

    /// A layer of the HTTP flavour over this handle.
    pub fn http_layer(&self) -> HttpChaosLayer {
        HttpChaosLayer::new(self.clone())
    }

    pub(crate) fn decider(&self) -> Decider {
        self.controller.decider()
    }

    pub(crate) fn wake(&self) -> &Arc<Notify> {
        &self.wake
    }
}
