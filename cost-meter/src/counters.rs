//! The three per-label-set counters a finished job updates, with their handles cached per thread: looking
//! a labelled counter up in the recorder allocates its key and takes the registry's lock, which at request
//! rates cost more than the rest of a job's bookkeeping.
//!
//! Per-request jobs (`CostLayer`'s) are added up per thread and reach the counters in batches, as the
//! Prometheus client libraries do: a counter is one atomic cell shared by every worker, and each worker adding
//! to it at every request moves its cache line between the cores (measured: `cargo bench -p benches --bench
//! cost -- cost_layer/2_threads`). A thread adds its batch to the counters at the first job end a
//! [`FLUSH_NS`] or more after its last batch, when it parks or settles ([`on_thread_park`],
//! [`settle_thread`]), and when it exits; other jobs reach the counters at once.
//!
//! [`on_thread_park`]: crate::on_thread_park
//! [`settle_thread`]: crate::settle_thread

use std::cell::RefCell;

use brownout_foundation::slots::find_or_push;
use metrics::{Counter, Label};

use crate::Labels;
use crate::meter::{CPU_NANOSECONDS_TOTAL, JOBS_TOTAL, MEMORY_BYTE_SECONDS_TOTAL};

/// How long a thread may hold per-request jobs' counts before the next job end adds them to the counters,
/// in nanoseconds of the monotonic clock: a busy worker's counts are at most this late (an idle one's are
/// added when it parks).
pub(crate) const FLUSH_NS: u64 = 1_000_000;

/// What one finished job adds to its label set's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) cpu_nanoseconds: u64,
    pub(crate) memory_byte_seconds: u64,
    pub(crate) jobs: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        // Saturating: a batch holds about a millisecond of jobs, but a pathological figure must not panic.
        self.cpu_nanoseconds = self.cpu_nanoseconds.saturating_add(other.cpu_nanoseconds);
        self.memory_byte_seconds = self.memory_byte_seconds.saturating_add(other.memory_byte_seconds);
        self.jobs = self.jobs.saturating_add(other.jobs);
    }
}

/// The handles of one meter's counters for one label set.
struct JobCounters {
    cpu_nanoseconds: Counter,
    memory_byte_seconds: Counter,
    jobs: Counter,
}

impl JobCounters {
    fn register(labels: &Labels) -> Self {
        let labels: Vec<Label> = Labels::NAMES
            .iter()
            .map(|name| Label::new(*name, labels.get(name).unwrap_or_default().to_owned()))
            .collect();
        JobCounters {
            cpu_nanoseconds: metrics::counter!(CPU_NANOSECONDS_TOTAL, labels.clone()),
            memory_byte_seconds: metrics::counter!(MEMORY_BYTE_SECONDS_TOTAL, labels.clone()),
            jobs: metrics::counter!(JOBS_TOTAL, labels),
        }
    }

    /// Adds `counts` (adding zero would still write the counter's shared cell: a short request often holds
    /// no memory across a tick, and is charged none).
    fn add(&self, counts: Counts) {
        if counts.cpu_nanoseconds > 0 {
            self.cpu_nanoseconds.increment(counts.cpu_nanoseconds);
        }
        if counts.memory_byte_seconds > 0 {
            self.memory_byte_seconds.increment(counts.memory_byte_seconds);
        }
        if counts.jobs > 0 {
            self.jobs.increment(counts.jobs);
        }
    }
}

/// How many label sets each thread keeps handles for (most services have a handful).
const CACHED: usize = 16;

struct Entry {
    meter: u64,
    labels: Labels,
    counters: JobCounters,
    /// Counts not yet added to the counters.
    batch: Counts,
    /// When the batch was last added (monotonic nanoseconds; 0: never).
    flushed_at: u64,
}

impl Entry {
    fn flush(&mut self, now: u64) {
        self.counters.add(std::mem::take(&mut self.batch));
        self.flushed_at = now;
    }
}

impl Drop for Entry {
    /// A thread's batch reaches the counters when it exits, or when its entry is evicted.
    fn drop(&mut self) {
        self.counters.add(self.batch);
    }
}

thread_local! {
    static CACHE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Adds a finished job's `counts` to the counters of meter `meter` for `labels`, handles from this thread's
/// cache or registered with the recorder installed now (so install the recorder before the first job, as for
/// every metric handle). `batched` (a per-request job) adds them to the thread's batch, which reaches the
/// counters at the first job end [`FLUSH_NS`] after the last (`now`, monotonic nanoseconds) or at a park.
pub(crate) fn count(meter: u64, labels: &Labels, counts: Counts, batched: bool, now: u64) {
    let done = CACHE.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return false };
        let entry = find_or_push(
            &mut cache,
            CACHED,
            |e| e.meter == meter && e.labels == *labels,
            || Entry {
                meter,
                labels: labels.clone(),
                counters: JobCounters::register(labels),
                batch: Counts::default(),
                flushed_at: 0,
            },
        );
        entry.batch.add(counts);
        if !batched || now.saturating_sub(entry.flushed_at) >= FLUSH_NS {
            entry.flush(now);
        }
        true
    });
    // A thread being torn down, or a recorder that finishes a job while updating a counter, has no cache.
    if done != Ok(true) {
        JobCounters::register(labels).add(counts);
    }
}

/// Adds the calling thread's batches to their counters now.
pub(crate) fn flush_thread() {
    let _ = CACHE.try_with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            // The clock is read only when there is a batch to add: most parks find none.
            let mut now = None;
            for entry in cache.iter_mut().filter(|e| e.batch != Counts::default()) {
                entry.flush(*now.get_or_insert_with(brownout_foundation::process::monotonic_ns));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    const JOB: Counts = Counts { cpu_nanoseconds: 1_000, memory_byte_seconds: 0, jobs: 1 };

    /// The counters' totals as `(cpu_nanoseconds, jobs)` (a snapshot gives what was added since the last one).
    struct Totals {
        snapshotter: metrics_util::debugging::Snapshotter,
        seen: std::sync::Mutex<(u64, u64)>,
    }

    impl Totals {
        fn new(recorder: &DebuggingRecorder) -> Self {
            Totals { snapshotter: recorder.snapshotter(), seen: Default::default() }
        }

        fn read(&self) -> (u64, u64) {
            let snapshot = self.snapshotter.snapshot().into_vec();
            let added = |name: &str| -> u64 {
                snapshot
                    .iter()
                    .filter(|(k, ..)| k.key().name() == name)
                    .map(|(.., v)| match v {
                        DebugValue::Counter(n) => *n,
                        other => panic!("{name} is a counter, got {other:?}"),
                    })
                    .sum()
            };
            let mut seen = self.seen.lock().unwrap();
            *seen = (seen.0 + added(CPU_NANOSECONDS_TOTAL), seen.1 + added(JOBS_TOTAL));
            *seen
        }
    }

    /// A per-request job's counts wait in the thread's batch until a job ends a millisecond after the last
    /// batch, or the thread flushes; other jobs are counted at once.
    #[test]
    fn per_request_counts_reach_the_counters_in_batches() {
        let recorder = DebuggingRecorder::new();
        let totals = Totals::new(&recorder);
        let labels = Labels::new("trading", "quote-api");
        let t0 = 5_000_000_000;
        metrics::with_local_recorder(&recorder, || {
            // The first job after a quiet millisecond is counted at once.
            count(1, &labels, JOB, true, t0);
            assert_eq!(totals.read(), (1_000, 1));
            // Within the millisecond: batched.
            count(1, &labels, JOB, true, t0 + 10);
            count(1, &labels, JOB, true, t0 + FLUSH_NS - 1);
            assert_eq!(totals.read(), (1_000, 1));
            // A millisecond after the last batch: the batch and this job.
            count(1, &labels, JOB, true, t0 + FLUSH_NS);
            assert_eq!(totals.read(), (4_000, 4));
            count(1, &labels, JOB, true, t0 + FLUSH_NS + 1);
            assert_eq!(totals.read(), (4_000, 4));
            // A job that is not per request takes the batch with it.
            count(1, &labels, JOB, false, t0 + FLUSH_NS + 2);
            assert_eq!(totals.read(), (6_000, 6));
            count(1, &labels, JOB, true, t0 + FLUSH_NS + 3);
            flush_thread();
            assert_eq!(totals.read(), (7_000, 7));
        });
    }

    /// A thread's batch reaches the counters when the thread exits.
    #[test]
    fn a_threads_batch_is_counted_when_it_exits() {
        let recorder = DebuggingRecorder::new();
        let totals = Totals::new(&recorder);
        std::thread::scope(|s| {
            s.spawn(|| {
                metrics::with_local_recorder(&recorder, || {
                    let labels = Labels::new("trading", "quote-api");
                    for i in 0..10 {
                        count(2, &labels, JOB, true, 7_000_000_000 + i);
                    }
                });
                assert_eq!(totals.read(), (1_000, 1), "only the first job is counted before the exit");
            })
            // Joined: the scope alone returns before the thread's locals are dropped.
            .join()
            .unwrap();
        });
        assert_eq!(totals.read(), (10_000, 10));
    }
}
