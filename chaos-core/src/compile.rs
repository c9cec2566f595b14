//! From a parsed [`ChaosConfig`] to a [`RuleSet`]: every semantic check, with the field path of the culprit.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::clock::Clock;
use crate::config::{ChaosConfig, FaultConfig, LatencyConfig, RuleConfig, SampleConfig, TargetConfig};
use crate::environment::{Environment, PROD_MAX_BLAST_RADIUS};
use crate::error::ConfigError;
use crate::fault::{BodyFault, ErrorFault, Fault, Latency, MAX_CPU_BURN, Outcome, RateLimit};
use crate::glob::RouteGlob;
use crate::index::{Entry, RuleIndex, literal_prefix};
use crate::lane::Lane;
use crate::metrics::RuleMetrics;
use crate::rule::{Cumulative, HeaderFaults, Rule, RuleSet};
use crate::sampler::Sampler;
use crate::target::Target;

/// The reserved name of the pseudo-rule that accounts for header faults.
pub(crate) const HEADER_RULE: &str = "header";

static NEXT_SET_ID: AtomicU64 = AtomicU64::new(1);

type Result<T> = std::result::Result<T, ConfigError>;

fn err<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T> {
    Err(ConfigError::new(field, reason))
}

fn check_rate(field: &str, rate: f64) -> Result<f64> {
    if rate.is_finite() && (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        err(field, format!("must be within [0, 1], got {rate}"))
    }
}

/// Validates `config` for `env` and builds the rule set. Nothing is registered or armed here. With the set it
/// replaces, `previous`, the new set shares its epoch (so windows carry over) and, when the config names no
/// seed, its seed (so a reload does not change the samplers' draws).
pub(crate) fn compile(
    config: ChaosConfig,
    env: Environment,
    clock: Arc<dyn Clock>,
    previous: Option<&RuleSet>,
) -> Result<RuleSet> {
    if config.ttl.is_zero() {
        return err("ttl", "must be longer than zero");
    }
    if config.experiment.as_deref().is_some_and(|e| e.trim().is_empty()) {
        return err("experiment", "must not be empty");
    }
    let mut blast_radius = match config.blast_radius {
        None => 1.0,
        Some(b) if b.is_finite() && b > 0.0 && b <= 1.0 => b,
        Some(b) => return err("blast_radius", format!("must be within (0, 1], got {b}")),
    };
    if env == Environment::Prod {
        if config.armed && !config.allow_prod {
            return err("allow_prod", "the process runs in prod and the config does not say `allow_prod: true`");
        }
        blast_radius = blast_radius.min(PROD_MAX_BLAST_RADIUS);
        if config.header_faults.as_ref().is_some_and(|h| h.enabled) {
            return err("header_faults.enabled", "header-driven faults are not allowed in prod");
        }
    }
    if config.max_active_faults == Some(0) {
        return err("max_active_faults", "must be at least 1 (remove it for no limit)");
    }
    crate::pressure::validate(&config.pressure)?;
    let seed = config.seed.or(previous.map(|p| p.seed)).unwrap_or_else(fresh_seed);

    let mut names = HashSet::new();
    let mut rules = Vec::with_capacity(config.rules.len() + 1);
    for (i, rule) in config.rules.iter().enumerate() {
        let field = format!("rules[{i}]");
        if !names.insert(rule.name.as_str()) {
            return err(format!("{field}.name"), format!("duplicate rule name `{}`", rule.name));
        }
        rules.push(compile_rule(&field, rule, seed, blast_radius, env)?);
    }
    let user_rules = rules.len();
    let random = Cumulative::of(&rules);
    let entries: Vec<Entry<'_>> = rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.random_untargeted().is_none())
        .map(|(i, rule)| Entry {
            rule: u32::try_from(i).expect("fewer than 2^32 rules"),
            methods: &rule.target.methods,
            prefix: rule.target.route.as_ref().map_or(&[][..], |r| literal_prefix(r.as_str())),
        })
        .collect();
    let index = RuleIndex::build(&entries);
    let lane = Lane::build(&rules, &entries);
    let reads_request = !entries.is_empty();
    let reads_headers = rules
        .iter()
        .any(|r| !r.target.headers_eq.is_empty() || !r.target.headers_present.is_empty() || r.target.key.is_some());
    drop(entries);

    let header = match &config.header_faults {
        Some(h) if h.enabled => {
            let token = read_token(h.token_env.as_deref(), h.token_file.as_deref())?;
            rules.push(pseudo_rule(HEADER_RULE, Fault::Header));
            Some(HeaderFaults { token, max_delay: h.max_delay, rule: user_rules })
        }
        _ => None,
    };

    let epoch = previous.map_or_else(|| clock.now(), |p| p.epoch);
    Ok(RuleSet {
        id: NEXT_SET_ID.fetch_add(1, Ordering::Relaxed),
        seed,
        ttl: config.ttl,
        rules: rules.into_boxed_slice(),
        user_rules,
        any_random: random.last().map_or(0, |c| c.threshold),
        random: random.into_boxed_slice(),
        index,
        lane,
        reads_request: reads_request || header.is_some(),
        reads_headers,
        header,
        max_active_total: config.max_active_faults.unwrap_or(u32::MAX),
        active_total: AtomicU32::new(0),
        next_stream: AtomicU64::new(0),
        clock,
        epoch,
        armed_at: AtomicU64::new(0),
        expired: AtomicBool::new(false),
        config,
    })
}

fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    crate::rng::mix64(nanos as u64 ^ u64::from(std::process::id()).rotate_left(32))
}

fn read_token(env: Option<&str>, file: Option<&str>) -> Result<Box<[u8]>> {
    let token = match (env, file) {
        (Some(var), None) => std::env::var(var).map_err(|_| {
            ConfigError::new("header_faults.token_env", format!("environment variable `{var}` is not set"))
        })?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("header_faults.token_file", format!("cannot read `{path}`: {e}")))?,
        (Some(_), Some(_)) => {
            return err("header_faults", "give `token_env` or `token_file`, not both");
        }
        (None, None) => {
            return err("header_faults", "enabled header faults need `token_env` or `token_file`");
        }
    };
    let token = token.trim_end();
    if token.len() < 16 {
        return err("header_faults", "the token must be at least 16 characters long");
    }
    Ok(token.as_bytes().into())
}

fn pseudo_rule(name: &str, fault: Fault) -> Rule {
    Rule {
        name: name.into(),
        header_value: HeaderValue::from_str(name).expect("static name is a valid header value"),
        target: Target {
            route: None,
            methods: Box::new([]),
            headers_eq: Box::new([]),
            headers_present: Box::new([]),
            key: None,
            any: true,
        },
        sampler: Sampler::Never,
        metrics: RuleMetrics::register(name, fault.kind()),
        http_only: false,
        fault,
        start_after: Duration::ZERO,
        end_after: None,
        max_injections: u64::MAX,
        max_active: u32::MAX,
        blast_radius: 1.0,
        counter: AtomicU64::new(0),
        injected: AtomicU64::new(0),
        announced: std::sync::atomic::AtomicBool::new(false),
        overflow: AtomicU64::new(0),
        active: AtomicU32::new(0),
        since: AtomicU64::new(0),
    }
}

fn compile_rule(field: &str, rule: &RuleConfig, seed: u64, blast_radius: f64, env: Environment) -> Result<Rule> {
    let name = rule.name.trim();
    if name.is_empty() {
        return err(format!("{field}.name"), "must not be empty");
    }
    if name == HEADER_RULE {
        return err(format!("{field}.name"), "`header` is reserved for header-driven faults");
    }
    let header_value = HeaderValue::from_str(name)
        .ok()
        .filter(|_| name.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        .ok_or_else(|| ConfigError::new(format!("{field}.name"), "must be printable ASCII (it is sent as a header)"))?;
    let target = compile_target(&format!("{field}.match"), &rule.target)?;
    let sampler = compile_sampler(&format!("{field}.sample"), rule, seed, blast_radius, env)?;
    if sampler.needs_key() && target.key.is_none() {
        return err(format!("{field}.sample"), "hash sampling needs a request key: add `match.key.header`");
    }
    let fault = compile_fault(&format!("{field}.fault"), &rule.fault)?;
    if rule.duration.is_some_and(|d| d.is_zero()) {
        return err(format!("{field}.duration"), "must be longer than zero");
    }
    if rule.max_active == Some(0) {
        return err(format!("{field}.max_active"), "must be at least 1 (remove it for no limit)");
    }
    let start_after = rule.start_after.unwrap_or_default();
    Ok(Rule {
        name: name.into(),
        header_value,
        target,
        sampler,
        metrics: RuleMetrics::register(name, fault.kind()),
        http_only: matches!(fault, Fault::Body(_)),
        fault,
        start_after,
        end_after: rule.duration.map(|d| start_after.saturating_add(d)),
        max_injections: rule.max_injections.unwrap_or(u64::MAX),
        max_active: rule.max_active.unwrap_or(u32::MAX),
        blast_radius,
        counter: AtomicU64::new(0),
        injected: AtomicU64::new(0),
        announced: std::sync::atomic::AtomicBool::new(false),
        overflow: AtomicU64::new(0),
        active: AtomicU32::new(0),
        since: AtomicU64::new(0),
    })
}

fn compile_target(field: &str, t: &TargetConfig) -> Result<Target> {
    let route = match &t.route {
        Some(r) if r.is_empty() => return err(format!("{field}.route"), "must not be empty"),
        Some(r) => Some(RouteGlob::parse(r).map_err(|e| ConfigError::new(format!("{field}.route"), e.reason()))?),
        None => None,
    };
    let methods = t
        .method
        .as_ref()
        .map(|m| m.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|m| {
            Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| ConfigError::new(format!("{field}.method"), format!("`{m}` is not an HTTP method")))
        })
        .collect::<Result<Box<[Method]>>>()?;
    let header_name = |f: String, n: &str| {
        HeaderName::from_bytes(n.trim().as_bytes())
            .map_err(|_| ConfigError::new(f, format!("`{n}` is not a valid header name")))
    };
    let headers_eq = t
        .headers
        .iter()
        .map(|(n, v)| {
            let f = format!("{field}.headers.{n}");
            let name = header_name(f.clone(), n)?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| ConfigError::new(f, format!("`{v}` is not a valid header value")))?;
            Ok((name, value))
        })
        .collect::<Result<Box<[_]>>>()?;
    let headers_present = t
        .header_present
        .iter()
        .enumerate()
        .map(|(i, n)| header_name(format!("{field}.header_present[{i}]"), n))
        .collect::<Result<Box<[_]>>>()?;
    let key = t.key.as_ref().map(|k| header_name(format!("{field}.key.header"), &k.header)).transpose()?;
    let any = route.is_none() && methods.is_empty() && headers_eq.is_empty() && headers_present.is_empty();
    Ok(Target { route, methods, headers_eq, headers_present, key, any })
}

fn compile_sampler(field: &str, rule: &RuleConfig, seed: u64, cap: f64, env: Environment) -> Result<Sampler> {
    let over_cap = |what: String, fraction: f64| {
        let why = if env == Environment::Prod && cap <= PROD_MAX_BLAST_RADIUS {
            format!("{what} exceeds the blast radius {cap} (prod allows at most {PROD_MAX_BLAST_RADIUS})")
        } else {
            format!("{what} exceeds the blast radius {cap}")
        };
        if fraction > cap { err(field, why) } else { Ok(()) }
    };
    Ok(match rule.sample {
        SampleConfig::Random { rate } => {
            let rate = check_rate(&format!("{field}.rate"), rate)?;
            over_cap(format!("rate {rate}"), rate)?;
            Sampler::random(rate)
        }
        SampleConfig::Hash { rate } => {
            let rate = check_rate(&format!("{field}.rate"), rate)?;
            over_cap(format!("rate {rate}"), rate)?;
            Sampler::hash(rate, seed, rule.name.trim())
        }
        SampleConfig::Exact { rate } => {
            let rate = check_rate(&format!("{field}.rate"), rate)?;
            over_cap(format!("rate {rate}"), rate)?;
            Sampler::exact(rate)
        }
        SampleConfig::EveryNth { nth: n } => {
            if n == 0 {
                return err(format!("{field}.nth"), "must be at least 1");
            }
            over_cap(format!("every {n}th request"), 1.0 / n as f64)?;
            if n == 1 { Sampler::Always } else { Sampler::EveryNth { n } }
        }
        SampleConfig::FirstN { count: n } => {
            if n == 0 {
                return err(format!("{field}.count"), "must be at least 1");
            }
            Sampler::FirstN { n }
        }
    })
}

fn positive(field: String, d: Duration) -> Result<Duration> {
    if d.is_zero() { err(field, "must be longer than zero") } else { Ok(d) }
}

fn compile_fault(field: &str, fault: &FaultConfig) -> Result<Fault> {
    Ok(match fault {
        FaultConfig::Latency(l) => Fault::Delay(compile_latency(&format!("{field}.latency"), l)?),
        FaultConfig::Error(e) => {
            let f = format!("{field}.error");
            let status = match (e.status, e.grpc) {
                (Some(_), Some(_)) => return err(f, "give `status` or `grpc`, not both"),
                (Some(s), None) => {
                    StatusCode::from_u16(s).ok().filter(|_| (100..=599).contains(&s)).ok_or_else(|| {
                        ConfigError::new(format!("{f}.status"), format!("must be within 100–599, got {s}"))
                    })?
                }
                (None, Some(_)) => StatusCode::OK,
                (None, None) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let mut headers = HeaderMap::new();
            for (n, v) in &e.headers {
                let hf = format!("{f}.headers.{n}");
                let name = HeaderName::from_bytes(n.trim().as_bytes())
                    .map_err(|_| ConfigError::new(hf.clone(), format!("`{n}` is not a valid header name")))?;
                let value = HeaderValue::from_str(v)
                    .map_err(|_| ConfigError::new(hf, format!("`{v}` is not a valid header value")))?;
                headers.append(name, value);
            }
            let message = e.message.clone().unwrap_or_else(|| match (e.grpc, status) {
                (Some(code), _) => format!("injected grpc {code:?}"),
                (None, s) => format!("injected {s}"),
            });
            if e.grpc.is_some() && HeaderValue::from_str(&message).is_err() {
                return err(format!("{f}.message"), "must be a valid header value (it is sent as grpc-message)");
            }
            Fault::Outcome(Outcome::Error(Arc::new(ErrorFault {
                status,
                grpc: e.grpc,
                message: message.into(),
                body: e.body.clone().map(Bytes::from).unwrap_or_default(),
                headers,
            })))
        }
        FaultConfig::RateLimit(r) => {
            let f = format!("{field}.rate_limit");
            let retry = positive(format!("{f}.retry_after"), r.retry_after)?;
            // Retry-After carries whole seconds: round up so callers never retry early.
            let secs = retry.as_secs() + u64::from(retry.subsec_nanos() > 0);
            Fault::Outcome(Outcome::RateLimit(RateLimit { retry_after_secs: secs, limit: r.limit }))
        }
        FaultConfig::Hang(h) => Fault::Outcome(Outcome::Hang { max: positive(format!("{field}.hang.max"), h.max)? }),
        FaultConfig::Reset(_) => Fault::Outcome(Outcome::Reset),
        FaultConfig::CpuBurn(b) => {
            let cpu = positive(format!("{field}.cpu_burn.cpu"), b.cpu)?;
            if cpu > MAX_CPU_BURN {
                return err(format!("{field}.cpu_burn.cpu"), format!("must be at most {MAX_CPU_BURN:?} per request"));
            }
            Fault::Burn(cpu)
        }
        FaultConfig::Throttle(t) => {
            if t.kib_per_sec == 0 {
                return err(format!("{field}.throttle.kib_per_sec"), "must be at least 1");
            }
            Fault::Body(BodyFault::Throttle { bytes_per_sec: t.kib_per_sec.saturating_mul(1024) })
        }
        FaultConfig::Truncate(t) => Fault::Body(BodyFault::Truncate { after_bytes: t.after_bytes }),
    })
}

fn compile_latency(field: &str, l: &LatencyConfig) -> Result<Latency> {
    let finite_positive = |f: &str, x: f64| {
        if x.is_finite() && x > 0.0 {
            Ok(x)
        } else {
            err(format!("{field}.{f}"), format!("must be a positive number, got {x}"))
        }
    };
    Ok(match *l {
        LatencyConfig::Fixed(d) => Latency::Fixed(d),
        LatencyConfig::Uniform { min, max } => {
            if min > max {
                return err(format!("{field}.uniform"), "`min` must not exceed `max`");
            }
            Latency::Uniform { min, max }
        }
        LatencyConfig::Jitter { base, jitter } => Latency::Jitter { base, jitter },
        LatencyConfig::LogNormal { median, sigma, max } => {
            let median = positive(format!("{field}.log_normal.median"), median)?;
            let sigma = finite_positive("log_normal.sigma", sigma)?;
            if max < median {
                return err(format!("{field}.log_normal.max"), "must not be below the median");
            }
            Latency::LogNormal { mu: median.as_secs_f64().ln(), sigma, max }
        }
        LatencyConfig::Pareto { scale, shape, max } => {
            let scale = positive(format!("{field}.pareto.scale"), scale)?;
            let shape = finite_positive("pareto.shape", shape)?;
            if max < scale {
                return err(format!("{field}.pareto.max"), "must not be below the scale");
            }
            Latency::Pareto { scale: scale.as_secs_f64(), shape, max }
        }
    })
}
