//! Jobs without the allocator: CPU charging and nesting, the reservation fallback, records, metrics and
//! reconciliation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brownout_cost::{
    CpuMode, JobSpec, JsonLinesFile, Labels, MemoryMode, MemorySink, Meter, Tier, read_records, thread_cpu_ns,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

fn burn(cpu: Duration) {
    let start = thread_cpu_ns();
    while thread_cpu_ns() - start < cpu.as_nanos() as u64 {
        std::hint::black_box(0u64);
    }
}

fn labels() -> Labels {
    Labels::new("research", "backtester").env("dev").strategy("momentum").tier(Tier::Batch)
}

#[test]
fn nested_jobs_charge_the_innermost_job_only() {
    let meter = Meter::new();
    let outer = meter.start(JobSpec::new("outer", labels()));
    let inner = meter.start(JobSpec::new("inner", labels()));
    outer.run(|| {
        burn(Duration::from_millis(10));
        inner.run(|| burn(Duration::from_millis(30)));
    });
    let (inner, outer) = (inner.finish(), outer.finish());
    assert!(inner.cpu_seconds >= 0.030, "inner got its 30 ms: {}", inner.cpu_seconds);
    assert!(outer.cpu_seconds >= 0.010, "outer got its 10 ms: {}", outer.cpu_seconds);
    assert!(outer.cpu_seconds < 0.030, "outer was not charged the inner job's 30 ms: {}", outer.cpu_seconds);
}

#[test]
fn without_the_allocator_memory_is_the_reservation_times_wall_time() {
    let meter = Meter::new();
    let job = meter.start(JobSpec::new("reserved", labels()).reserve(2_000_000_000));
    assert!(!job.meters_memory());
    std::thread::sleep(Duration::from_millis(20));
    let record = job.finish();
    assert_eq!(record.memory_mode, MemoryMode::Reservation);
    assert_eq!(record.memory_byte_seconds, 2e9 * record.wall_seconds);
    assert!(record.wall_seconds >= 0.020);
    assert_eq!(record.peak_bytes, 0);
}

#[test]
fn a_record_starts_and_ends_between_the_calendar_readings_around_its_job() {
    let unix = || SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64();
    let meter = Meter::new();
    let before = unix();
    let job = meter.start(JobSpec::new("timed", labels()));
    std::thread::sleep(Duration::from_millis(2));
    let record = job.finish();
    let after = unix();
    // The record's start is its end's calendar time minus its monotonic wall time: within the readings around
    // the job (1 ms of slack for the two clocks' rounding), and so is its end.
    let (start, end) = (record.started_at_unix, record.started_at_unix + record.wall_seconds);
    assert!(start >= before - 1e-3, "started at {start}, the job began at {before}");
    assert!(end <= after + 1e-3, "ended at {end}, the job was over at {after}");
    assert!(record.wall_seconds >= 0.002, "slept 2 ms: {}", record.wall_seconds);
    assert!(
        record.wall_seconds <= after - before + 1e-3,
        "{} s for a job of {} s",
        record.wall_seconds,
        after - before
    );
}

#[test]
fn wall_estimate_jobs_say_so_and_charge_wall_time() {
    let meter = Meter::new();
    let job = meter.start(JobSpec::new("request", labels()).wall_estimate());
    job.run(|| std::thread::sleep(Duration::from_millis(5)));
    assert_eq!(job.cpu_nanoseconds(), 0, "no CPU clock reads in wall-estimate mode");
    let record = job.finish();
    assert_eq!(record.cpu_mode, CpuMode::WallEstimate);
    assert_eq!(record.cpu_seconds, record.wall_seconds);
}

#[test]
fn records_go_to_every_sink_as_json_lines() {
    let dir = std::env::temp_dir().join(format!("cost-meter-records-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("records.jsonl");
    let _ = std::fs::remove_file(&path);
    let memory = MemorySink::new();
    let meter = Meter::builder().sink(JsonLinesFile::open(&path).unwrap()).sink(memory.clone()).build();
    for id in ["a", "b"] {
        let job = meter.start(JobSpec::new(id, labels()));
        job.run(|| burn(Duration::from_millis(1)));
        job.finish();
    }
    let (from_file, bad) = read_records(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    assert!(bad.is_empty());
    assert_eq!(from_file, memory.records());
    assert_eq!(from_file.iter().map(|r| r.job_id.to_string()).collect::<Vec<_>>(), ["a", "b"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn metrics_count_cpu_memory_and_jobs_by_label_without_the_job_id() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let record = metrics::with_local_recorder(&recorder, || {
        let meter = Meter::new();
        let job = meter.start(JobSpec::new("bt-7", labels()).reserve(1000));
        job.run(|| burn(Duration::from_millis(2)));
        job.finish()
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let value = |name: &str| {
        let (key, _, _, value) = snapshot.iter().find(|(k, ..)| k.key().name() == name).unwrap();
        let labels: Vec<_> = key.key().labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
        assert_eq!(
            labels,
            [
                ("env", "dev"),
                ("team", "research"),
                ("service", "backtester"),
                ("strategy", "momentum"),
                ("tier", "batch")
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        match value {
            DebugValue::Counter(v) => *v,
            other => panic!("{name} is a counter, got {other:?}"),
        }
    };
    assert_eq!(value("cost_meter_jobs_total"), 1);
    assert_eq!(value("cost_meter_cpu_nanoseconds_total"), (record.cpu_seconds * 1e9).round() as u64);
    assert!(value("cost_meter_cpu_nanoseconds_total") >= 2_000_000);
    assert_eq!(value("cost_meter_memory_byte_seconds_total"), record.memory_byte_seconds.round() as u64);
}

#[test]
fn each_label_set_counts_in_its_own_series_job_after_job() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let meter = Meter::new();
        for (team, n) in [("research", 3), ("risk", 2), ("research", 1)] {
            for i in 0..n {
                meter.start(JobSpec::new(format!("{team}-{i}"), Labels::new(team, "backtester"))).finish();
            }
        }
        // A second meter with the same labels counts into the same series, through its own handles.
        Meter::new().start(JobSpec::new("x", Labels::new("risk", "backtester"))).finish();
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let jobs = |team: &str| {
        snapshot
            .iter()
            .find(|(k, ..)| k.key().name() == "cost_meter_jobs_total" && k.key().labels().any(|l| l.value() == team))
            .map(|(.., v)| match v {
                DebugValue::Counter(n) => *n,
                other => panic!("{other:?}"),
            })
    };
    assert_eq!(jobs("research"), Some(4));
    assert_eq!(jobs("risk"), Some(3));
}

/// Per-request jobs are counted in per-thread batches; every one of them is in the counters once the thread
/// settles or parks (as a tokio worker does when it runs out of work).
#[test]
fn per_request_jobs_are_all_counted_once_the_thread_settles_or_parks() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let counted = || -> u64 {
        let snapshot = snapshotter.snapshot().into_vec();
        let jobs = snapshot.iter().find(|(k, ..)| k.key().name() == "cost_meter_jobs_total");
        jobs.map_or(0, |(.., v)| match v {
            DebugValue::Counter(n) => *n,
            other => panic!("{other:?}"),
        })
    };
    metrics::with_local_recorder(&recorder, || {
        let meter = Meter::new();
        let hooks: [(&str, fn()); 2] =
            [("settle_thread", brownout_cost::settle_thread), ("on_thread_park", brownout_cost::on_thread_park)];
        for (name, hook) in hooks {
            // Requests in quick succession: all but the first of a millisecond wait in the thread's batch.
            for i in 0..100 {
                meter.start(JobSpec::new(format!("r-{i}"), labels()).per_request().wall_estimate()).finish();
            }
            hook();
            assert_eq!(counted(), 100, "after {name}");
        }
    });
}

#[test]
fn reconciliation_accounts_for_running_and_finished_jobs() {
    let meter = Meter::new();
    let finished = meter.start(JobSpec::new("done", labels()));
    finished.run(|| burn(Duration::from_millis(20)));
    finished.finish();
    let running = meter.start(JobSpec::new("running", labels()));
    running.run(|| burn(Duration::from_millis(20)));
    let r = meter.reconcile();
    assert_eq!((r.running_jobs, r.finished_jobs), (1, 1));
    assert!(r.jobs_cpu_seconds >= 0.040, "{r:?}");
    assert!(r.process_cpu_seconds >= r.jobs_cpu_seconds - 1e-3, "the process used at least what jobs claim: {r:?}");
    assert!((r.idle_cpu_seconds - (r.process_cpu_seconds - r.jobs_cpu_seconds).max(0.0)).abs() < 1e-6);
    assert!(r.rss_bytes.unwrap() > 0);
    assert!(!r.memory_metered);
    running.finish();
}

#[test]
fn a_job_that_spends_the_budget_trips_its_guardrails_for_the_next_jobs() {
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    use brownout_cost::budget::{AlertLevel, Budget, BudgetMonitor, BudgetSet};
    use brownout_cost::guardrail::ConcurrencyLimit;
    use brownout_cost::{Launch, Refused};

    // A budget of 10 ms of CPU a month: one 20 ms job takes it past critical.
    let budget = Budget::parse(
        "name: tiny\nowner: research@example.com\nmonthly_cpu_hours: 0.0000027778\n\
         alert_thresholds: { warn: 0.7, critical: 0.9 }\nmatch: { team: research }\n\
         guardrails: { max_concurrency_at_critical: 1, freeze_adhoc_at_critical: true }\n",
        None,
    )
    .unwrap();
    let limit = ConcurrencyLimit::new(8);
    let monitor = BudgetMonitor::new(Arc::new(BudgetSet::new(vec![budget]).unwrap()), SystemTime::now())
        .with_limit(limit.clone());
    let freeze = monitor.adhoc_freeze();
    let monitor = Arc::new(Mutex::new(monitor));
    let sink = monitor.clone();
    let meter = Meter::builder()
        .sink(move |r: &brownout_cost::JobRecord| {
            sink.lock().unwrap().record(r, SystemTime::now()).unwrap();
        })
        .limit(limit.clone())
        .freeze(freeze)
        .build();

    let job = meter.try_start(JobSpec::new("bt-1", labels()), Launch::AdHoc).unwrap();
    job.run(|| burn(Duration::from_millis(20)));
    job.finish();

    assert_eq!(monitor.lock().unwrap().level("tiny"), AlertLevel::Critical);
    assert_eq!(limit.max(), 1, "the budget capped concurrency");
    let refused = meter.try_start(JobSpec::new("bt-2", labels()), Launch::AdHoc).unwrap_err();
    assert!(matches!(refused, Refused::Frozen(_)), "{refused}");
    assert!(refused.to_string().contains("frozen"), "{refused}");
    let scheduled = meter.try_start(JobSpec::new("nightly", labels()), Launch::Scheduled).unwrap();
    assert!(matches!(
        meter.try_start(JobSpec::new("nightly-2", labels()), Launch::Scheduled),
        Err(Refused::Concurrency { max: 1 })
    ));
    scheduled.finish();
}

/// The meter's totals are the sums of its finished jobs' records, whichever threads finished them; running and
/// abandoned jobs are not in them.
#[test]
fn totals_sum_the_records_of_finished_jobs_across_threads() {
    let sink = MemorySink::new();
    let meter = Meter::builder().sink(sink.clone()).build();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let meter = &meter;
            s.spawn(move || {
                for i in 0..5 {
                    let job = meter.start(JobSpec::new(format!("t{t}-{i}"), labels()).reserve(1_000 * (t + 1)));
                    job.run(|| burn(Duration::from_micros(200)));
                    job.finish();
                }
            });
        }
    });
    let running = meter.start(JobSpec::new("running", labels()));
    drop(meter.start(JobSpec::new("abandoned", labels())));
    let records = sink.records();
    let totals = meter.totals();
    assert_eq!(totals.jobs, 20);
    let cpu: f64 = records.iter().map(|r| r.cpu_seconds).sum();
    let memory: f64 = records.iter().map(|r| r.memory_byte_seconds).sum();
    assert!(cpu > 0.0 && memory > 0.0);
    // Each record is counted rounded: to the nanosecond and the byte-millisecond.
    assert!((totals.cpu_seconds - cpu).abs() <= 20.0 * 1e-9, "{} vs {cpu}", totals.cpu_seconds);
    assert!((totals.memory_byte_seconds - memory).abs() <= 20.0 * 1e-3, "{} vs {memory}", totals.memory_byte_seconds);
    assert_eq!(totals.allocator_jobs, 0, "no allocator in this test binary: memory is the reservation");
    running.finish();
    assert_eq!(meter.totals().jobs, 21);
}
