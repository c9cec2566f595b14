//! Apportioned CPU ([`JobSpec::apportioned`]) against the kernel's figure for the same work, with CPU-bound
//! jobs and sleeping ones side by side on the same threads.
//!
//! The kernel's figure: each CPU-bound poll reads its thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`, the
//! kernel's per-thread accounting) around its work, and the runtime's threads' own CPU comes from
//! `/proc/thread-self/schedstat`. CPU is compared to CPU, never to wall time, so a busy machine (preemption,
//! steal time) moves both sides alike. Waiting uses paused time or a notification, never a real sleep.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use brownout_cost::{CpuMode, Job, JobSpec, Labels, Meter, thread_cpu_ns};

/// Burns `slices` slices of `slice` of this thread's CPU, yielding between them; returns the CPU the kernel
/// counted for the work (read around each slice, inside the poll).
async fn burn(slices: u32, slice: Duration, kernel: Arc<AtomicU64>) {
    for _ in 0..slices {
        let start = thread_cpu_ns();
        let mut x = 1u64;
        while thread_cpu_ns() - start < slice.as_nanos() as u64 {
            for _ in 0..200 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        kernel.fetch_add(thread_cpu_ns() - start, Relaxed);
        tokio::task::yield_now().await;
    }
}

/// Like [`burn`], but each slice first blocks its thread for `blocked` in a system call, off the CPU inside
/// the poll (as a preempted poll is): its TSC time is then far above its CPU time.
async fn block_then_burn(slices: u32, blocked: Duration, slice: Duration, kernel: Arc<AtomicU64>) {
    for _ in 0..slices {
        let start = thread_cpu_ns();
        std::thread::sleep(blocked);
        kernel.fetch_add(thread_cpu_ns() - start, Relaxed);
        burn(1, slice, kernel.clone()).await;
    }
}

/// The calling thread's CPU time from `/proc/thread-self/schedstat` (its first field, in nanoseconds).
fn schedstat_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat on Linux");
    text.split_whitespace().next().and_then(|f| f.parse().ok()).expect("a number")
}

fn spec(name: &str) -> JobSpec {
    JobSpec::new(name, Labels::new("platform", "apportion-test")).apportioned()
}

fn error(charged: u64, kernel: u64) -> f64 {
    (charged as f64 - kernel as f64).abs() / kernel as f64
}

/// With the runtime's park hooks ([`brownout_cost::on_thread_park`]), as a service sets them up: each job within
/// 2% of the kernel's figure for its polls.
#[test]
fn cpu_bound_blocked_and_sleeping_jobs_match_the_kernel_within_2_percent() {
    mixed_jobs(true, 0.02);
}

/// Without the hooks, a gap between polls longer than 50 µs is taken as a park: on a loaded machine, with a
/// debug build's slow runtime between polls, some of the runtime's own CPU goes to the jobs around it. The
/// jobs' sum still matches the thread's CPU within 2%; each job within 5%.
#[test]
fn without_park_hooks_the_jobs_still_match_the_kernel() {
    mixed_jobs(false, 0.05);
}

fn mixed_jobs(hooks: bool, per_job: f64) {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if hooks {
        builder.on_thread_park(brownout_cost::on_thread_park).on_thread_unpark(brownout_cost::on_thread_unpark);
    }
    let runtime = builder.enable_time().start_paused(true).build().expect("runtime");
    let meter = Meter::new();
    let cpu_jobs: Vec<(Job, Arc<AtomicU64>)> =
        (0..4).map(|i| (meter.start(spec(&format!("cpu-{i}"))), Arc::new(AtomicU64::new(0)))).collect();
    let sleepers: Vec<Job> = (0..3).map(|i| meter.start(spec(&format!("sleep-{i}")))).collect();

    // The first apportioned poll of the process calibrates the TSC: not in the measured span.
    let warm_up = meter.start(spec("warm-up"));
    runtime.block_on(warm_up.meter(async {}));
    warm_up.finish();
    let thread_before = schedstat_ns();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for (i, (job, kernel)) in cpu_jobs.iter().enumerate().take(3) {
            // 30, 45 and 60 ms in 3 ms slices, interleaved with each other and with the sleepers' polls.
            tasks.push(tokio::spawn(job.meter(burn(10 + 5 * i as u32, Duration::from_millis(3), kernel.clone()))));
        }
        // 10 × (2 ms blocked in a poll, then 4 ms of CPU): charged its CPU, not its 60 ms of TSC time.
        let (job, kernel) = &cpu_jobs[3];
        let (blocked, slice) = (Duration::from_millis(2), Duration::from_millis(4));
        tasks.push(tokio::spawn(job.meter(block_then_burn(10, blocked, slice, kernel.clone()))));
        for job in &sleepers {
            // A request waiting on a slow dependency: 100 ms of (paused) time in ten waits, little CPU.
            tasks.push(tokio::spawn(job.meter(async {
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    let thread_kernel = schedstat_ns() - thread_before;

    let mut charged_total = 0;
    for (job, kernel) in cpu_jobs {
        let kernel = kernel.load(Relaxed);
        let record = job.finish();
        assert_eq!(record.cpu_mode, CpuMode::Apportioned);
        let charged = (record.cpu_seconds * 1e9).round() as u64;
        charged_total += charged;
        eprintln!(
            "{}: charged {charged} ns, kernel {kernel} ns, {:.2}%",
            record.job_id,
            error(charged, kernel) * 100.0
        );
        assert!(error(charged, kernel) <= per_job, "{}: charged {charged} ns, kernel {kernel} ns", record.job_id);
    }
    for job in sleepers {
        let record = job.finish();
        let charged = (record.cpu_seconds * 1e9).round() as u64;
        charged_total += charged;
        eprintln!("{}: charged {charged} ns over {} s of (paused) waiting", record.job_id, record.wall_seconds);
        // Its polls cost microseconds; its 100 ms wait is not charged.
        assert!(charged < 2_000_000, "{}: a sleeping job charged {charged} ns", record.job_id);
    }
    // Everything the jobs were charged ran on this thread, which also ran the runtime itself.
    eprintln!(
        "jobs {charged_total} ns, thread {thread_kernel} ns, {:.2}%",
        error(charged_total, thread_kernel) * 100.0
    );
    assert!(charged_total <= thread_kernel, "jobs {charged_total} ns, thread {thread_kernel} ns");
    assert!(error(charged_total, thread_kernel) <= 0.02, "jobs {charged_total} ns, thread {thread_kernel} ns");
    // The meter's total agrees with the jobs' records once every interval is settled.
    let reconciled = (meter.reconcile().jobs_cpu_seconds * 1e9).round() as u64;
    assert!(reconciled.abs_diff(charged_total) <= charged_total / 100, "{reconciled} vs {charged_total}");
}

#[test]
fn jobs_hopping_between_two_workers_match_the_kernel_within_2_percent() {
    // Workers settle their intervals when they stop, so every share is in before the jobs finish.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_park(brownout_cost::on_thread_park)
        .on_thread_unpark(brownout_cost::on_thread_unpark)
        .on_thread_stop(brownout_cost::settle_thread)
        .build()
        .expect("runtime");
    let meter = Meter::new();
    let kernel = Arc::new(AtomicU64::new(0));
    let jobs: Vec<Job> = (0..4).map(|i| meter.start(spec(&format!("hop-{i}")))).collect();
    let waiter = meter.start(spec("waiter"));
    let done = Arc::new(tokio::sync::Notify::new());

    runtime.block_on(async {
        // A job that waits for the others without a timer: pending, no CPU.
        let waiting = {
            let done = done.clone();
            tokio::spawn(waiter.meter(async move { done.notified().await }))
        };
        let tasks: Vec<_> = jobs
            .iter()
            .map(|job| tokio::spawn(job.meter(burn(12, Duration::from_millis(2), kernel.clone()))))
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        done.notify_one();
        waiting.await.expect("waiter");
    });
    drop(runtime);

    let charged: u64 = jobs.into_iter().map(|j| (j.finish().cpu_seconds * 1e9).round() as u64).sum();
    let waited = (waiter.finish().cpu_seconds * 1e9).round() as u64;
    let kernel = kernel.load(Relaxed);
    eprintln!(
        "charged {charged} ns, kernel {kernel} ns, {:.2}%; the waiter {waited} ns",
        error(charged, kernel) * 100.0
    );
    assert!(error(charged, kernel) <= 0.02, "charged {charged} ns, kernel {kernel} ns");
    assert!(waited < 2_000_000, "the waiting job charged {waited} ns");
}
