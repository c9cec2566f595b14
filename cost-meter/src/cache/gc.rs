//! Garbage collection: least recently used entries go first, then the blobs nobody references.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io;
use std::time::{Duration, SystemTime};

use super::store::{self, Layout, Manifest};

/// What a collection removed and kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GcReport {
    /// Entries removed (least recently used first).
    pub entries_removed: usize,
    /// Entries kept.
    pub entries_kept: usize,
    /// Blob bytes removed.
    pub bytes_removed: u64,
    /// Blob bytes kept.
    pub bytes_kept: u64,
}

/// Parses a size: a number of bytes, optionally with `K`, `M`, `G` or `T` (powers of 1024; `KiB` etc. and
/// a trailing `B` accepted).
///
/// ```
/// use brownout_cost::cache::parse_size;
/// assert_eq!(parse_size("512"), Ok(512));
/// assert_eq!(parse_size("2G"), Ok(2 << 30));
/// assert_eq!(parse_size("1.5MiB"), Ok(1_572_864));
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let bad = || format!("`{text}` is not a size (bytes, or a number with K, M, G or T)");
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim().trim_end_matches(['B', 'b']).trim_end_matches('i');
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

fn blob_sizes(layout: &Layout) -> io::Result<HashMap<String, u64>> {
    let mut sizes = HashMap::new();
    for shard in fs::read_dir(layout.blobs())?.flatten() {
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for blob in fs::read_dir(shard.path())?.flatten() {
            let len = blob.metadata().map(|m| m.len()).unwrap_or(0);
            sizes.insert(blob.file_name().to_string_lossy().into_owned(), len);
        }
    }
    Ok(sizes)
}

pub(crate) fn collect(layout: &Layout, max_bytes: u64) -> io::Result<GcReport> {
    // Entries, most recently used first; a manifest that does not parse is removed (it would never be served).
    let mut entries: Vec<(SystemTime, String, Option<Manifest>)> = Vec::new();
    for e in fs::read_dir(layout.entries())?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(key) = name.strip_suffix(".json") else { continue };
        let used = e.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
        entries.push((used, key.to_owned(), store::read_manifest(layout, key).ok().flatten()));
    }
    entries.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let sizes = blob_sizes(layout)?;
    let mut report = GcReport::default();
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let mut kept_bytes = 0u64;
    for (_, key, manifest) in &entries {
        let keep = manifest.as_ref().is_some_and(|m| {
            let new: BTreeSet<&String> = m.outputs.iter().map(|o| &o.blob).filter(|b| !kept.contains(*b)).collect();
            let extra: u64 = new.iter().map(|b| sizes.get(*b).copied().unwrap_or(0)).sum();
            if kept_bytes + extra <= max_bytes {
                kept_bytes += extra;
                kept.extend(new.into_iter().cloned());
                true
            } else {
                false
            }
        });
        if keep {
            report.entries_kept += 1;
        } else {
            // Removing the manifest first: a reader then sees no entry, never one whose blobs are gone.
            match fs::remove_file(layout.manifest(key)) {
                Ok(()) => report.entries_removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    for (blob, len) in &sizes {
        if kept.contains(blob) {
            report.bytes_kept += len;
        } else if fs::remove_file(layout.blob(blob)).is_ok() {
            report.bytes_removed += len;
        }
    }
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for t in fs::read_dir(layout.tmp())?.flatten() {
        if t.metadata().and_then(|m| m.modified()).is_ok_and(|m| m < hour_ago) {
            let _ = fs::remove_file(t.path());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sizes_in_bytes_round_trip(n in 0u64..1 << 40) {
            prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
            prop_assert_eq!(parse_size(&format!("{}K", n >> 10)), Ok((n >> 10) << 10));
        }

        #[test]
        fn size_parsing_never_panics(text in ".{0,12}") {
            let _ = parse_size(&text);
        }
    }
}
