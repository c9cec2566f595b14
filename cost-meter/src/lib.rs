//! CPU-hour and memory-GB-hour metering per job span, budgets and guardrails for Brownout.
//!
//! A [`Meter`] starts [`Job`]s. A job's CPU time comes from the kernel's thread CPU clock: read around every
//! poll of its futures and every run of its closures and threads (exact), or, for
//! [`apportioned`](JobSpec::apportioned) jobs (`CostLayer`'s requests), read once per interval of about a
//! millisecond per thread and split over the polls that ran in it by their TSC time (within 2%, without a
//! system call per poll). Either way it follows a task that moves between threads; nested jobs charge the
//! innermost one. Its memory comes from the opt-in
//! [`CostAllocator`], which attributes each allocation's bytes to the job that made it and integrates live
//! bytes over time; without it, a job's declared reservation × its wall time stands in, and the record
//! says which. A finished job yields a [`JobRecord`] (one JSON line), metrics
//! (`cost_meter_cpu_nanoseconds_total`, `cost_meter_memory_byte_seconds_total`, `cost_meter_jobs_total`)
//! and `tracing` events (`job_started`, `job_completed`).
//!
//! ```
//! use brownout_cost::{JobSpec, Labels, MemorySink, Meter};
//!
//! let records = MemorySink::new();
//! let meter = Meter::builder().sink(records.clone()).build();
//! let job = meter.start(JobSpec::new("features-2026-11-26", Labels::new("research", "features")).reserve(1 << 30));
//! job.scope(|s| {
//!     for _ in 0..2 {
//!         s.spawn(|| (0..200_000u64).map(|x| x * x).sum::<u64>());
//!     }
//! });
//! let record = job.finish();
//! assert_eq!(records.records(), vec![record]);
//! ```
// Semver: a public struct whose fields are all public, and a public enum, is `#[non_exhaustive]`, so a new field
// or variant is not a breaking change; callers build a struct from a constructor, `Default` or its setters. An
// enum stays exhaustive only where a new variant must break its readers (an `allow` says why). Enforced by
// clippy in CI.
#![warn(clippy::exhaustive_structs, clippy::exhaustive_enums)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]
#![deny(unsafe_code)]

pub mod alloc;
mod apportion;
pub mod cache;
pub mod child;
mod counters;
mod future;
mod job;
mod job_id;
mod labels;
mod meter;
mod record;
mod section;
mod shard;
mod sink;
mod spare;

pub use alloc::CostAllocator;
// The kernel's clocks that cost figures come from (in `brownout_foundation::process`, re-exported here).
pub use brownout_foundation::process::{process_cpu_ns, rss_bytes, thread_cpu, thread_cpu_ns};
pub use future::Metered;
pub use job::{Job, JobScope, JobSpec};
pub use job_id::JobId;
pub use labels::{Label, Labels, Tier, UnknownTier};
pub use meter::{
    CPU_NANOSECONDS_TOTAL, JOBS_TOTAL, JobTotals, Launch, MEMORY_BYTE_SECONDS_TOTAL, Meter, MeterBuilder,
    Reconciliation, Refused,
};
pub use record::{BYTES_PER_GB, BadRecord, CpuMode, JobRecord, MemoryMode, gb_hours, read_records};
pub use section::{on_thread_park, on_thread_unpark, settle_thread};
pub use sink::{JsonLinesFile, MemorySink, RecordSink};

// Budgets (feature `budgets`, on by default): YAML budgets, the monitor, alerts, the tier gate, forecasts.
#[cfg(feature = "budgets")]
pub mod budget;
// The guardrails budgets apply at critical, usable on their own: a concurrency limit, a freeze of ad-hoc jobs.
pub mod guardrail;
// `cost-meter run --pushgateway`
pub mod push;
