//! Where finished jobs' records go.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use brownout_foundation::sync::lock;

use crate::JobRecord;

/// Receives the record of every finished job. Implemented for closures `Fn(&JobRecord)`.
pub trait RecordSink: Send + Sync {
    /// Takes one finished job's record. Must not panic; report failures through `tracing`.
    fn record(&self, record: &JobRecord);
}

impl<F: Fn(&JobRecord) + Send + Sync> RecordSink for F {
    fn record(&self, record: &JobRecord) {
        self(record)
    }
}

/// Appends records to a file, one JSON line each, with a single `write` per line on a file opened for
/// appending (so concurrent writers and a crash leave at most a torn last line, which
/// [`read_records`](crate::read_records) reports and skips). Not fsynced per line: records are telemetry,
/// budgets' month-to-date totals live in their checkpoint.
pub struct JsonLinesFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl JsonLinesFile {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(JsonLinesFile { path, file: Mutex::new(file) })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for JsonLinesFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesFile").field("path", &self.path).finish()
    }
}

impl RecordSink for JsonLinesFile {
    fn record(&self, record: &JobRecord) {
        let line = record.to_json_line();
        let mut file = lock(&self.file);
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!(target: "cost_meter", path = %self.path.display(), error = %e, "could not append a job record");
        }
    }
}

/// Keeps records in memory: for tests, and for reports built at the end of a run.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    records: Arc<Mutex<Vec<JobRecord>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The records so far, oldest first.
    pub fn records(&self) -> Vec<JobRecord> {
        lock(&self.records).clone()
    }

    /// Takes the records so far, leaving the sink empty.
    pub fn take(&self) -> Vec<JobRecord> {
        std::mem::take(&mut *lock(&self.records))
    }
}

impl RecordSink for MemorySink {
    fn record(&self, record: &JobRecord) {
        lock(&self.records).push(record.clone());
    }
}
