//! BudgetFeed: per-thread batches charge the monitor what per-record charging does, alerts fire at most one
//! tick late (at the first record after the tick, or at the timer's flush), and the checkpoint holds the
//! batched charges once flushed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use brownout_cost::budget::{AlertEvent, AlertLevel, Budget, BudgetFeed, BudgetMonitor, BudgetSet, Month};
use brownout_cost::{CpuMode, JobRecord, Labels, MemoryMode, Tier};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cost-meter-feed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 2026-11-10T00:00:00Z plus `s` seconds.
fn nov(s: f64) -> f64 {
    Month::new(2026, 11).unwrap().start_unix() as f64 + 9.0 * 86_400.0 + s
}

fn job(labels: Labels, cpu_hours: f64, finished: f64) -> JobRecord {
    JobRecord::new("j", labels, finished - 0.01, 0.01)
        .cpu(cpu_hours * 3600.0, CpuMode::Apportioned)
        .memory(cpu_hours * 1e12, MemoryMode::Allocator)
}

fn budgets() -> Arc<BudgetSet> {
    let parse = |yaml: &str| Budget::parse(yaml, None).unwrap();
    Arc::new(
        BudgetSet::new(vec![
            parse("name: research\nowner: r@example.com\nmonthly_cpu_hours: 100\nmatch: { team: research }\n"),
            parse("name: trading\nowner: t@example.com\nmonthly_cpu_hours: 100\nmonthly_memory_gb_hours: 50\nmatch: { team: trading }\n"),
            parse("name: batch\nowner: b@example.com\nmonthly_cpu_hours: 400\nmatch: { tier: batch }\n"),
            parse("name: everything\nowner: f@example.com\nmonthly_cpu_hours: 1000\n"),
        ])
        .unwrap(),
    )
}

fn at(unix: f64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(unix)
}

fn shared(m: BudgetMonitor) -> Arc<Mutex<BudgetMonitor>> {
    Arc::new(Mutex::new(m))
}

fn labels(i: usize) -> Labels {
    match i % 3 {
        0 => Labels::new("research", "backtester").tier(Tier::Batch),
        1 => Labels::new("trading", "quotes"),
        _ => Labels::new("ops", "cron").tier(Tier::Batch),
    }
}

#[test]
fn batches_from_two_threads_charge_what_records_one_by_one_do() {
    let t = nov(0.0);
    let one_by_one = shared(BudgetMonitor::new(budgets(), at(t)));
    let batched = shared(BudgetMonitor::new(budgets(), at(t)));
    // A tick longer than the run: nothing reaches the monitor before the timer's flush, except the first.
    let feed = BudgetFeed::new(&batched, Duration::from_secs(3600));
    let records: Vec<JobRecord> = (0..600).map(|i| job(labels(i), 0.1 + (i % 7) as f64 * 0.01, t + i as f64)).collect();
    std::thread::scope(|s| {
        for half in records.chunks(300) {
            let feed = feed.clone();
            s.spawn(move || half.iter().for_each(|r| feed.record(r)));
        }
    });
    for r in &records {
        one_by_one.lock().unwrap().record(r, at(t)).unwrap();
    }
    let before_flush = batched.lock().unwrap().usage("everything").cpu_hours;
    assert!(before_flush < 1.0, "only the first record was charged before the flush: {before_flush}");
    batched.lock().unwrap().flush(at(t + 600.0)).unwrap();

    let (a, b) = (one_by_one.lock().unwrap(), batched.lock().unwrap());
    for name in ["research", "trading", "batch", "everything"] {
        let (x, y) = (a.usage(name), b.usage(name));
        assert!((x.cpu_hours - y.cpu_hours).abs() <= 1e-9 * x.cpu_hours, "{name}: {x:?} vs {y:?}");
        assert!((x.memory_gb_hours - y.memory_gb_hours).abs() <= 1e-9 * x.memory_gb_hours.max(1e-9), "{name}");
        assert_eq!(a.level(name), b.level(name), "{name}");
    }
    assert!(b.usage("everything").cpu_hours > 60.0);
}

#[test]
fn an_alert_fires_at_most_one_tick_late() {
    let t = nov(0.0);
    let seen = Arc::new(Mutex::new(Vec::<AlertEvent>::new()));
    let sink = {
        let seen = Arc::clone(&seen);
        move |e: &AlertEvent| seen.lock().unwrap().push(e.clone())
    };
    let monitor = shared(BudgetMonitor::new(budgets(), at(t)).with_sink(sink));
    let feed = BudgetFeed::new(&monitor, Duration::from_secs(1));
    let research = labels(0);

    feed.record(&job(research.clone(), 10.0, t)); // the first record flushes: the tick starts here
    feed.record(&job(research.clone(), 75.0, t + 0.5)); // 85%: a crossing, batched
    assert!(seen.lock().unwrap().is_empty(), "no alert within the tick");
    assert_eq!(monitor.lock().unwrap().level("research"), AlertLevel::Ok);
    feed.record(&job(research.clone(), 0.1, t + 1.01)); // a tick after the flush: flushes
    let fired: Vec<_> = seen.lock().unwrap().iter().map(|e| (e.budget.clone(), e.to)).collect();
    assert_eq!(fired, [("research".to_string(), AlertLevel::Warn)]);

    // In a quiet spell, the timer's flush fires it.
    feed.record(&job(research.clone(), 10.0, t + 1.2)); // 95.1%: critical, batched
    assert_eq!(seen.lock().unwrap().len(), 1);
    monitor.lock().unwrap().flush(at(t + 2.2)).unwrap();
    assert_eq!(seen.lock().unwrap().last().map(|e| e.to), Some(AlertLevel::Critical));
    assert_eq!(seen.lock().unwrap().len(), 2, "each crossing fires once");
}

#[test]
fn the_checkpoint_holds_the_batches_once_flushed_and_a_finished_threads_batch_is_kept() {
    let dir = temp("checkpoint");
    let path = dir.join("checkpoint.json");
    let t = nov(0.0);
    let monitor = shared(BudgetMonitor::open(budgets(), &path, at(t)).unwrap().save_every(Duration::from_secs(60)));
    let feed = BudgetFeed::new(&monitor, Duration::from_secs(3600));
    feed.record(&job(labels(1), 1.0, t)); // flushed and saved at once (the first save)
    // Charged by a thread that then ends: its batch stays for the flush.
    std::thread::scope(|s| {
        s.spawn(|| (0..10).for_each(|i| feed.record(&job(labels(1), 2.0, t + 1.0 + i as f64))));
    });
    assert_eq!(monitor.lock().unwrap().usage("trading").cpu_hours, 1.0);
    assert!(monitor.lock().unwrap().flush(at(t + 20.0)).unwrap(), "the flush writes the batched charges");
    drop(monitor);

    let reopened = BudgetMonitor::open(budgets(), &path, at(t + 30.0)).unwrap();
    assert_eq!(reopened.usage("trading").cpu_hours, 21.0);
    assert_eq!(reopened.level("trading"), AlertLevel::Ok);
    assert!(reopened.usage("trading").memory_gb_hours > 5.0, "21 × 10¹² byte-seconds: 5.8 GB-hours");
    std::fs::remove_dir_all(&dir).unwrap();
}
