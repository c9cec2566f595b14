//! Property tests: alert thresholds and hysteresis against a simple model, and the heavy-tier gate with windows
//! that wrap midnight.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use brownout_cost::budget::{
    AlertLevel, AuditEvent, AuditLog, Budget, BudgetSet, HeavyWindow, Override, Thresholds, TierGate, heavy_allowed,
    read_audit,
};
use brownout_cost::{Labels, Tier};
use proptest::prelude::*;

/// The model: what each level does, written out case by case.
fn model(level: AlertLevel, u: f64, t: Thresholds, h: f64) -> AlertLevel {
    use AlertLevel::*;
    match level {
        Ok if u >= t.critical => Critical,
        Ok if u >= t.warn => Warn,
        Ok => Ok,
        Warn if u >= t.critical => Critical,
        Warn if u < t.warn - h => Ok,
        Warn => Warn,
        Critical if u >= t.critical - h => Critical,
        Critical if u >= t.warn - h => Warn,
        Critical => Ok,
    }
}

fn thresholds() -> impl Strategy<Value = (Thresholds, f64)> {
    (0.05f64..0.95, 0.01f64..1.0, 0.0f64..1.0).prop_map(|(warn, c, h)| {
        let critical = warn + (1.0 - warn) * c;
        (Thresholds::new(warn, critical), h * warn * 0.99)
    })
}

proptest! {
    #[test]
    fn levels_follow_the_model((t, h) in thresholds(), us in prop::collection::vec(0.0f64..1.3, 1..60)) {
        let (mut level, mut expected) = (AlertLevel::Ok, AlertLevel::Ok);
        let (mut crossings, mut model_crossings) = (0, 0);
        for u in us {
            let next = level.next(u, t, h);
            crossings += usize::from(next != level);
            level = next;
            let m = model(expected, u, t, h);
            model_crossings += usize::from(m != expected);
            expected = m;
            prop_assert_eq!(level, expected, "at u = {}", u);
        }
        prop_assert_eq!(crossings, model_crossings);
    }

    #[test]
    fn wobbling_inside_the_hysteresis_band_fires_once(
        (t, h) in thresholds().prop_filter("a band", |(_, h)| *h > 0.001),
        wobble in prop::collection::vec(0.0f64..1.0, 1..50),
        at_critical in any::<bool>(),
    ) {
        let threshold = if at_critical { t.critical } else { t.warn };
        let mut level = AlertLevel::Ok;
        let mut crossings = 0;
        for u in std::iter::once(threshold).chain(wobble.iter().map(|w| threshold - h + 1e-9 + w * (h - 2e-9))) {
            let next = level.next(u, t, h);
            crossings += usize::from(next != level);
            level = next;
        }
        prop_assert_eq!(crossings, 1, "one crossing into the band, none while it wobbles");
    }

    #[test]
    fn windows_hold_their_minutes(start in 0u16..1440, len in 1u16..1440, minute in 0u16..1440) {
        let end = (start + len) % 1440;
        let end = if end == 0 { 1440 } else { end };
        let w = HeavyWindow::new(start, end).unwrap();
        // independent model: walk the window minute by minute from its start
        let inside: BTreeSet<u16> = (0..len).map(|i| (start + i) % 1440).collect();
        prop_assert_eq!(w.contains_minute(minute), inside.contains(&minute));
        prop_assert_eq!(heavy_allowed(&[w], minute), inside.contains(&minute));
        prop_assert_eq!(heavy_allowed(&[], minute), false);
        let wait = w.minutes_until_open(minute);
        prop_assert!(w.contains_minute((minute + wait) % 1440));
        prop_assert!((0..wait).all(|d| !w.contains_minute((minute + d) % 1440)));
        // the text form round-trips
        prop_assert_eq!(w.to_string().parse::<HeavyWindow>().unwrap(), w);
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cost-meter-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn the_gate_admits_denies_and_audits_every_decision(
        start in 0u16..1440,
        len in 1u16..1439,
        calls in prop::collection::vec((0u64..86_400 * 3, 0usize..4, 0usize..3), 1..12),
    ) {
        let window = HeavyWindow::new(start, (start + len) % 1440).unwrap();
        let text = format!(
            "name: research\nowner: o\nmonthly_cpu_hours: 10\nmatch: {{ team: research }}\nheavy_windows: [\"{window}\"]\n"
        );
        let budgets = Arc::new(BudgetSet::new(vec![Budget::parse(&text, None).unwrap()]).unwrap());
        let dir = temp("gate");
        let gate = TierGate::new(budgets, AuditLog::new(dir.join("audit.csv"))).authorise("s3cret");
        let (mut denied, mut overridden) = (0, 0);
        for (t, tier, over) in calls {
            let tier = Tier::ALL[tier];
            let labels = Labels::new("research", "backtester").tier(tier);
            let now = UNIX_EPOCH + Duration::from_secs(1_790_000_000 + t);
            let o = match over {
                0 => None,
                1 => Some(Override::new("alice", "s3cret", "quarter close")),
                _ => Some(Override::new("mallory", "guess", "please")),
            };
            let minute = (((1_790_000_000 + t) % 86_400) / 60) as u16;
            let result = gate.admit("bt-1", &labels, now, o.as_ref());
            match (tier, window.contains_minute(minute), over) {
                (Tier::Heavy, false, 1) => {
                    overridden += 1;
                    prop_assert!(matches!(result, Ok(brownout_cost::budget::Admission::Overridden { .. })), "{:?}", result);
                }
                (Tier::Heavy, false, _) => {
                    denied += 1;
                    let e = result.unwrap_err();
                    prop_assert!(e.to_string().contains("refused"), "{}", e);
                }
                (Tier::Heavy, true, _) => prop_assert_eq!(result, Ok(brownout_cost::budget::Admission::InWindow)),
                _ => prop_assert_eq!(result, Ok(brownout_cost::budget::Admission::NotGated)),
            }
        }
        let text = std::fs::read_to_string(dir.join("audit.csv")).unwrap_or_default();
        let read = read_audit(&text);
        prop_assert!(read.bad_lines.is_empty(), "{:?}", read.bad_lines);
        prop_assert_eq!(read.entries.iter().filter(|e| e.event == AuditEvent::Denied).count(), denied);
        prop_assert_eq!(read.entries.iter().filter(|e| e.event == AuditEvent::Override).count(), overridden);
        prop_assert!(!text.contains("s3cret"), "tokens never reach the audit log");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
