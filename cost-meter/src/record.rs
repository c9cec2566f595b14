//! The record of a finished job: one JSON line each.

use std::io::{self, BufRead};

use serde::{Deserialize, Serialize};

use crate::{JobId, Labels};

/// How a record's CPU figure was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CpuMode {
    /// The kernel's per-thread CPU clock, read around every poll: exact, at two system calls per poll.
    ThreadCpu,
    /// The kernel's per-thread CPU clock read once per interval of about a millisecond per thread, the
    /// interval's CPU split over the polls that ran in it by their TSC time: within 2% of
    /// [`ThreadCpu`](Self::ThreadCpu), without a system call per poll. A job's last polls before it finishes
    /// are charged at their thread's last measured rate (see [`JobSpec::apportioned`](crate::JobSpec::apportioned)).
    Apportioned,
    /// Wall time of the span: an estimate (an upper bound when the job waits, a lower bound when it runs on
    /// several threads at once). Used for high-rate request spans where two clock reads per poll cost too much.
    WallEstimate,
    /// A command run by `cost-meter run`: the kernel's rusage of the child process (user + system time) from
    /// `wait4`, which includes every descendant the child or its descendants waited for (reaped); a
    /// descendant left running, or orphaned and reaped by another process, is not included.
    ChildRusage,
}

/// How a record's memory figure was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MemoryMode {
    /// Live bytes attributed by the cost-meter allocator, integrated over time.
    Allocator,
    /// No allocator installed: the job's declared reservation × its wall time.
    Reservation,
    /// A command run by `cost-meter run`: the resident set size of its process tree (the child and every
    /// descendant found under `/proc`), sampled at an interval and integrated over time. See
    /// [`child`](crate::child) for the sampling error.
    TreeRss,
}

/// One finished job, as written to the records file (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobRecord {
    /// The job's id (in records and logs only, never a metric label).
    pub job_id: JobId,
    /// The job's labels.
    pub labels: Labels,
    /// Start, in seconds since the Unix epoch (UTC): the end's calendar time, from the finishing thread's offset
    /// between the monotonic and calendar clocks (measured at most a second before), minus the wall time.
    pub started_at_unix: f64,
    /// Wall time from start to finish, in seconds.
    pub wall_seconds: f64,
    /// CPU time charged to the job, in seconds.
    pub cpu_seconds: f64,
    /// How `cpu_seconds` was measured.
    pub cpu_mode: CpuMode,
    /// Memory integrated over the job's life, in byte-seconds.
    pub memory_byte_seconds: f64,
    /// `memory_byte_seconds` in GB-hours (1 GB = 10⁹ bytes).
    pub memory_gb_hours: f64,
    /// The highest live byte count seen (0 in reservation mode).
    pub peak_bytes: u64,
    /// The memory the job declared it would use, in bytes (0 if none).
    pub reserved_bytes: u64,
    /// How the memory figures were measured.
    pub memory_mode: MemoryMode,
    /// The job's outputs came from the result cache: nothing ran, nothing is charged (`cpu_seconds` and
    /// `memory_byte_seconds` are 0). Absent from the line when false, so older readers and lines agree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache_hit: bool,
}

brownout_foundation::setters! {
    impl JobRecord {
        peak_bytes: u64,
        reserved_bytes: u64,
        cache_hit: bool,
    }
}

/// Bytes in a GB, as cost reports count them (decimal, like cloud price sheets).
pub const BYTES_PER_GB: f64 = 1e9;

/// Converts byte-seconds to GB-hours.
pub fn gb_hours(byte_seconds: f64) -> f64 {
    byte_seconds / BYTES_PER_GB / 3600.0
}

impl JobRecord {
    /// The record of a job metered elsewhere (another process, a batch system), to feed budgets or the records
    /// file: `job_id` labelled `labels`, started at `started_at_unix` (seconds since the Unix epoch), run for
    /// `wall_seconds`, charged nothing until [`cpu`](Self::cpu) and [`memory`](Self::memory) say what it used.
    pub fn new(job_id: impl Into<JobId>, labels: Labels, started_at_unix: f64, wall_seconds: f64) -> Self {
        Self {
            job_id: job_id.into(),
            labels,
            started_at_unix,
            wall_seconds,
            cpu_seconds: 0.0,
            cpu_mode: CpuMode::WallEstimate,
            memory_byte_seconds: 0.0,
            memory_gb_hours: 0.0,
            peak_bytes: 0,
            reserved_bytes: 0,
            memory_mode: MemoryMode::Reservation,
            cache_hit: false,
        }
    }

    /// Charges `cpu_seconds` of CPU, measured as `mode`.
    #[must_use]
    pub fn cpu(mut self, cpu_seconds: f64, mode: CpuMode) -> Self {
        self.cpu_seconds = cpu_seconds;
        self.cpu_mode = mode;
        self
    }

    /// Charges `memory_byte_seconds` of memory (and the GB-hours that follow), measured as `mode`.
    #[must_use]
    pub fn memory(mut self, memory_byte_seconds: f64, mode: MemoryMode) -> Self {
        self.memory_byte_seconds = memory_byte_seconds;
        self.memory_gb_hours = gb_hours(memory_byte_seconds);
        self.memory_mode = mode;
        self
    }

    /// CPU time in hours.
    pub fn cpu_hours(&self) -> f64 {
        self.cpu_seconds / 3600.0
    }

    /// The record as one JSON line, newline included.
    pub fn to_json_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a record always serializes");
        line.push('\n');
        line
    }
}

/// A line of a records file that could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub struct BadRecord {
    /// 1-based line number.
    pub line: usize,
    /// Why it was rejected.
    pub reason: String,
}

/// Reads a records file: every well-formed line, and the lines that were not (a torn last line after a crash,
/// or a hand edit) with their line numbers. Blank lines are skipped.
pub fn read_records(reader: impl BufRead) -> io::Result<(Vec<JobRecord>, Vec<BadRecord>)> {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(record) => good.push(record),
            Err(e) => bad.push(BadRecord { line: i + 1, reason: e.to_string() }),
        }
    }
    Ok((good, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> JobRecord {
        JobRecord {
            job_id: "bt-1".into(),
            labels: Labels::new("research", "backtester"),
            started_at_unix: 1_790_000_000.5,
            wall_seconds: 2.0,
            cpu_seconds: 7200.0,
            cpu_mode: CpuMode::ThreadCpu,
            memory_byte_seconds: 3.6e12,
            memory_gb_hours: gb_hours(3.6e12),
            peak_bytes: 1 << 30,
            reserved_bytes: 0,
            memory_mode: MemoryMode::Allocator,
            cache_hit: false,
        }
    }

    #[test]
    fn records_round_trip_and_torn_lines_are_reported() {
        let r = record();
        assert_eq!(r.cpu_hours(), 2.0);
        assert_eq!(r.memory_gb_hours, 1.0);
        let mut text = r.to_json_line().repeat(2);
        text.push_str(&r.to_json_line()[..40]); // a write cut short by a crash
        let (good, bad) = read_records(text.as_bytes()).unwrap();
        assert_eq!(good, vec![r.clone(), r]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
    }
}
