//! The budget monitor: alerts once per crossing, guardrails at critical, restart from the checkpoint, metrics.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brownout_cost::budget::{
    AlertEvent, AlertLevel, Budget, BudgetMonitor, BudgetSet, CheckpointError, LogSink, MetricsSink, Month,
};
use brownout_cost::guardrail::ConcurrencyLimit;
use brownout_cost::{CpuMode, JobRecord, Labels, MemoryMode, Tier};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cost-meter-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 2026-11-10T00:00:00Z
fn nov(day_offset: f64) -> f64 {
    Month::new(2026, 11).unwrap().start_unix() as f64 + (9.0 + day_offset) * 86_400.0
}

fn at(unix: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(unix)
}

fn job(labels: Labels, cpu_hours: f64, gb_hours: f64, finished: f64) -> JobRecord {
    JobRecord::new("j", labels, finished - 10.0, 10.0)
        .cpu(cpu_hours * 3600.0, CpuMode::ThreadCpu)
        .memory(gb_hours * 3.6e12, MemoryMode::Allocator)
}

fn budgets() -> Arc<BudgetSet> {
    let research = Budget::parse(
        "name: research\nowner: research@example.com\nmonthly_cpu_hours: 100\nmonthly_memory_gb_hours: 1000\n\
         match: { team: research }\nguardrails: { max_concurrency_at_critical: 2, freeze_adhoc_at_critical: true }\n",
        None,
    )
    .unwrap();
    let all = Budget::parse("name: everything\nowner: finance@example.com\nmonthly_cpu_hours: 10000\n", None).unwrap();
    Arc::new(BudgetSet::new(vec![research, all]).unwrap())
}

fn research() -> Labels {
    Labels::new("research", "backtester").env("prod").tier(Tier::Batch)
}

#[test]
fn each_crossing_fires_once_and_guardrails_follow_critical() {
    let seen = Arc::new(Mutex::new(Vec::<AlertEvent>::new()));
    let sink = {
        let seen = Arc::clone(&seen);
        move |e: &AlertEvent| seen.lock().unwrap().push(e.clone())
    };
    let limit = ConcurrencyLimit::new(8);
    let mut m =
        BudgetMonitor::new(budgets(), at(nov(0.0))).with_limit(limit.clone()).with_sink(sink).with_sink(LogSink);
    let t = nov(0.0);
    assert!(m.record(&job(research(), 50.0, 0.0, t), at(t)).unwrap().is_empty());
    let e = m.record(&job(research(), 25.0, 0.0, t), at(t)).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].budget.as_str(), e[0].from, e[0].to), ("research", AlertLevel::Ok, AlertLevel::Warn));
    assert!(m.record(&job(research(), 5.0, 0.0, t), at(t)).unwrap().is_empty(), "80%: still warn, no new alert");
    // another team's job changes nothing for `research`
    assert!(m.record(&job(Labels::new("ops", "x"), 50.0, 0.0, t), at(t)).unwrap().is_empty());
    assert_eq!(m.usage("research").cpu_hours, 80.0);
    assert_eq!(m.usage("everything").cpu_hours, 130.0);
    assert!(m.check_adhoc().is_ok());
    // memory alone can push it critical: 950 of 1000 GB-hours
    let e = m.record(&job(research(), 0.0, 950.0, t), at(t)).unwrap();
    assert_eq!((e[0].from, e[0].to), (AlertLevel::Warn, AlertLevel::Critical));
    assert_eq!(limit.max(), 2, "the concurrency limit is lowered at critical");
    let frozen = m.check_adhoc().unwrap_err().to_string();
    assert!(frozen.contains("budget `research` is critical") && frozen.contains("memory 95.0%"), "{frozen}");
    assert_eq!(m.level("research"), AlertLevel::Critical);
    let f = m.forecast("research", at(t)).unwrap();
    assert!(f.projected_utilization.max() > 1.0 && f.exhausted_at_unix.is_some(), "{f:?}");
    // the month ends: usage restarts, the alert clears once, guardrails lift
    let dec = Month::new(2026, 12).unwrap().start_unix() as f64 + 60.0;
    let e = m.tick(at(dec)).unwrap();
    assert_eq!(e.iter().map(|e| (e.budget.as_str(), e.to)).collect::<Vec<_>>(), [("research", AlertLevel::Ok)]);
    assert_eq!(limit.max(), 8);
    assert!(m.check_adhoc().is_ok());
    assert_eq!(m.usage("research").cpu_hours, 0.0);
    // a late record of November is not charged to December
    assert!(m.record(&job(research(), 99.0, 0.0, t), at(dec)).unwrap().is_empty());
    assert_eq!(m.usage("research").cpu_hours, 0.0);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn a_restart_restores_usage_levels_and_guardrails_without_firing_again() {
    let dir = temp("monitor-restart");
    let path = dir.join("checkpoint.json");
    let t = nov(1.0);
    let mut m = BudgetMonitor::open(budgets(), &path, at(t)).unwrap();
    m.record(&job(research(), 95.0, 10.0, t), at(t)).unwrap();
    assert_eq!(m.level("research"), AlertLevel::Critical);
    drop(m);
    let fired = Arc::new(Mutex::new(0));
    let count = {
        let fired = Arc::clone(&fired);
        move |_: &AlertEvent| *fired.lock().unwrap() += 1
    };
    let limit = ConcurrencyLimit::new(8);
    let mut m = BudgetMonitor::open(budgets(), &path, at(t + 60.0)).unwrap().with_limit(limit.clone()).with_sink(count);
    assert_eq!(m.usage("research").cpu_hours, 95.0);
    assert_eq!(m.usage("research").memory_gb_hours, 10.0);
    assert_eq!(m.level("research"), AlertLevel::Critical);
    assert!(m.check_adhoc().is_err(), "the freeze survives the restart");
    m.record(&job(research(), 1.0, 0.0, t + 60.0), at(t + 60.0)).unwrap();
    assert_eq!(*fired.lock().unwrap(), 0, "still critical: nothing fired again");
    assert_eq!(limit.max(), 2, "the cap is re-applied to the limit handed in after the restart");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_checkpoint_is_reported_and_kept_aside() {
    let dir = temp("monitor-corrupt");
    let path = dir.join("checkpoint.json");
    std::fs::write(&path, "{\"version\":1,\"month\":\"2026-11\",\"budg").unwrap();
    let err = BudgetMonitor::open(budgets(), &path, at(nov(0.0))).unwrap_err();
    let CheckpointError::Corrupt { moved_to: Some(aside), .. } = &err else { panic!("{err}") };
    assert!(aside.exists() && !path.exists());
    assert!(err.to_string().contains("kept aside"), "{err}");
    // opening again is the explicit choice to start the month empty
    let m = BudgetMonitor::open(budgets(), &path, at(nov(0.0))).unwrap();
    assert_eq!(m.usage("research").cpu_hours, 0.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn utilisation_and_alert_state_are_gauges() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let t = nov(0.0);
        let mut m = BudgetMonitor::new(budgets(), at(t)).with_sink(MetricsSink::new());
        m.record(&job(research(), 75.0, 250.0, t), at(t)).unwrap();
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let gauge = |name: &str, labels: &[(&str, &str)]| {
        snapshot.iter().find_map(|(key, _, _, value)| {
            let k = key.key();
            let hit = k.name() == name
                && k.labels().count() == labels.len()
                && labels.iter().all(|(n, v)| k.labels().any(|l| l.key() == *n && l.value() == *v));
            match (hit, value) {
                (true, DebugValue::Gauge(g)) => Some(g.into_inner()),
                _ => None,
            }
        })
    };
    assert_eq!(gauge("budget_utilization_ratio", &[("budget", "research"), ("resource", "cpu")]), Some(0.75));
    assert_eq!(gauge("budget_utilization_ratio", &[("budget", "research"), ("resource", "memory")]), Some(0.25));
    assert_eq!(gauge("budget_alert_state", &[("budget", "research")]), Some(1.0));
    assert_eq!(gauge("budget_alert_state", &[("budget", "everything")]), Some(0.0));
    assert_eq!(gauge("budget_utilization_ratio", &[("budget", "everything"), ("resource", "memory")]), None);
}

/// The research budget's CPU-hours in the checkpoint at `path`, read by a fresh monitor at `now`.
fn research_on_disk(path: &std::path::Path, now: f64) -> f64 {
    BudgetMonitor::open(budgets(), path, at(now)).unwrap().usage("research").cpu_hours
}

#[test]
fn save_every_bounds_the_checkpoint_writes_but_a_crossing_saves_at_once() {
    let dir = temp("save-every");
    let path = dir.join("checkpoint.json");
    let on_disk = |now: f64| research_on_disk(&path, now);
    let t = nov(0.0);
    let mut m = BudgetMonitor::open(budgets(), &path, at(t)).unwrap().save_every(Duration::from_secs(60));
    m.record(&job(research(), 10.0, 0.0, t), at(t)).unwrap();
    assert_eq!(on_disk(t), 10.0, "the first record saves");
    m.record(&job(research(), 10.0, 0.0, t + 1.0), at(t + 1.0)).unwrap();
    m.record(&job(research(), 10.0, 0.0, t + 2.0), at(t + 2.0)).unwrap();
    assert_eq!(m.usage("research").cpu_hours, 30.0);
    assert_eq!(on_disk(t + 2.0), 10.0, "within the interval nothing is written");
    // 30 → 75 CPU-hours of 100: past warn (70%), a crossing: saved at once.
    let events = m.record(&job(research(), 45.0, 0.0, t + 3.0), at(t + 3.0)).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(on_disk(t + 3.0), 75.0);
    m.record(&job(research(), 1.0, 0.0, t + 10.0), at(t + 10.0)).unwrap();
    assert_eq!(on_disk(t + 10.0), 75.0);
    m.record(&job(research(), 1.0, 0.0, t + 63.0), at(t + 63.0)).unwrap();
    assert_eq!(on_disk(t + 63.0), 77.0, "the interval has passed since the last save");
    m.save(at(t + 64.0)).unwrap();
}

#[test]
fn flush_saves_the_records_save_every_held_back_and_only_those() {
    let dir = temp("flush");
    let path = dir.join("checkpoint.json");
    let on_disk = |now: f64| research_on_disk(&path, now);
    let t = nov(0.0);
    let mut m = BudgetMonitor::open(budgets(), &path, at(t)).unwrap().save_every(Duration::from_secs(60));
    assert!(!m.flush(at(t)).unwrap(), "nothing charged: nothing to write");
    assert!(!path.exists());
    m.record(&job(research(), 10.0, 0.0, t), at(t)).unwrap();
    assert!(!m.flush(at(t)).unwrap(), "the record saved itself");
    m.record(&job(research(), 5.0, 0.0, t + 1.0), at(t + 1.0)).unwrap();
    assert_eq!(on_disk(t + 1.0), 10.0, "held back by save_every");
    // A quiet spell: no record comes to save it, the timer's flush does.
    assert!(m.flush(at(t + 2.0)).unwrap());
    assert_eq!(on_disk(t + 2.0), 15.0);
    assert!(!m.flush(at(t + 3.0)).unwrap(), "saved once, not at every tick");
    let _ = std::fs::remove_dir_all(&dir);
}
