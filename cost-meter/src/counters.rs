//! The three per-label-set counters a finished job updates, with their handles cached per thread: looking
//! a labelled counter up in the recorder allocates its key and takes the registry's lock, which at request
//! rates cost more than the rest of a job's bookkeeping.

use std::cell::RefCell;

use metrics::{Counter, Label};

use crate::Labels;
use crate::meter::{CPU_NANOSECONDS_TOTAL, JOBS_TOTAL, MEMORY_BYTE_SECONDS_TOTAL};

/// The handles of one meter's counters for one label set.
pub(crate) struct JobCounters {
    pub(crate) cpu_nanoseconds: Counter,
    pub(crate) memory_byte_seconds: Counter,
    pub(crate) jobs: Counter,
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
}

/// How many label sets each thread keeps handles for (most services have a handful).
const CACHED: usize = 16;

struct Entry {
    meter: u64,
    labels: Labels,
    counters: JobCounters,
}

thread_local! {
    static CACHE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with the counters of meter `meter` for `labels`: from this thread's cache, or registered with
/// the recorder installed now (so install the recorder before the first job, as for every metric handle).
pub(crate) fn with_counters(meter: u64, labels: &Labels, f: impl FnOnce(&JobCounters)) {
    let mut f = Some(f);
    let _ = CACHE.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return };
        let index = match cache.iter().position(|e| e.meter == meter && e.labels == *labels) {
            Some(index) => index,
            None => {
                if cache.len() == CACHED {
                    cache.remove(0);
                }
                cache.push(Entry { meter, labels: labels.clone(), counters: JobCounters::register(labels) });
                cache.len() - 1
            }
        };
        if let Some(f) = f.take() {
            f(&cache[index].counters);
        }
    });
    // A thread being torn down, or a recorder that finishes a job while updating a counter, has no cache.
    if let Some(f) = f {
        f(&JobCounters::register(labels));
    }
}
