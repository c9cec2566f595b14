//! `CHAOS_EVENT {...}` lines: one JSON object per chaos event on standard output, so log pipelines can line
//! up alerts with chaos windows.

use std::time::SystemTime;

use serde_json::{Value, json};

/// Prints one event: `CHAOS_EVENT {"event":…,"scenario":…,"at":…,…}`.
pub fn emit(event: &str, scenario: &str, at: SystemTime, extra: Value) {
    let mut line = json!({
        "event": event,
        "scenario": scenario,
        "at": humantime::format_rfc3339_millis(at).to_string(),
    });
    if let (Some(line), Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    println!("CHAOS_EVENT {line}");
}
