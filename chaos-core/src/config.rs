//! The `configs/chaos/*.yaml` format: plain serde types, parsed from YAML or JSON.
//!
//! Parsing checks the shape (unknown fields, wrong types, malformed durations); [`Controller::load`]
//! checks the meaning (rates, statuses, duplicate names, production limits). Both report the file, the field
//! and the reason in a [`ConfigError`].
//!
//! [`Controller::load`]: crate::Controller::load

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use brownout_foundation::duration;
use brownout_foundation::text::is_blank_document;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::pressure::PressureConfig;

/// A whole chaos config: one experiment's rules and the bounds around them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ChaosConfig {
    /// Name of the experiment, shown in logs, reports and the production guard.
    #[serde(default)]
    pub experiment: Option<String>,
    /// Seed of the random and hash samplers. When absent one is drawn at load and logged, so the run can be
    /// replayed by writing it here.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Arm the rules as soon as they load (default `true`).
    #[serde(default = "default_true")]
    pub armed: bool,
    /// The whole rule set disarms itself this long after it was armed (default `1h`).
    #[serde(default = "default_ttl", with = "duration")]
    pub ttl: Duration,
    /// Allow arming when the process runs in production (default `false`).
    #[serde(default)]
    pub allow_prod: bool,
    /// The largest fraction of matching traffic any rule may affect (default 1.0; at most 0.3 in production).
    #[serde(default)]
    pub blast_radius: Option<f64>,
    /// How many faults may be active at once across all rules (default: unbounded).
    #[serde(default)]
    pub max_active_faults: Option<u32>,
    /// Faults requested by the caller through `x-chaos-*` headers (off unless configured).
    #[serde(default)]
    pub header_faults: Option<HeaderFaultsConfig>,
    /// The rules, evaluated in order.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// In-process resource pressure (CPU, memory, IO), started when the rules are armed and stopped when they
    /// are disarmed; see [`crate::pressure`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pressure: Vec<PressureConfig>,
}

fn default_true() -> bool {
    true
}

fn default_ttl() -> Duration {
    Duration::from_secs(3600)
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            experiment: None,
            seed: None,
            armed: true,
            ttl: default_ttl(),
            allow_prod: false,
            blast_radius: None,
            max_active_faults: None,
            header_faults: None,
            rules: Vec::new(),
            pressure: Vec::new(),
        }
    }
}

brownout_foundation::setters! {
    impl ChaosConfig {
        experiment: Some(String),
        seed: Some(u64),
        armed: bool,
        ttl: Duration,
        allow_prod: bool,
        blast_radius: Some(f64),
        max_active_faults: Some(u32),
        header_faults: Some(HeaderFaultsConfig),
        rules: Vec<RuleConfig>,
        pressure: Vec<PressureConfig>,
    }
}

/// One rule: which requests, how many of them, what fault, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RuleConfig {
    /// Unique name; it is the value of `x-chaos-injected` and the `rule` label of the metrics.
    pub name: String,
    /// Which requests the rule applies to; every condition must hold. Empty matches every request.
    #[serde(default, rename = "match")]
    pub target: TargetConfig,
    /// Which of the matching requests get the fault.
    pub sample: SampleConfig,
    /// The fault itself.
    pub fault: FaultConfig,
    /// The rule starts this long after the rule set is armed (default `0s`).
    #[serde(default, with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub start_after: Option<Duration>,
    /// The rule stops this long after it started (default: at the rule set's TTL).
    #[serde(default, with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// The rule injects at most this many faults in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_injections: Option<u64>,
    /// At most this many of the rule's faults may be active (in flight) at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active: Option<u32>,
}

impl RuleConfig {
    /// A rule named `name` that injects `fault` into the requests `sample` picks, among all requests (see the
    /// setters for targeting, start, duration and caps). Like every constructor of Brownout's faults, it takes
    /// what to inject before how often.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brownout_chaos::{ChaosConfig, FaultConfig, LatencyConfig, RuleConfig, SampleConfig, TargetConfig};
    ///
    /// let slow = FaultConfig::Latency(LatencyConfig::Fixed(Duration::from_millis(200)));
    /// let rule = RuleConfig::new("slow-quotes", slow, SampleConfig::Random { rate: 0.1 })
    ///     .target(TargetConfig::default().route("/api/quotes/**".to_owned()))
    ///     .max_injections(1_000);
    /// let config = ChaosConfig::default().experiment("quotes".to_owned()).rules(vec![rule]);
    /// assert_eq!(config.rules[0].max_injections, Some(1_000));
    /// ```
    pub fn new(name: impl Into<String>, fault: FaultConfig, sample: SampleConfig) -> Self {
        Self {
            name: name.into(),
            target: TargetConfig::default(),
            sample,
            fault,
            start_after: None,
            duration: None,
            max_injections: None,
            max_active: None,
        }
    }
}

brownout_foundation::setters! {
    impl RuleConfig {
        target: TargetConfig,
        start_after: Some(Duration),
        duration: Some(Duration),
        max_injections: Some(u64),
        max_active: Some(u32),
    }
}

/// Request targeting. Conditions compose: all of them must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TargetConfig {
    /// A glob over the request path: `*` is any run of characters within a segment, `?` one such character,
    /// `**` as a whole segment any number of segments (`/api/**`, `/users/*/orders`). axum's route templates
    /// work as in axum: `{name}` is one non-empty segment, a last `{*name}` the non-empty rest of the path
    /// (`/api/quotes/{symbol}`, `/files/{*path}`); a malformed one (`/a/{`, `/a/{*rest}/b`) is refused at load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// One method or a list of methods (`GET` or `[GET, HEAD]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<OneOrMany<String>>,
    /// Headers that must be present with exactly this value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Headers that must be present, with any value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_present: Vec<String>,
    /// Where the request key (tenant, user…) comes from; the hash sampler needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyConfig>,
}

brownout_foundation::setters! {
    impl TargetConfig {
        route: Some(String),
        method: Some(OneOrMany<String>),
        headers: BTreeMap<String, String>,
        header_present: Vec<String>,
        key: Some(KeyConfig),
    }
}

/// Either one value or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(clippy::exhaustive_enums, reason = "one value or a list: there is no third shape")]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// Several values.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }
}

/// Where the request key is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct KeyConfig {
    /// The header whose value is the key (for example `x-tenant-id`).
    pub header: String,
}

impl KeyConfig {
    /// The key is the value of the header `header`.
    pub fn header(header: impl Into<String>) -> Self {
        Self { header: header.into() }
    }
}

/// How a rule picks which matching requests get the fault.
///
/// - `random`: each request independently with probability `rate`, from a seeded generator. A
///   single-threaded run with the same seed replays the same decisions.
/// - `hash`: the decision is a pure function of (seed, rule name, request key): the same key always gets the
///   same answer, whatever the order or the thread. Requests without the key are not eligible.
/// - `exact`: over any run of N consecutive matching requests, the number injected is within ±1 of N·rate.
/// - `every_nth`: every n-th matching request.
/// - `first_n`: the first n matching requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SampleConfig {
    /// Independent draws with probability `rate`.
    Random {
        /// Probability in [0, 1].
        rate: f64,
    },
    /// A pure function of (seed, rule, request key).
    Hash {
        /// Fraction of keys in [0, 1].
        rate: f64,
    },
    /// Deterministic spreading: within ±1 of N·rate over any run.
    Exact {
        /// Fraction in [0, 1].
        rate: f64,
    },
    /// Every n-th matching request: `{ mode: every_nth, nth: 10 }` (nth ≥ 1).
    EveryNth {
        /// The period.
        nth: u64,
    },
    /// The first `count` matching requests: `{ mode: first_n, count: 5 }`.
    FirstN {
        /// How many.
        count: u64,
    },
}

/// The fault a rule injects. Exactly one kind per rule; a request can receive one delay, one outcome and
/// one body fault from different rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum FaultConfig {
    /// Delay the request, then let it through.
    Latency(LatencyConfig),
    /// Answer with an error instead of calling the service.
    Error(ErrorConfig),
    /// Answer `429 Too Many Requests` with `Retry-After` and `x-ratelimit-*`.
    RateLimit(RateLimitConfig),
    /// Never answer (up to `max`), so the caller's own timeout must fire.
    Hang(HangConfig),
    /// Fail at once, as a dropped connection would.
    Reset(ResetConfig),
    /// Burn CPU on the thread that runs the request, then let it through (a noisy neighbour on the request
    /// path).
    CpuBurn(CpuBurnConfig),
    /// Stream the response body at a bounded rate (HTTP only).
    Throttle(ThrottleConfig),
    /// End the response body after some bytes (HTTP only).
    Truncate(TruncateConfig),
}

/// A delay distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LatencyConfig {
    /// Always this long: `{ fixed: 200ms }`.
    Fixed(#[serde(with = "duration")] Duration),
    /// Uniform between `min` and `max`.
    Uniform {
        /// Shortest delay.
        #[serde(with = "duration")]
        min: Duration,
        /// Longest delay.
        #[serde(with = "duration")]
        max: Duration,
    },
    /// `base` plus or minus up to `jitter`, uniformly.
    Jitter {
        /// Centre of the delay.
        #[serde(with = "duration")]
        base: Duration,
        /// Largest deviation either way.
        #[serde(with = "duration")]
        jitter: Duration,
    },
    /// Log-normal with the given median and shape `sigma`, capped at `max`: realistic service latency.
    LogNormal {
        /// The median delay.
        #[serde(with = "duration")]
        median: Duration,
        /// Standard deviation of the log of the delay (0.5 mild tail, 1.5 heavy tail).
        sigma: f64,
        /// Cap on any single delay.
        #[serde(with = "duration")]
        max: Duration,
    },
    /// Pareto with minimum `scale` and tail index `shape`, capped at `max`: a heavy tail.
    Pareto {
        /// The smallest delay.
        #[serde(with = "duration")]
        scale: Duration,
        /// Tail index (> 0; smaller is heavier; 1.16 is the 80/20 rule).
        shape: f64,
        /// Cap on any single delay.
        #[serde(with = "duration")]
        max: Duration,
    },
}

/// An injected error.
///
/// In the HTTP flavour it is a response: `status` (default 500) with `body` and `headers`, or with `grpc` a
/// gRPC trailers-only response carrying `grpc-status`. In the generic flavour it is an `InjectedError`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ErrorConfig {
    /// HTTP status, 100–599.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// gRPC status code name (`unavailable`, `deadline_exceeded`…), instead of an HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcCode>,
    /// Message of the typed error, and of `grpc-message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Response body (HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Extra response headers (HTTP).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

brownout_foundation::setters! {
    impl ErrorConfig {
        status: Some(u16),
        grpc: Some(GrpcCode),
        message: Some(String),
        body: Some(String),
        headers: BTreeMap<String, String>,
    }
}

/// gRPC status codes, by their canonical names.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::exhaustive_enums, reason = "the sixteen status codes gRPC defines")]
pub enum GrpcCode {
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

/// A `429 Too Many Requests` answer whose headers tell one story: nothing remains in the window, and it
/// resets when `Retry-After` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// How long the caller is told to wait (`Retry-After`, whole seconds, rounded up; default `1s`).
    #[serde(default = "default_retry_after", with = "duration")]
    pub retry_after: Duration,
    /// The advertised limit (`x-ratelimit-limit`; default 100).
    #[serde(default = "default_limit")]
    pub limit: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { retry_after: default_retry_after(), limit: default_limit() }
    }
}

brownout_foundation::setters! {
    impl RateLimitConfig {
        retry_after: Duration,
        limit: u64,
    }
}

fn default_retry_after() -> Duration {
    Duration::from_secs(1)
}

fn default_limit() -> u64 {
    100
}

/// A request that does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HangConfig {
    /// Chaos is bounded: after this long (default `60s`) the hang gives up with a `504` (HTTP) or an
    /// `InjectedError`. Set it above the caller's timeout.
    #[serde(default = "default_hang_max", with = "duration")]
    pub max: Duration,
}

fn default_hang_max() -> Duration {
    Duration::from_secs(60)
}

impl Default for HangConfig {
    fn default() -> Self {
        Self { max: default_hang_max() }
    }
}

impl HangConfig {
    /// A hang that gives up after `max`.
    pub fn new(max: Duration) -> Self {
        Self { max }
    }
}

/// CPU burned inside an injected request: `{ cpu_burn: { cpu: 20ms } }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CpuBurnConfig {
    /// CPU time to burn on the request's thread, at most `1s`.
    #[serde(with = "duration")]
    pub cpu: Duration,
}

impl CpuBurnConfig {
    /// Burn `cpu` of CPU time.
    pub fn new(cpu: Duration) -> Self {
        Self { cpu }
    }
}

/// A connection reset: `{ reset: {} }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ResetConfig {}

/// Stream the response body at a bounded rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ThrottleConfig {
    /// Bytes per second, in KiB (≥ 1).
    pub kib_per_sec: u64,
}

impl ThrottleConfig {
    /// A body streamed at `kib_per_sec` KiB per second.
    pub fn new(kib_per_sec: u64) -> Self {
        Self { kib_per_sec }
    }
}

/// End the response body early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TruncateConfig {
    /// Bytes of body delivered before it ends.
    pub after_bytes: u64,
}

impl TruncateConfig {
    /// A body cut after `after_bytes` bytes.
    pub fn new(after_bytes: u64) -> Self {
        Self { after_bytes }
    }
}

/// Faults requested per request through headers, for contract tests through a real HTTP stack.
///
/// A request carrying `x-chaos-token` equal to the configured token (compared in constant time) may ask for
/// `x-chaos-delay-ms: N` (clamped to `max_delay`) and `x-chaos-abort-status: S` (100–599). Without the token,
/// or in production, the headers are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HeaderFaultsConfig {
    /// Turn the headers on.
    #[serde(default)]
    pub enabled: bool,
    /// Environment variable holding the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// File holding the token (trailing whitespace trimmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// Largest delay a header may ask for (default `5s`).
    #[serde(default = "default_max_delay", with = "duration")]
    pub max_delay: Duration,
}

impl Default for HeaderFaultsConfig {
    fn default() -> Self {
        Self { enabled: false, token_env: None, token_file: None, max_delay: default_max_delay() }
    }
}

brownout_foundation::setters! {
    impl HeaderFaultsConfig {
        enabled: bool,
        token_env: Some(String),
        token_file: Some(String),
        max_delay: Duration,
    }
}

fn default_max_delay() -> Duration {
    Duration::from_secs(5)
}

impl ChaosConfig {
    /// Parses YAML. `origin` names the file in errors. (Feature `yaml`, on by default.)
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(text: &str, origin: Option<&Path>) -> Result<Self, ConfigError> {
        brownout_foundation::parse::yaml(text).map_err(|e| ConfigError::new(e.field, e.reason).in_file(origin))
    }

    /// Parses JSON. `origin` names the file in errors.
    pub fn from_json_str(text: &str, origin: Option<&Path>) -> Result<Self, ConfigError> {
        brownout_foundation::parse::json(text).map_err(|e| ConfigError::new(e.field, e.reason).in_file(origin))
    }

    /// Reads a file: JSON when it ends in `.json`, YAML otherwise. See [`from_bytes`](Self::from_bytes).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| ConfigError::new("", format!("cannot read the file: {e}")).in_file(Some(path)))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses the contents of the file `path`: JSON when it ends in `.json`, YAML otherwise. A file with
    /// nothing in it but blanks and comments is refused: it is far more often a write caught half-way (a
    /// truncate before the write) than a wish for no rules, which `rules: []` says.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, ConfigError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ConfigError::new("", format!("the file is not UTF-8: {e}")).in_file(Some(path)))?;
        if is_blank_document(text) {
            return Err(ConfigError::new(
                "",
                "the file is empty (or only comments), as in a write caught half-way; write `rules: []` to load no rules",
            )
            .in_file(Some(path)));
        }
        if path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("json")) {
            return Self::from_json_str(text, Some(path));
        }
        #[cfg(feature = "yaml")]
        return Self::from_yaml_str(text, Some(path));
        #[cfg(not(feature = "yaml"))]
        return Err(ConfigError::new("", "YAML needs chaos-core's `yaml` feature: write the rules as JSON (`.json`)")
            .in_file(Some(path)));
    }
}
