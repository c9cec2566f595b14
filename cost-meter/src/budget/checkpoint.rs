//! The month-to-date checkpoint: JSON, replaced atomically ([`brownout_foundation::fs::write_atomically`]: a
//! unique temporary file created exclusively in the same directory, fsync, rename, fsync of the directory), so
//! that a crash at any point leaves either the old or the new checkpoint, whole. A checkpoint that is a
//! symlink stays one: its target is replaced.
//!
//! Reading has two forms. [`read`] has no side effect: a readable tool (`cost-meter report`) uses it, and a
//! file that does not hold a checkpoint is reported as [`CheckpointError::Invalid`] and left where it is.
//! [`load`] is the writer's: the one process that keeps the checkpoint moves a corrupt one aside
//! ([`CheckpointError::Corrupt`]) before it writes a new one, so it is never silently replaced by zeros.
//!
//! A process killed in the middle of a save leaves its temporary file (`.NAME.XXXXXX.tmp`); it is never read
//! and may be deleted.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::alert::AlertLevel;
use super::civil::{Month, unix_seconds};
use super::usage::Usage;

/// The version this code writes and reads.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A budget's state in a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BudgetState {
    /// Usage so far this month.
    pub usage: Usage,
    /// The alert level, so that a restart neither fires a crossing again nor forgets a guardrail.
    pub level: AlertLevel,
}

impl BudgetState {
    /// A budget that has used `usage` and stands at `level`.
    pub fn new(usage: Usage, level: AlertLevel) -> Self {
        Self { usage, level }
    }
}

/// What a checkpoint holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The month counted.
    pub month: Month,
    /// When it was written, in Unix seconds.
    pub written_at_unix: i64,
    /// Per budget.
    pub budgets: BTreeMap<String, BudgetState>,
}

impl Checkpoint {
    /// An empty checkpoint for `month`.
    pub fn new(month: Month) -> Self {
        Checkpoint { version: CHECKPOINT_VERSION, month, written_at_unix: 0, budgets: BTreeMap::new() }
    }
}

/// A checkpoint that could not be loaded or saved.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file exists but does not hold a checkpoint. It was renamed to `moved_to` (if that worked) so that
    /// it can be inspected; nothing was zeroed.
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// Where it is now, or `None` if it could not be moved.
        moved_to: Option<PathBuf>,
        /// Why it was rejected.
        reason: String,
    },
    /// The file exists but does not hold a checkpoint, and was left as it is (found by [`read`], which
    /// changes nothing).
    Invalid {
        /// The checkpoint file.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// Reading or writing failed.
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Corrupt { path, moved_to: Some(to), reason } => write!(
                f,
                "{}: corrupt checkpoint ({reason}); kept aside as {}, month-to-date usage must be rebuilt from \
                 the records",
                path.display(),
                to.display()
            ),
            CheckpointError::Corrupt { path, moved_to: None, reason } => {
                write!(f, "{}: corrupt checkpoint ({reason}); it could not be moved aside", path.display())
            }
            CheckpointError::Invalid { path, reason } => write!(
                f,
                "{}: not a valid checkpoint ({reason}); left as it is (the service that keeps it moves it aside \
                 when it next starts)",
                path.display()
            ),
            CheckpointError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// Saves a checkpoint atomically, stamping it with `now`.
pub fn save(path: &Path, checkpoint: &Checkpoint, now: SystemTime) -> Result<(), CheckpointError> {
    let mut c = checkpoint.clone();
    c.version = CHECKPOINT_VERSION;
    c.written_at_unix = unix_seconds(now) as i64;
    let mut text =
        serde_json::to_vec_pretty(&c).map_err(|e| CheckpointError::Io { path: path.into(), source: e.into() })?;
    text.push(b'\n');
    brownout_foundation::fs::write_atomically(path, &text)
        .map_err(|source| CheckpointError::Io { path: path.into(), source })
}

fn check(bytes: &[u8]) -> Result<Checkpoint, String> {
    let c: Checkpoint = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if c.version != CHECKPOINT_VERSION {
        return Err(format!("version {} is not {CHECKPOINT_VERSION}", c.version));
    }
    for (name, state) in &c.budgets {
        let u = state.usage;
        if !(u.cpu_hours.is_finite() && u.cpu_hours >= 0.0 && u.memory_gb_hours.is_finite() && u.memory_gb_hours >= 0.0)
        {
            return Err(format!("budgets.{name}.usage: negative or non-finite"));
        }
    }
    Ok(c)
}

/// Reads a checkpoint without changing anything: `Ok(None)` if there is none, and a file that does not hold
/// a valid checkpoint (empty, truncated, edited by hand) reported as [`CheckpointError::Invalid`] and left in
/// place. For readers; the process that keeps the checkpoint uses [`load`].
pub fn read(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Io { path: path.into(), source }),
    };
    check(&bytes).map(Some).map_err(|reason| CheckpointError::Invalid { path: path.into(), reason })
}

/// Loads a checkpoint for the process that keeps it: `Ok(None)` if there is none. A file that does not hold a
/// valid checkpoint (empty, truncated, edited by hand) is renamed to `NAME.corrupt-<unix seconds>` and
/// reported as [`CheckpointError::Corrupt`], so that the next save does not replace it.
pub fn load(path: &Path, now: SystemTime) -> Result<Option<Checkpoint>, CheckpointError> {
    match read(path) {
        Err(CheckpointError::Invalid { reason, .. }) => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mut aside = path.with_file_name(format!("{name}.corrupt-{}", unix_seconds(now) as i64));
            let mut n = 1;
            while aside.exists() {
                aside = path.with_file_name(format!("{name}.corrupt-{}-{n}", unix_seconds(now) as i64));
                n += 1;
            }
            let moved_to = std::fs::rename(path, &aside).ok().map(|()| aside);
            tracing::error!(path = %path.display(), reason, "corrupt budget checkpoint kept aside");
            Err(CheckpointError::Corrupt { path: path.into(), moved_to, reason })
        }
        other => other,
    }
}
