//! The result cache: a job's output files kept under a key built from everything that decides them, so that
//! a repeated job restores them instead of running again.
//!
//! ## The key
//! A SHA-256 over named parts ([`CacheKey::builder`]), in the order given. `cost-meter run --cache` puts in:
//! - the command line, word by word;
//! - the variables named by `--key-env VAR` (their values; unset differs from empty);
//! - with `--key-git`: the commit (`git rev-parse HEAD`) and a hash of the uncommitted changes (`git diff
//!   HEAD --binary` and the paths and contents of untracked, not ignored, files);
//! - each `--key-input FILE`: its path and its content's SHA-256;
//! - `--key-version V`: a version the team bumps when a schema or a meaning changes (a new version misses);
//! - the labels (`team`, `service`, …: one team's entry is not another's) and the cache's own format version.
//!
//! What does **not** go in: the working directory, the time, the environment other than `--key-env`
//! variables, files the command reads that are not `--key-input` (or in git with `--key-git`), the machine,
//! the versions of tools outside the repository (a Python interpreter, a system library). A team that
//! depends on one of those names it in `--key-env` or `--key-version`.
//!
//! ## The store
//! `DIR/blobs/ab/abcd…` holds each output file under its content's SHA-256; `DIR/entries/KEY.json` is an
//! entry's [`Manifest`] (outputs, their hashes, what computing them cost). A store copies every output to a
//! blob (temporary file, fsync, rename), then writes the manifest the same way: the manifest's rename is the
//! commit, so a reader sees no entry or a whole one, and two runs racing on one key both store and one
//! manifest wins whole. A restore checks every blob's hash while copying it beside its target and renames
//! the outputs into place only when all are good: a missing or altered blob, or a manifest that does not
//! parse, is a miss, reported, never served, and the run that follows replaces the entry.
//!
//! ```
//! use brownout_cost::cache::{CacheKey, Cost, ResultCache};
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("features.parquet");
//! let cache = ResultCache::open(dir.path().join("cache"))?;
//! let key = CacheKey::builder().part("features", "momentum-20d").version("schema-3").build();
//! let compute = || -> Result<Cost, std::io::Error> {
//!     std::fs::write(&out, b"...")?;
//!     Ok(Cost::new(42.0, 0.1))
//! };
//! let first = cache.get_or_compute(&key, "team=research", &[out.clone()], compute)?;
//! assert!(!first.hit);
//! std::fs::remove_file(&out)?;
//! let never = || -> Result<Cost, std::io::Error> { unreachable!("a hit computes nothing") };
//! let second = cache.get_or_compute(&key, "team=research", &[out.clone()], never)?;
//! assert!(second.hit && second.saved.cpu_seconds == 42.0);
//! assert_eq!(std::fs::read(&out)?, b"...");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod gc;
mod key;
mod stats;
mod store;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use gc::{GcReport, parse_size};
pub use key::{CACHE_FORMAT, CacheKey, KeyBuilder, file_sha256, git_state, sha256_hex};
pub use stats::{CacheStats, LabelStats, Lookup};
pub use store::{Corrupt, Manifest, OutputFile};

use store::{Layout, Restore};

/// What a computation cost, as stored with its entry (what a hit saves).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Cost {
    /// CPU seconds.
    pub cpu_seconds: f64,
    /// Memory GB-hours.
    pub memory_gb_hours: f64,
}

impl Cost {
    /// `cpu_seconds` of CPU and `memory_gb_hours` of memory.
    pub fn new(cpu_seconds: f64, memory_gb_hours: f64) -> Self {
        Self { cpu_seconds, memory_gb_hours }
    }
}

/// What [`ResultCache::get_or_compute`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Served {
    /// The outputs were restored from the cache; nothing was computed.
    pub hit: bool,
    /// An entry existed but was corrupt (why): it was not served, the outputs were computed again.
    pub corrupt: Option<String>,
    /// Output files restored (hit) or stored (miss).
    pub files: usize,
    /// Bytes restored (hit) or stored (miss).
    pub bytes: u64,
    /// On a hit, what the original computation cost (saved this time); on a miss, what it cost.
    pub saved: Cost,
}

/// A cache error: the outputs could not be stored or restored.
#[derive(Debug)]
#[non_exhaustive]
pub enum CacheError<E> {
    /// The computation failed; nothing was stored.
    Compute(E),
    /// A cache file or an output could not be read or written (naming it).
    Io(String),
}

impl<E: fmt::Display> fmt::Display for CacheError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Compute(e) => write!(f, "{e}"),
            CacheError::Io(e) => write!(f, "cache: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for CacheError<E> {}

/// A result cache in a directory.
#[derive(Debug, Clone)]
pub struct ResultCache {
    layout: Layout,
}

/// The output files under `paths`: a file itself, a directory every file below it (sorted).
pub fn expand_outputs(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if e.file_type()?.is_dir() { walk(&p, out)? } else { out.push(p) }
        }
        Ok(())
    }
    let mut files = Vec::new();
    for p in paths {
        let meta = fs::metadata(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        if meta.is_dir() { walk(p, &mut files)? } else { files.push(p.clone()) }
    }
    Ok(files)
}

impl ResultCache {
    /// Opens (creating if needed) the cache in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let layout = Layout { root: dir.into() };
        layout.create()?;
        Ok(ResultCache { layout })
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.layout.root
    }

    /// The entry of `key`: `Ok(None)` if there is none, `Err` if its manifest is corrupt.
    pub fn manifest(&self, key: &CacheKey) -> Result<Option<Manifest>, Corrupt> {
        store::read_manifest(&self.layout, key.digest())
    }

    /// Restores the outputs of `key`'s entry if it has a good one: `Ok(Some(bytes))` on a hit, `Ok(None)` on
    /// a miss, `Err(Corrupt)` when the entry is bad (nothing restored). The lookup is not counted in the
    /// statistics: [`record`](Self::record) does that.
    pub fn restore(&self, key: &CacheKey) -> Result<Option<(Manifest, u64)>, RestoreError> {
        let Some(m) = self.manifest(key).map_err(RestoreError::Corrupt)? else { return Ok(None) };
        match store::restore(&self.layout, &m) {
            Ok(bytes) => {
                store::touch(&self.layout, key.digest());
                Ok(Some((m, bytes)))
            }
            Err(Restore::Corrupt(c)) => Err(RestoreError::Corrupt(c)),
            Err(Restore::Io(e)) => Err(RestoreError::Io(e)),
        }
    }

    /// Stores `outputs` (files, or directories of files) under `key`, with what computing them cost.
    pub fn store(&self, key: &CacheKey, labels: &str, outputs: &[PathBuf], cost: Cost) -> io::Result<Manifest> {
        let mut files = Vec::new();
        for path in expand_outputs(outputs)? {
            let (blob, bytes) = store::put_blob(&self.layout, &path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let executable = {
                use std::os::unix::fs::PermissionsExt;
                fs::metadata(&path).map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false)
            };
            files.push(OutputFile { path, blob, bytes, executable });
        }
        let manifest = Manifest {
            key: key.digest().to_owned(),
            parts: key.parts().to_vec(),
            labels: labels.to_owned(),
            created_unix: brownout_foundation::time::unix_seconds(std::time::SystemTime::now()),
            cpu_seconds: cost.cpu_seconds,
            memory_gb_hours: cost.memory_gb_hours,
            outputs: files,
        };
        store::write_manifest(&self.layout, &manifest)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.layout.manifest(key.digest()).display())))?;
        Ok(manifest)
    }

    /// Appends one lookup to the statistics (`DIR/stats.jsonl`).
    pub fn record(&self, lookup: &Lookup) -> io::Result<()> {
        stats::append(&self.layout, lookup)
    }

    /// The statistics of every lookup recorded, per label set.
    pub fn stats(&self) -> io::Result<CacheStats> {
        stats::read(&self.layout)
    }

    /// Removes least recently used entries until the blobs the others reference total at most `max_bytes`,
    /// then every blob no entry references and temporary files older than an hour.
    pub fn gc(&self, max_bytes: u64) -> io::Result<GcReport> {
        gc::collect(&self.layout, max_bytes)
    }

    /// Restores `outputs` from `key`'s entry, or runs `compute` (which writes them and says what it cost) and
    /// stores them. A corrupt entry is reported in [`Served::corrupt`] and computed again. Every call is
    /// recorded in the statistics under `labels`.
    pub fn get_or_compute<E>(
        &self,
        key: &CacheKey,
        labels: &str,
        outputs: &[PathBuf],
        compute: impl FnOnce() -> Result<Cost, E>,
    ) -> Result<Served, CacheError<E>> {
        let corrupt = match self.restore(key) {
            Ok(Some((m, bytes))) => {
                let saved = Cost { cpu_seconds: m.cpu_seconds, memory_gb_hours: m.memory_gb_hours };
                let _ = self.record(&Lookup::hit(key, labels, bytes, saved));
                return Ok(Served { hit: true, corrupt: None, files: m.outputs.len(), bytes, saved });
            }
            Ok(None) => None,
            Err(RestoreError::Corrupt(c)) => Some(c.reason),
            Err(RestoreError::Io(e)) => return Err(CacheError::Io(e)),
        };
        let cost = compute().map_err(CacheError::Compute)?;
        let m = self.store(key, labels, outputs, cost).map_err(|e| CacheError::Io(e.to_string()))?;
        let _ = self.record(&Lookup::miss(key, labels, cost));
        Ok(Served { hit: false, corrupt, files: m.outputs.len(), bytes: m.bytes(), saved: cost })
    }
}

/// Why [`ResultCache::restore`] served nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreError {
    /// The entry is corrupt: treat it as a miss.
    Corrupt(Corrupt),
    /// An output could not be written.
    Io(String),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Corrupt(c) => write!(f, "corrupt entry: {}", c.reason),
            RestoreError::Io(e) => write!(f, "cannot restore: {e}"),
        }
    }
}

impl std::error::Error for RestoreError {}
