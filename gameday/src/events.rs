//! `CHAOS_EVENT:` lines, in the N1V1 suite's shape: one JSON object per chaos event, so log pipelines can
//! line up alerts with chaos windows (`grep CHAOS_EVENT`).
//!
//! ```text
//! CHAOS_EVENT: {"timestamp":"2026-12-04T02:00:30.000Z","event_type":"chaos_failure_injected","chaos_engineering":true,"component_id":"provider","failure_type":"CHAOS_NETWORK_PARTITION","error_message":"…","confidence":1.0,"metadata":{"chaos_scenario":"network_partition"}}
//! ```

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventType {
    /// The scenario's rules were armed.
    ChaosArmed,
    /// The first fault was injected.
    ChaosFailureInjected,
    /// The service noticed: a breaker opened, a degrade flag turned on.
    ChaosFailureDetected,
    /// The SLO guard disarmed the rules before their planned end.
    ChaosAborted,
    /// The rules were disarmed (planned end, abort, or interruption).
    ChaosDisarmed,
    /// The service recovered: a breaker closed, a flag turned off.
    ChaosRecoveryEvent,
    /// The service was back on its normal path.
    ChaosRecoveryDetected,
}

impl EventType {
    /// A few words for a chart's key (`armed`, `first fault`, `back to normal`).
    pub fn label(self) -> &'static str {
        match self {
            EventType::ChaosArmed => "armed",
            EventType::ChaosFailureInjected => "first fault",
            EventType::ChaosFailureDetected => "detected",
            EventType::ChaosAborted => "aborted by the SLO guard",
            EventType::ChaosDisarmed => "disarmed",
            EventType::ChaosRecoveryEvent => "recovered",
            EventType::ChaosRecoveryDetected => "back to normal",
        }
    }
}

/// One event.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ChaosEvent {
    /// When, RFC 3339 with milliseconds, UTC.
    pub timestamp: String,
    /// What happened.
    pub event_type: EventType,
    /// Always true: tells chaos events from real ones in a shared pipeline.
    pub chaos_engineering: bool,
    /// The component concerned: the fault switch (`provider`), a breaker or a flag.
    pub component_id: String,
    /// `CHAOS_` and the scenario's name in capitals (`CHAOS_NETWORK_PARTITION`).
    pub failure_type: String,
    /// A sentence for humans.
    pub error_message: String,
    /// 1.0: the runner knows it injected the fault (kept for the seed's readers).
    pub confidence: f64,
    /// `chaos_scenario` and event-specific details.
    pub metadata: Value,
}

/// Where the events of a run go: each is printed as a `CHAOS_EVENT:` line and kept for the reports.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    events: Arc<Mutex<Vec<ChaosEvent>>>,
    quiet: bool,
}

impl EventLog {
    /// A log that prints each event to standard output.
    pub fn new() -> EventLog {
        EventLog::default()
    }

    /// A log that only keeps them (tests, and library users who read [`EventLog::events`]).
    pub fn quiet() -> EventLog {
        EventLog { quiet: true, ..EventLog::default() }
    }

    /// Records one event of `scenario` at `at`.
    pub fn emit(
        &self,
        event_type: EventType,
        scenario: &str,
        component: &str,
        at: SystemTime,
        message: impl Into<String>,
        mut metadata: Value,
    ) {
        if let Value::Object(map) = &mut metadata {
            map.insert("chaos_scenario".into(), Value::from(scenario));
        } else {
            metadata = serde_json::json!({ "chaos_scenario": scenario });
        }
        let event = ChaosEvent {
            timestamp: humantime::format_rfc3339_millis(at).to_string(),
            event_type,
            chaos_engineering: true,
            component_id: component.to_owned(),
            failure_type: failure_type(scenario),
            error_message: message.into(),
            confidence: 1.0,
            metadata,
        };
        if !self.quiet {
            crate::progress::line(&format!("CHAOS_EVENT: {}", serde_json::to_string(&event).unwrap_or_default()));
        }
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(event);
    }

    /// The events so far, in the order they were recorded.
    pub fn events(&self) -> Vec<ChaosEvent> {
        self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The events of one scenario.
    pub fn of(&self, scenario: &str) -> Vec<ChaosEvent> {
        self.events().into_iter().filter(|e| e.metadata["chaos_scenario"] == scenario).collect()
    }
}

/// `CHAOS_` and the scenario's name in capitals, non-alphanumerics as `_` (the same as a service's events).
pub use brownout_chaos::event::failure_type;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_seed_fields() {
        let log = EventLog::quiet();
        log.emit(
            EventType::ChaosArmed,
            "network_partition",
            "provider",
            SystemTime::UNIX_EPOCH,
            "armed",
            serde_json::json!({ "seed": 7 }),
        );
        let line = serde_json::to_value(&log.events()[0]).unwrap();
        for field in brownout_chaos::event::FIELDS {
            assert!(line.get(field).is_some(), "no `{field}` in {line}");
        }
        assert_eq!(line["failure_type"], "CHAOS_NETWORK_PARTITION");
        assert_eq!(line["event_type"], "chaos_armed");
        assert_eq!(line["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(line["metadata"]["chaos_scenario"], "network_partition");
        assert_eq!(line["metadata"]["seed"], 7);
        assert_eq!(log.of("network_partition").len(), 1);
        assert!(log.of("other").is_empty());
    }
}
