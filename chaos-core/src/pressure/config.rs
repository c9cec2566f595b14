//! The `pressure:` list of a chaos config.
//!
//! ```yaml
//! pressure:
//!   - name: cpu-squeeze
//!     cpu: { threads: 2, duty: 0.8 }
//!     start_after: 5s
//!     duration: 30s
//!   - name: ballast
//!     memory: { fraction_of_limit: 0.25, ramp: { step: 64MiB, every: 1s } }
//!     duration: 20s
//!   - name: slow-disk
//!     io: { mb_per_sec: 20 }
//!     duration: 10s
//! ```

use std::collections::HashSet;
use std::time::Duration;

use brownout_foundation::duration;
use serde::{Deserialize, Serialize};

use super::bytes::{ByteSize, human};
use super::limits::{MemoryLimit, memory_limit};
use super::{DEFAULT_CEILING, Load, MAX_IO_BYTES_PER_SEC, MemoryTarget, Pressure, Ramp};
use crate::error::ConfigError;

/// One pressure rule: exactly one of `cpu`, `memory` or `io`, for `duration`, after `start_after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PressureConfig {
    /// Unique among the pressure rules; shown in logs and statuses.
    pub name: String,
    /// Burner threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuPressureConfig>,
    /// A memory ballast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryPressureConfig>,
    /// A disk writer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IoPressureConfig>,
    /// Starts this long after the rule set is armed (default `0s`).
    #[serde(default, with = "duration::option", skip_serializing_if = "Option::is_none")]
    pub start_after: Option<Duration>,
    /// Runs this long (required: chaos is bounded). The rule set's TTL cuts it short too.
    #[serde(with = "duration")]
    pub duration: Duration,
}

impl PressureConfig {
    /// CPU burners named `name`, for `duration`.
    pub fn cpu(name: impl Into<String>, cpu: CpuPressureConfig, duration: Duration) -> Self {
        Self { cpu: Some(cpu), ..Self::empty(name.into(), duration) }
    }

    /// A memory ballast named `name`, for `duration`.
    pub fn memory(name: impl Into<String>, memory: MemoryPressureConfig, duration: Duration) -> Self {
        Self { memory: Some(memory), ..Self::empty(name.into(), duration) }
    }

    /// A disk writer named `name`, for `duration`.
    pub fn io(name: impl Into<String>, io: IoPressureConfig, duration: Duration) -> Self {
        Self { io: Some(io), ..Self::empty(name.into(), duration) }
    }

    fn empty(name: String, duration: Duration) -> Self {
        Self { name, cpu: None, memory: None, io: None, start_after: None, duration }
    }
}

brownout_foundation::setters! {
    impl PressureConfig {
        start_after: Some(Duration),
    }
}

/// `cpu: { threads: 2, duty: 0.8 }`: a target of 1.6 cores. `cpu: { per_core: true, duty: 0.8 }`: one burner
/// per core of the machine (`std::thread::available_parallelism`), so the pressure is sized to it: 1.6 cores
/// on 2, 12.8 on 16.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CpuPressureConfig {
    /// Burner threads (default 1, at most 64); ignored with `per_core`.
    #[serde(default = "one")]
    pub threads: u32,
    /// Busy fraction of each thread, in (0, 1].
    pub duty: f64,
    /// One burner per core the process may use, instead of `threads` (at most 64).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_core: bool,
}

impl CpuPressureConfig {
    /// `threads` burners, each busy `duty` of the time.
    pub fn threads(threads: u32, duty: f64) -> Self {
        Self { threads, duty, per_core: false }
    }

    /// One burner per core the process may use, each busy `duty` of the time.
    pub fn per_core(duty: f64) -> Self {
        Self { threads: 1, duty, per_core: true }
    }
}

impl CpuPressureConfig {
    /// The burner threads this config asks for on this machine.
    pub fn thread_count(&self) -> u32 {
        if self.per_core {
            std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(64).min(64))
        } else {
            self.threads
        }
    }
}

fn one() -> u32 {
    1
}

/// `memory: { bytes: 512MiB }` or `memory: { fraction_of_limit: 0.25, ramp: { step: 64MiB, every: 1s } }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryPressureConfig {
    /// Ballast size (`512MiB`, `1.5GiB`, or bytes). Give this or `fraction_of_limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<ByteSize>,
    /// Ballast size as a fraction, in (0, 1], of the memory limit (cgroup v2 `memory.max`, else physical
    /// memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_of_limit: Option<f64>,
    /// Grow step by step instead of at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampConfig>,
    /// Refuse a ballast above this fraction of the memory limit (default 0.8, at most 0.9). All memory rules
    /// together must also fit under the highest of their ceilings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<f64>,
}

impl MemoryPressureConfig {
    /// A ballast of `bytes`.
    pub fn of_size(bytes: ByteSize) -> Self {
        Self { bytes: Some(bytes), fraction_of_limit: None, ramp: None, ceiling: None }
    }

    /// A ballast of `fraction` of the memory limit.
    pub fn of_limit(fraction: f64) -> Self {
        Self { bytes: None, fraction_of_limit: Some(fraction), ramp: None, ceiling: None }
    }
}

brownout_foundation::setters! {
    impl MemoryPressureConfig {
        ramp: Some(RampConfig),
        ceiling: Some(f64),
    }
}

/// `ramp: { step: 64MiB, every: 1s }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RampConfig {
    /// Added per step.
    pub step: ByteSize,
    /// Time between steps.
    #[serde(with = "duration")]
    pub every: Duration,
}

impl RampConfig {
    /// Grow by `step` every `every`.
    pub fn new(step: ByteSize, every: Duration) -> Self {
        Self { step, every }
    }
}

/// `io: { mb_per_sec: 20 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IoPressureConfig {
    /// Write rate in MB/s (10⁶ bytes per second), in (0, 1000].
    pub mb_per_sec: f64,
}

impl IoPressureConfig {
    /// Write `mb_per_sec` MB per second.
    pub fn new(mb_per_sec: f64) -> Self {
        Self { mb_per_sec }
    }
}

impl PressureConfig {
    /// The [`Load`] this rule describes. Errors name a field relative to the rule (`memory.bytes`…).
    pub fn load(&self) -> Result<Load, super::PressureError> {
        use super::PressureError as E;
        match (&self.cpu, &self.memory, &self.io) {
            (Some(c), None, None) => Ok(Load::Cpu { threads: c.thread_count(), duty: c.duty }),
            (None, Some(m), None) => {
                let target = match (m.bytes, m.fraction_of_limit) {
                    (Some(b), None) => MemoryTarget::Bytes(b.bytes()),
                    (None, Some(f)) => MemoryTarget::FractionOfLimit(f),
                    _ => {
                        return Err(E::new("memory", "give `bytes` or `fraction_of_limit`, not both or neither"));
                    }
                };
                Ok(Load::Memory {
                    target,
                    ramp: m.ramp.map(|r| Ramp { step: r.step.bytes(), every: r.every }),
                    ceiling: m.ceiling.unwrap_or(DEFAULT_CEILING),
                })
            }
            (None, None, Some(io)) => {
                let rate = io.mb_per_sec * 1e6;
                if !(rate.is_finite() && rate >= 1.0 && rate <= MAX_IO_BYTES_PER_SEC as f64) {
                    return Err(E::new("io.mb_per_sec", format!("must be within (0, 1000], got {}", io.mb_per_sec)));
                }
                Ok(Load::Io { bytes_per_sec: rate.round() as u64 })
            }
            _ => Err(E::new("", "give exactly one of `cpu`, `memory` or `io`")),
        }
    }

    /// The [`Pressure`] to start for this rule (not yet checked against the memory limit).
    pub fn to_pressure(&self) -> Result<Pressure, super::PressureError> {
        Ok(Pressure::new(self.name.trim(), self.load()?, self.duration)
            .start_after(self.start_after.unwrap_or_default()))
    }
}

fn at(i: usize, e: super::PressureError) -> ConfigError {
    let field = if e.field().is_empty() { format!("pressure[{i}]") } else { format!("pressure[{i}].{}", e.field()) };
    ConfigError::new(field, e.reason())
}

/// Checks every pressure rule: names, shapes, ranges, and memory targets against the ceiling (one by one and
/// all together). Reads the memory limit only when a memory rule exists.
pub(crate) fn validate(rules: &[PressureConfig]) -> Result<(), ConfigError> {
    plan(rules).map(drop)
}

/// Validates and converts the rules, in order.
pub(crate) fn plan(rules: &[PressureConfig]) -> Result<Vec<Pressure>, ConfigError> {
    let mut limit: Option<MemoryLimit> = None;
    let mut names = HashSet::new();
    let mut memory_total = 0u64;
    let mut highest_ceiling = 0.0f64;
    let mut pressures = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        let name = rule.name.trim();
        if name.is_empty() {
            return Err(ConfigError::new(format!("pressure[{i}].name"), "must not be empty"));
        }
        if !names.insert(name) {
            return Err(ConfigError::new(format!("pressure[{i}].name"), format!("duplicate pressure name `{name}`")));
        }
        let pressure = rule.to_pressure().map_err(|e| at(i, e))?;
        if let Load::Memory { ceiling, .. } = pressure.load() {
            if limit.is_none() {
                limit = Some(memory_limit().map_err(|e| {
                    ConfigError::new(format!("pressure[{i}].memory"), format!("cannot read the memory limit: {e}"))
                })?);
            }
            highest_ceiling = highest_ceiling.max(*ceiling);
        }
        let target = pressure.plan(limit.as_ref()).map_err(|e| at(i, e))?.target();
        if let (Load::Memory { .. }, Some(limit)) = (pressure.load(), &limit) {
            memory_total = memory_total.saturating_add(target as u64);
            let max = (limit.bytes as f64 * highest_ceiling) as u64;
            if memory_total > max {
                return Err(ConfigError::new(
                    format!("pressure[{i}].memory"),
                    format!(
                        "the memory rules add up to {}, above the ceiling {} of the {limit}",
                        human(memory_total),
                        human(max)
                    ),
                ));
            }
        }
        pressures.push(pressure);
    }
    Ok(pressures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChaosConfig;
    use proptest::prelude::*;

    fn check(yaml: &str) -> Result<ChaosConfig, ConfigError> {
        let config = ChaosConfig::from_yaml_str(yaml, None)?;
        validate(&config.pressure)?;
        Ok(config)
    }

    fn field_of(yaml: &str) -> String {
        check(yaml).expect_err("must be refused").field().to_owned()
    }

    const EXAMPLE: &str = include_str!("../../../configs/chaos/pressure.yaml");

    #[test]
    fn the_example_parses_and_validates() {
        let config = check(EXAMPLE).expect("example is valid");
        assert_eq!(config.pressure.len(), 3);
        let cpu = config.pressure[0].load().expect("cpu");
        assert_eq!(cpu, Load::Cpu { threads: 2, duty: 0.8 });
        let memory = &config.pressure[1].memory.expect("memory");
        assert_eq!(memory.ramp.map(|r| r.step.bytes()), Some(64 << 20));
        assert_eq!(config.pressure[2].load().expect("io"), Load::Io { bytes_per_sec: 20_000_000 });
        // Serializing and parsing again gives the same config.
        let json = serde_json::to_string(&config).expect("serialize");
        assert_eq!(ChaosConfig::from_json_str(&json, None).expect("reparse"), config);
    }

    #[test]
    fn per_core_sizes_the_burners_to_the_machine() {
        let config = check("pressure: [{ name: a, cpu: { per_core: true, duty: 0.8 }, duration: 1s }]").expect("valid");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32).min(64);
        assert_eq!(config.pressure[0].load().expect("cpu"), Load::Cpu { threads: cores, duty: 0.8 });
        let json = serde_json::to_string(&config).expect("serialize");
        assert!(json.contains("\"per_core\":true"), "{json}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("pressure: [{ name: a, cpu: { duty: 1.5 }, duration: 1s }]", "pressure[0].cpu.duty"),
            ("pressure: [{ name: a, cpu: { threads: 0, duty: 0.5 }, duration: 1s }]", "pressure[0].cpu.threads"),
            ("pressure: [{ name: a, cpu: { dutty: 0.5 }, duration: 1s }]", "pressure[0].cpu.dutty"),
            ("pressure: [{ name: a, cpu: { duty: 0.5 } }]", "pressure[0]"),
            ("pressure: [{ name: a, cpu: { duty: 0.5 }, duration: 0s }]", "pressure[0].duration"),
            ("pressure: [{ name: a, cpu: { duty: 0.5 }, duration: soon }]", "pressure[0].duration"),
            ("pressure: [{ name: a, cpu: { duty: 0.5 }, io: { mb_per_sec: 1 }, duration: 1s }]", "pressure[0]"),
            ("pressure: [{ name: a, duration: 1s }]", "pressure[0]"),
            (
                "pressure: [{ name: a, cpu: { duty: 0.5 }, duration: 1s }, { name: b, memory: { fraction_of_limit: 1.5 }, duration: 1s }]",
                "pressure[1].memory.fraction_of_limit",
            ),
            (
                "pressure: [{ name: a, memory: { fraction_of_limit: 0.85 }, duration: 1s }]",
                "pressure[0].memory.fraction_of_limit",
            ),
            ("pressure: [{ name: a, memory: { bytes: 12 parsecs }, duration: 1s }]", "pressure[0].memory.bytes"),
            (
                "pressure: [{ name: a, memory: { bytes: 1MiB, fraction_of_limit: 0.1 }, duration: 1s }]",
                "pressure[0].memory",
            ),
            (
                "pressure: [{ name: a, memory: { bytes: 1MiB, ceiling: 0.99 }, duration: 1s }]",
                "pressure[0].memory.ceiling",
            ),
            (
                "pressure: [{ name: a, memory: { bytes: 1MiB, ramp: { step: 0, every: 1s } }, duration: 1s }]",
                "pressure[0].memory.ramp.step",
            ),
            ("pressure: [{ name: a, io: { mb_per_sec: 0 }, duration: 1s }]", "pressure[0].io.mb_per_sec"),
            (
                "pressure: [{ name: a, io: { mb_per_sec: 1 }, duration: 1s }, { name: a, io: { mb_per_sec: 1 }, duration: 1s }]",
                "pressure[1].name",
            ),
            ("pressure: [{ name: ' ', io: { mb_per_sec: 1 }, duration: 1s }]", "pressure[0].name"),
            (
                "pressure: [{ name: a, memory: { fraction_of_limit: 0.5 }, duration: 1s }, { name: b, memory: { fraction_of_limit: 0.5 }, duration: 1s }]",
                "pressure[1].memory",
            ),
        ];
        for (yaml, field) in cases {
            assert_eq!(field_of(yaml), field, "{yaml}");
        }
        let e = check("pressure: [{ name: a, memory: { fraction_of_limit: 0.85 }, duration: 1s }]").unwrap_err();
        assert!(e.reason().contains("above the ceiling"), "{e}");
    }

    #[test]
    fn absent_pressure_is_empty_and_not_serialized() {
        let config = check("rules: []").expect("valid");
        assert!(config.pressure.is_empty());
        let json = serde_json::to_string(&config).expect("serialize");
        assert!(!json.contains("pressure"), "{json}");
    }

    fn near_yaml() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            Just("0".to_owned()),
            Just("-1".to_owned()),
            Just("0.5".to_owned()),
            Just("1.5".to_owned()),
            Just("64MiB".to_owned()),
            Just("1s".to_owned()),
            Just("'x'".to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            Just("null".to_owned()),
            Just("1e400".to_owned()),
            Just(".nan".to_owned()),
            "[a-z0-9.]{0,6}",
        ];
        let key = prop_oneof![
            Just("threads"),
            Just("duty"),
            Just("bytes"),
            Just("fraction_of_limit"),
            Just("ceiling"),
            Just("mb_per_sec"),
            Just("step"),
            Just("every"),
            Just("bogus"),
        ];
        let body = prop::collection::vec((key, value.clone()), 0..4)
            .prop_map(|kvs| kvs.into_iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "));
        let kind = prop_oneof![Just("cpu"), Just("memory"), Just("io"), Just("disk")];
        (kind, body, value.clone(), value).prop_map(|(kind, body, duration, after)| {
            format!(
                "pressure:\n  - name: p\n    {kind}: {{ {body} }}\n    duration: {duration}\n    start_after: {after}\n"
            )
        })
    }

    proptest! {
        #[test]
        fn any_yaml_is_ok_or_err(text in ".{0,64}") {
            let _ = check(&text);
        }

        #[test]
        fn near_valid_pressure_yaml_is_ok_or_err(text in near_yaml()) {
            if let Err(e) = check(&text) {
                prop_assert!(e.field().starts_with("pressure") || e.field().is_empty(), "{}", e);
            }
        }
    }
}
