//! The cache's files: content-addressed blobs, one manifest per key, written to a temporary file and renamed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::key::hex;

/// One output file of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutputFile {
    /// Where it goes back, as the job named it (relative to the working directory, or absolute).
    pub path: PathBuf,
    /// The hex SHA-256 of its content: the blob's name.
    pub blob: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether it was executable.
    #[serde(default)]
    pub executable: bool,
}

/// An entry's manifest: what the job produced and what computing it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// The key's digest (checked against the file name: a manifest renamed by hand is corrupt).
    pub key: String,
    /// The key's parts.
    pub parts: Vec<(String, String)>,
    /// The labels of the job that computed it (`team=…,service=…`).
    pub labels: String,
    /// When it was stored, Unix seconds.
    pub created_unix: f64,
    /// The CPU seconds the computation cost (what a hit saves).
    pub cpu_seconds: f64,
    /// The memory GB-hours the computation cost.
    pub memory_gb_hours: f64,
    /// The output files.
    pub outputs: Vec<OutputFile>,
}

impl Manifest {
    /// The outputs' total size.
    pub fn bytes(&self) -> u64 {
        self.outputs.iter().map(|o| o.bytes).sum()
    }
}

/// The directories of a cache.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) root: PathBuf,
}

impl Layout {
    pub(crate) fn entries(&self) -> PathBuf {
        self.root.join("entries")
    }
    pub(crate) fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }
    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub(crate) fn stats(&self) -> PathBuf {
        self.root.join("stats.jsonl")
    }
    pub(crate) fn manifest(&self, key: &str) -> PathBuf {
        self.entries().join(format!("{key}.json"))
    }
    pub(crate) fn blob(&self, hash: &str) -> PathBuf {
        self.blobs().join(&hash[..2.min(hash.len())]).join(hash)
    }

    pub(crate) fn create(&self) -> io::Result<()> {
        for d in [self.entries(), self.blobs(), self.tmp()] {
            fs::create_dir_all(d)?;
        }
        Ok(())
    }
}

/// Copies `from` into a new temporary file in `dir`, hashing as it goes: the file and the hex SHA-256.
fn copy_hashing(from: &mut impl Read, dir: &Path) -> io::Result<(tempfile::NamedTempFile, String, u64)> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])?;
        total += n as u64;
    }
    tmp.as_file().sync_data()?;
    Ok((tmp, hex(&hasher.finalize()), total))
}

/// Stores one file as a blob (a no-op if the same content is there): its hash and size.
pub(crate) fn put_blob(layout: &Layout, path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let (tmp, hash, bytes) = copy_hashing(&mut file, &layout.tmp())?;
    let target = layout.blob(&hash);
    if let Some(dir) = target.parent() {
        fs::create_dir_all(dir)?;
    }
    // Content-addressed: a racing writer of the same blob renames the same bytes; either rename wins whole.
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok((hash, bytes))
}

/// Why an entry cannot be served.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Corrupt {
    /// What is wrong, naming the file.
    pub reason: String,
}

/// Restores every output of `manifest`: each blob is copied to a temporary file beside its target and its
/// hash checked; only when all are good are they renamed into place. A missing or altered blob restores
/// nothing. Returns the bytes restored.
pub(crate) fn restore(layout: &Layout, manifest: &Manifest) -> Result<u64, Restore> {
    let mut staged = Vec::new();
    for out in &manifest.outputs {
        let blob = layout.blob(&out.blob);
        let mut file = File::open(&blob).map_err(|e| {
            Restore::Corrupt(Corrupt { reason: format!("{}: blob of `{}`: {e}", blob.display(), out.path.display()) })
        })?;
        let dir = match out.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(d) => d.to_path_buf(),
            None => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| Restore::Io(format!("{}: {e}", dir.display())))?;
        let (tmp, hash, _) =
            copy_hashing(&mut file, &dir).map_err(|e| Restore::Io(format!("{}: {e}", out.path.display())))?;
        if hash != out.blob {
            return Err(Restore::Corrupt(Corrupt {
                reason: format!(
                    "{}: content does not match its hash (the entry of `{}`)",
                    blob.display(),
                    out.path.display()
                ),
            }));
        }
        if out.executable {
            use std::os::unix::fs::PermissionsExt;
            let _ = tmp.as_file().set_permissions(fs::Permissions::from_mode(0o755));
        }
        staged.push((tmp, &out.path));
    }
    let mut bytes = 0;
    for (tmp, path) in staged {
        bytes += tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
        tmp.persist(path).map_err(|e| Restore::Io(format!("{}: {}", path.display(), e.error)))?;
    }
    Ok(bytes)
}

/// Why a restore failed.
#[derive(Debug)]
pub(crate) enum Restore {
    /// The entry is bad: a miss.
    Corrupt(Corrupt),
    /// The outputs cannot be written (a directory not writable): an error.
    Io(String),
}

/// Reads and checks a manifest; `Ok(None)` when there is none.
pub(crate) fn read_manifest(layout: &Layout, key: &str) -> Result<Option<Manifest>, Corrupt> {
    let path = layout.manifest(key);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Corrupt { reason: format!("{}: {e}", path.display()) }),
    };
    let m: Manifest =
        brownout_foundation::parse::json(&text).map_err(|e| Corrupt { reason: format!("{}: {e}", path.display()) })?;
    if m.key != key {
        return Err(Corrupt { reason: format!("{}: key: names another entry ({})", path.display(), m.key) });
    }
    Ok(Some(m))
}

/// Writes a manifest atomically (temporary file, fsync, rename): a reader sees the old one or the new one.
pub(crate) fn write_manifest(layout: &Layout, manifest: &Manifest) -> io::Result<()> {
    let text = serde_json::to_string_pretty(manifest).map_err(io::Error::other)?;
    brownout_foundation::fs::write_atomically(layout.manifest(&manifest.key), text.as_bytes())
}

/// Marks an entry used now (its manifest's modification time), for the garbage collector's LRU order.
pub(crate) fn touch(layout: &Layout, key: &str) {
    if let Ok(f) = OpenOptions::new().append(true).open(layout.manifest(key)) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}
