//! A job that burns CPU on several threads — a tokio task that hops between workers, a blocking-pool task
//! and scoped threads — is charged within 5% of what the kernel says the process used meanwhile.
//! One test in this binary, so no other test's threads add to the process's figure.

use std::time::Duration;

use brownout_cost::{CpuMode, JobSpec, Labels, Meter, process_cpu_ns, thread_cpu_ns};

/// Spins until this thread has used `cpu` of CPU time.
fn burn(cpu: Duration) {
    let start = thread_cpu_ns();
    let mut x = 1u64;
    while thread_cpu_ns() - start < cpu.as_nanos() as u64 {
        for _ in 0..1000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

#[test]
fn a_job_across_threads_matches_the_kernel_within_5_percent() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let meter = Meter::new();
    let job = meter.start(JobSpec::new("burn-200ms", Labels::new("platform", "cpu-test")));

    let before = process_cpu_ns();
    runtime.block_on(async {
        // 80 ms in a task that yields between slices, so the scheduler may move it between workers.
        let task = job.spawn(async {
            for _ in 0..8 {
                burn(Duration::from_millis(10));
                tokio::task::yield_now().await;
            }
        });
        // 40 ms on the blocking pool, at the same time.
        let blocking = job.spawn_blocking(|| burn(Duration::from_millis(40)));
        task.await.unwrap();
        blocking.await.unwrap();
    });
    // 2 × 40 ms on scoped threads.
    job.scope(|s| {
        for _ in 0..2 {
            s.spawn(|| burn(Duration::from_millis(40)));
        }
    });
    let kernel = process_cpu_ns() - before;
    let record = job.finish();

    assert_eq!(record.cpu_mode, CpuMode::ThreadCpu);
    let charged = record.cpu_seconds * 1e9;
    assert!(charged >= 200e6, "at least the 200 ms burned: {charged} ns");
    let error = (charged - kernel as f64).abs() / kernel as f64;
    assert!(error <= 0.05, "charged {charged} ns, kernel {kernel} ns: {:.1}% apart", error * 100.0);
    eprintln!("charged {:.1} ms, kernel {:.1} ms, {:.2}% apart", charged / 1e6, kernel as f64 / 1e6, error * 100.0);
}
