//! The audit log of the admin API: one JSON line per change.

use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

/// One change made through the admin API, as written to the audit log.
///
/// A line reads `{"time":"2026-11-26T02:01:52Z","token_id":"alice","action":"flag.set",
/// "target":"quotes.source","before":{…},"after":{…}}`. The token itself is never written: only its id.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When, RFC 3339 in UTC, whole seconds.
    pub time: String,
    /// The id of the token that made the change (see [`TokenSet`](super::TokenSet)).
    pub token_id: String,
    /// What was done: `chaos.replace`, `chaos.arm`, `chaos.disarm`, `flag.set`, `flag.unset`,
    /// `breaker.open`, `breaker.close`, `breaker.reset`.
    pub action: &'static str,
    /// What it was done to: a flag or breaker name, or `chaos`.
    pub target: String,
    /// The state before.
    pub before: Value,
    /// The state after.
    pub after: Value,
}

impl AuditEntry {
    pub(crate) fn new(token_id: &str, action: &'static str, target: &str, before: Value, after: Value) -> Self {
        let unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Self {
            time: brownout_foundation::time::rfc3339(i64::try_from(unix).unwrap_or(i64::MAX)),
            token_id: token_id.to_owned(),
            action,
            target: target.to_owned(),
            before,
            after,
        }
    }
}

/// An append-only JSON-lines file of [`AuditEntry`]s.
///
/// Opened for appending (created with mode `0600` on Unix); each entry is written with one `write` call and
/// then `fsync`ed, so concurrent writers never interleave and an acknowledged change is on disk. The write
/// happens on the request's task: admin changes are rare, and an operator's change should be recorded
/// before it is acknowledged.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog").field("path", &self.path).finish()
    }
}

impl AuditLog {
    /// Opens (or creates) the log at `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> std::io::Result<Self> {
        let path = path.as_ref();
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Ok(Self { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry: a single write of the whole line, then `fsync`.
    pub fn append(&self, entry: &AuditEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = brownout_foundation::sync::lock(&self.file);
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// Where entries go: the file when one is configured, and always `tracing` (target `brownout::admin::audit`).
pub(crate) fn record(log: Option<&AuditLog>, entry: &AuditEntry) {
    metrics::counter!("chaos_admin_changes_total", "action" => entry.action).increment(1);
    tracing::info!(
        target: "brownout::admin::audit",
        token_id = %entry.token_id, action = entry.action, target_name = %entry.target,
        "admin change"
    );
    if let Some(log) = log
        && let Err(e) = log.append(entry)
    {
        tracing::error!(file = %log.path().display(), error = %e, "cannot write the admin audit log; the change stays applied");
    }
}
