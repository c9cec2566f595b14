//! `CHAOS_EVENT:` log lines from a service that embeds the layers, in the N1V1 suite's shape (the GameDay
//! runner prints the same shape): the rules armed, the first fault a rule injects after arming, the rules
//! disarmed, an abort. One INFO event per occurrence, target `chaos_event`, so `grep CHAOS_EVENT` on a
//! service's logs lines its chaos up with its alerts:
//!
//! ```text
//! INFO chaos_event: CHAOS_EVENT: {"timestamp":"…Z","event_type":"chaos_failure_injected","chaos_engineering":true,"component_id":"slow-quotes","failure_type":"CHAOS_QUOTE_PROVIDER","error_message":"first latency fault injected by rule slow-quotes","confidence":1.0,"metadata":{"chaos_scenario":"quote-provider","kind":"latency"}}
//! ```
//!
//! `failure_type` is `CHAOS_` and the experiment's name in capitals; `metadata.chaos_scenario` the experiment.

use std::time::SystemTime;

use serde_json::{Value, json};

/// The tracing target of the events.
pub const TARGET: &str = "chaos_event";

/// The fields every `CHAOS_EVENT` line carries, with the N1V1 suite's names (the GameDay runner's lines too).
pub const FIELDS: [&str; 8] = [
    "timestamp",
    "event_type",
    "chaos_engineering",
    "component_id",
    "failure_type",
    "error_message",
    "confidence",
    "metadata",
];

/// `CHAOS_` and `name` in capitals, non-alphanumerics as `_` (`CHAOS_QUOTE_PROVIDER`).
pub fn failure_type(name: &str) -> String {
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("CHAOS_{name}")
}

/// The event as a JSON line.
pub(crate) fn line(event_type: &str, component: &str, experiment: &str, message: &str, mut metadata: Value) -> String {
    if let Value::Object(map) = &mut metadata {
        map.insert("chaos_scenario".into(), Value::from(experiment));
    }
    json!({
        "timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        "event_type": event_type,
        "chaos_engineering": true,
        "component_id": component,
        "failure_type": failure_type(experiment),
        "error_message": message,
        "confidence": 1.0,
        "metadata": metadata,
    })
    .to_string()
}

/// Logs one event (INFO, target [`TARGET`]); formatted only when someone listens.
pub(crate) fn emit(event_type: &str, component: &str, experiment: &str, message: &str, metadata: Value) {
    if tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        tracing::info!(target: TARGET, "CHAOS_EVENT: {}", line(event_type, component, experiment, message, metadata));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_carries_the_seed_fields() {
        let v: Value =
            serde_json::from_str(&line("chaos_armed", "chaos", "quote provider", "armed", json!({ "rules": 2 })))
                .unwrap();
        for field in FIELDS {
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(v["failure_type"], "CHAOS_QUOTE_PROVIDER");
        assert_eq!(v["metadata"]["chaos_scenario"], "quote provider");
        assert_eq!(v["metadata"]["rules"], 2);
    }
}
