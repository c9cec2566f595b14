//! The flag registry: precedence of sources, atomic handles, subscribers, metrics, reloads and triggers.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use brownout_degrade::flags::{FlagKind, FlagValue, FlagWatcher, Flags, Hysteresis, Source, Trigger};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("degrade-flags-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const FILE: &str = "flags:\n  quotes.source: { type: strategy, options: [live, cached, stale_ok], default: live }\n  api.shed_percent: { type: number, min: 0, max: 100, default: 0 }\n  execution.partial_fill_mode: { type: bool, default: false, value: true }\n";

fn flags(name: &str) -> (Flags, PathBuf) {
    let path = dir(name).join("flags.yaml");
    std::fs::write(&path, FILE).unwrap();
    (Flags::from_file(&path).unwrap(), path)
}

#[test]
fn handles_read_the_value_in_force() {
    let (flags, _) = flags("handles");
    let mode = flags.bool("execution.partial_fill_mode").unwrap();
    let source = flags.strategy("quotes.source").unwrap();
    let shed = flags.number("api.shed_percent").unwrap();
    assert!(mode.get(), "the file sets it");
    assert_eq!((source.get(), source.index()), ("live", 0));
    assert_eq!(shed.get(), 0.0);
    flags.set("quotes.source", "stale_ok").unwrap();
    flags.set("api.shed_percent", "30").unwrap();
    assert_eq!(source.get(), "stale_ok");
    assert_eq!(shed.get(), 30.0);
    assert!(flags.bool("quotes.source").is_err(), "a handle has the flag's type");
    assert!(flags.set("api.shed_percent", "300").is_err());
}

/// A person's setting in the file (`degrade set` writes `value:`) wins over a trigger; `degrade unset` hands
/// the flag back to the trigger.
#[test]
fn the_file_value_beats_a_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.yaml");
    let spec = "flags:\n  quotes.source: { type: strategy, options: [live, cached, stale_ok], default: live";
    std::fs::write(&path, format!("{spec} }}\n")).unwrap();
    let flags = Flags::from_file(&path).unwrap();
    flags.set_trigger("quotes.source", Some(FlagValue::Strategy(1)), "error_rate").unwrap();
    assert_eq!(flags.get("quotes.source").unwrap(), ("cached".to_owned(), Source::Trigger("error_rate".into())));
    std::fs::write(&path, format!("{spec}, value: live }}\n")).unwrap();
    flags.load_file(&path).unwrap();
    assert_eq!(flags.get("quotes.source").unwrap(), ("live".to_owned(), Source::File), "the manual setting wins");
    flags.set_trigger("quotes.source", Some(FlagValue::Strategy(2)), "p95").unwrap();
    assert_eq!(flags.get("quotes.source").unwrap().0, "live", "and stays while triggers fire");
    std::fs::write(&path, format!("{spec} }}\n")).unwrap();
    flags.load_file(&path).unwrap();
    assert_eq!(flags.get("quotes.source").unwrap(), ("stale_ok".to_owned(), Source::Trigger("p95".into())));
}

#[test]
fn overrides_beat_triggers_which_beat_the_default() {
    let (flags, _) = flags("precedence");
    let source = flags.strategy("quotes.source").unwrap();
    flags.set_trigger("quotes.source", Some(FlagValue::Strategy(1)), "error_rate").unwrap();
    assert_eq!(flags.get("quotes.source").unwrap(), ("cached".to_owned(), Source::Trigger("error_rate".into())));
    flags.set("quotes.source", "live").unwrap();
    assert_eq!(flags.get("quotes.source").unwrap(), ("live".to_owned(), Source::Override));
    flags.set_trigger("quotes.source", None, "error_rate").unwrap();
    flags.set_trigger("quotes.source", Some(FlagValue::Strategy(2)), "p95").unwrap();
    assert_eq!(source.get(), "live", "a manual setting always wins over a trigger");
    flags.unset("quotes.source").unwrap();
    assert_eq!(flags.get("quotes.source").unwrap(), ("stale_ok".to_owned(), Source::Trigger("p95".into())));
    flags.set_trigger("quotes.source", None, "p95").unwrap();
    assert_eq!(flags.get("quotes.source").unwrap(), ("live".to_owned(), Source::Default));
}

#[test]
fn subscribers_and_the_gauge_see_each_change() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let (flags, _) = flags("subscribers");
        let (tx, rx) = mpsc::channel();
        flags.subscribe(move |change| tx.send(change.clone()).unwrap());
        flags.set("api.shed_percent", "40").unwrap();
        flags.set("api.shed_percent", "40").unwrap(); // no change, no event
        flags.unset("api.shed_percent").unwrap();
        let changes: Vec<_> = rx.try_iter().collect();
        assert_eq!(changes.len(), 2);
        assert_eq!((changes[0].new.as_str(), changes[0].degraded), ("40", true));
        assert_eq!((changes[1].new.as_str(), changes[1].degraded), ("0", false));
        let gauges: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(k, ..)| k.key().name() == "degrade_flag")
            .filter(|(k, ..)| k.key().labels().any(|l| l.value() == "execution.partial_fill_mode"))
            .map(|(_, _, _, v)| v)
            .collect();
        assert_eq!(gauges, vec![DebugValue::Gauge(1.0.into())]);
    });
}

#[test]
fn a_bad_file_keeps_the_last_good_flags() {
    let (flags, path) = flags("bad-file");
    let shed = flags.number("api.shed_percent").unwrap();
    std::fs::write(&path, FILE.replace("default: 0 }", "default: 0, value: 150 }")).unwrap();
    let err = flags.load_file(&path).unwrap_err();
    assert_eq!(err.field(), "flags.api.shed_percent.value");
    assert_eq!(err.file(), Some(path.as_path()));
    assert_eq!(shed.get(), 0.0);
    assert!(flags.bool("execution.partial_fill_mode").unwrap().get(), "old file values stay");
    std::fs::write(&path, FILE.replace("type: bool, default: false, value: true", "type: number, default: 1")).unwrap();
    assert!(flags.load_file(&path).unwrap_err().reason().contains("cannot change"));
}

#[test]
fn the_watcher_reloads_a_file_replaced_by_rename() {
    let (flags, path) = flags("watch");
    let shed = flags.number("api.shed_percent").unwrap();
    let (tx, rx) = mpsc::channel();
    flags.subscribe(move |change| {
        let _ = tx.send(change.clone());
    });
    let _watcher = FlagWatcher::start(&flags, &path).unwrap();
    // As an editor or a ConfigMap does: write a new file beside, then rename it over the old one.
    let next = path.with_extension("yaml.new");
    std::fs::write(&next, FILE.replace("default: 0 }", "default: 0, value: 25 }")).unwrap();
    std::fs::rename(&next, &path).unwrap();
    let change = rx.recv_timeout(Duration::from_secs(1)).expect("reloaded within 1 s of the change");
    assert_eq!((change.flag.as_ref(), change.new.as_str(), &change.source), ("api.shed_percent", "25", &Source::File));
    assert_eq!(shed.get(), 25.0);
    // An invalid replacement keeps the last good value.
    std::fs::write(&next, "flags: [").unwrap();
    std::fs::rename(&next, &path).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "no change from a bad file");
    assert_eq!(shed.get(), 25.0);
}

#[test]
fn triggers_flip_with_hysteresis_and_hold() {
    let (flags, _) = flags("trigger");
    let mode = flags.bool("execution.partial_fill_mode").unwrap();
    flags.set("execution.partial_fill_mode", "false").unwrap();
    flags.unset("execution.partial_fill_mode").unwrap();
    flags.define("quotes.cached_only", FlagKind::Bool, "false").unwrap();
    let cached_only = flags.bool("quotes.cached_only").unwrap();
    let switch = Hysteresis::new(0.05, 0.01, Duration::from_secs(10)).unwrap();
    let mut trigger = Trigger::new("error_rate", "quotes.cached_only", FlagValue::Bool(true), switch);
    let t0 = Instant::now();
    assert_eq!(trigger.observe(&flags, 0.02, t0).unwrap(), None);
    assert_eq!(trigger.observe(&flags, 0.08, t0).unwrap(), Some(true));
    assert!(cached_only.get());
    assert_eq!(trigger.observe(&flags, 0.0, t0 + Duration::from_secs(5)).unwrap(), None, "held");
    assert_eq!(trigger.observe(&flags, 0.03, t0 + Duration::from_secs(11)).unwrap(), None, "between thresholds");
    assert_eq!(trigger.observe(&flags, 0.0, t0 + Duration::from_secs(12)).unwrap(), Some(false));
    assert!(!cached_only.get());
    assert!(mode.get(), "other flags untouched");
    assert!(Hysteresis::new(0.01, 0.05, Duration::ZERO).is_err());
}

mod properties {
    use super::*;
    use brownout_degrade::flags::edit::set_value;
    use brownout_degrade::flags::{FlagFile, FlagKind};
    use proptest::prelude::*;

    proptest! {
        /// Several triggers on one number flag, against a reference: the value in force is the on trigger's
        /// furthest from the default (the later one on a tie), or the default when none is on; a trigger
        /// turning off never takes another's value with it.
        #[test]
        fn the_strongest_trigger_holds_a_number_flag(
            steps in proptest::collection::vec((0usize..3, proptest::option::of(0u32..=100)), 1..60),
        ) {
            let (flags, _) = flags("strongest");
            let names = ["cpu", "budget", "memory"];
            let mut on: Vec<(usize, u32)> = Vec::new();
            for (who, value) in steps {
                flags.set_trigger("api.shed_percent", value.map(|v| FlagValue::Number(f64::from(v))), names[who]).unwrap();
                on.retain(|(w, _)| *w != who);
                if let Some(v) = value {
                    on.push((who, v));
                }
                let mut best: Option<(usize, u32)> = None;
                for &(w, v) in &on {
                    if best.is_none_or(|(_, b)| v >= b) {
                        best = Some((w, v));
                    }
                }
                let (value, source) = flags.get("api.shed_percent").unwrap();
                match best {
                    Some((w, v)) => {
                        prop_assert_eq!(value, v.to_string());
                        prop_assert_eq!(source, Source::Trigger(names[w].into()));
                    }
                    None => prop_assert_eq!((value, source), ("0".to_owned(), Source::Default)),
                }
            }
        }

        /// Hysteresis against a reference: it flips only on crossing the active threshold, never within the
        /// hold time, and alternates on/off.
        #[test]
        fn hysteresis_flips_only_across_thresholds(
            steps in proptest::collection::vec((0u64..5_000, -1.0f64..2.0), 1..200),
            on_above in 0.2f64..1.0,
            gap in 0.0f64..0.2,
            hold_ms in 0u64..3_000,
        ) {
            let off_below = on_above - gap;
            let hold = Duration::from_millis(hold_ms);
            let mut switch = Hysteresis::new(on_above, off_below, hold).unwrap();
            let t0 = Instant::now();
            let mut now = t0;
            let mut last_flip: Option<Instant> = None;
            let mut on = false;
            for (dt, signal) in steps {
                now += Duration::from_millis(dt);
                let flipped = switch.observe(signal, now);
                let held = last_flip.is_some_and(|at| now - at < hold);
                let expected = if held { None } else if on && signal < off_below { Some(false) }
                    else if !on && signal > on_above { Some(true) } else { None };
                prop_assert_eq!(flipped, expected);
                if let Some(state) = flipped {
                    on = state;
                    last_flip = Some(now);
                }
                prop_assert_eq!(switch.is_on(), on);
            }
        }

        /// Any text as a value: parsed or refused, never a panic; a parsed value formats back to itself.
        #[test]
        fn values_parse_or_refuse(text in "\\PC{0,20}") {
            let kinds = [
                FlagKind::Bool,
                FlagKind::Strategy(vec!["live".into(), "cached".into()].into()),
                FlagKind::Number { min: -10.0, max: 10.0 },
            ];
            for kind in kinds {
                if let Ok(v) = kind.parse(&text) {
                    prop_assert_eq!(kind.parse(&kind.format(v)), Ok(v));
                }
            }
        }

        /// Any flag file text: parsed or refused, never a panic.
        #[test]
        fn flag_files_parse_or_refuse(text in "\\PC{0,300}") {
            let _ = FlagFile::parse(&text, None);
        }

        /// Setting then unsetting a value, in either layout, gives back the original file byte for byte, and
        /// the edited file says what was set.
        #[test]
        fn set_then_unset_is_the_identity(value in 0u32..100, flow in any::<bool>(), comment in "[a-z ]{0,20}") {
            let text = if flow {
                format!("# {comment}\nflags:\n  a.b: {{ type: number, min: 0, max: 100, default: 0 }}  # {comment}\n  c.d: {{ type: bool, default: true }}\n")
            } else {
                format!("# {comment}\nflags:\n  a.b:\n    # {comment}\n    type: number\n    min: 0\n    max: 100\n    default: 0\n  c.d:\n    type: bool\n    default: true\n")
            };
            let set = set_value(&text, "a.b", Some(&value.to_string())).unwrap();
            let parsed = FlagFile::parse(&set, None).unwrap();
            prop_assert_eq!(parsed.flags["a.b"].value, Some(FlagValue::Number(f64::from(value))));
            prop_assert_eq!(parsed.flags["c.d"].value, None);
            prop_assert_eq!(set_value(&set, "a.b", None).unwrap(), text);
        }
    }
}

#[test]
fn a_strategy_flag_drives_a_breaker_forced_state() {
    use brownout_degrade::breaker::{BreakerConfig, CircuitBreaker, ForcedState, ManualClock};
    use std::sync::Arc;
    let flags = Flags::new();
    let states = FlagKind::Strategy(vec!["none".into(), "forced_open".into(), "metrics_only".into()].into());
    flags.define("quotes.breaker", states, "none").unwrap();
    let breaker = Arc::new(CircuitBreaker::new("quotes", BreakerConfig::default(), ManualClock::new()).unwrap());
    brownout_degrade::force_from_flag(&flags, "quotes.breaker", breaker.clone()).unwrap();
    assert!(breaker.try_acquire().is_ok());
    flags.set("quotes.breaker", "forced_open").unwrap();
    assert_eq!(breaker.forced(), ForcedState::ForcedOpen);
    assert!(breaker.try_acquire().is_err(), "isolated by the flag");
    flags.unset("quotes.breaker").unwrap();
    assert_eq!(breaker.forced(), ForcedState::None);
    assert!(breaker.try_acquire().is_ok());

    let flags = Flags::new();
    flags.define("x.y", FlagKind::Strategy(vec!["none".into(), "sideways".into()].into()), "none").unwrap();
    let err = brownout_degrade::force_from_flag(&flags, "x.y", breaker).unwrap_err();
    assert!(err.reason().contains("sideways"), "{err}");
}
