//! The cache's statistics: one JSON line per lookup in `DIR/stats.jsonl`, summed per label set.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::store::Layout;
use super::{CacheKey, Cost};

/// One lookup, as a line of `stats.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Lookup {
    /// When, Unix seconds.
    pub unix: f64,
    /// The key's digest.
    pub key: String,
    /// The job's labels (`team=…,service=…`).
    pub labels: String,
    /// Served from the cache.
    pub hit: bool,
    /// Bytes restored (hits) or stored (misses).
    pub bytes: u64,
    /// CPU seconds: saved (hits) or spent (misses).
    pub cpu_seconds: f64,
    /// Memory GB-hours: saved (hits) or spent (misses).
    pub memory_gb_hours: f64,
}

fn now() -> f64 {
    brownout_foundation::time::unix_seconds(std::time::SystemTime::now())
}

impl Lookup {
    /// A hit that restored `bytes` and saved `saved`.
    pub fn hit(key: &CacheKey, labels: &str, bytes: u64, saved: Cost) -> Self {
        Lookup {
            unix: now(),
            key: key.digest().to_owned(),
            labels: labels.to_owned(),
            hit: true,
            bytes,
            cpu_seconds: saved.cpu_seconds,
            memory_gb_hours: saved.memory_gb_hours,
        }
    }

    /// A miss that cost `cost` to compute.
    pub fn miss(key: &CacheKey, labels: &str, cost: Cost) -> Self {
        Lookup {
            unix: now(),
            key: key.digest().to_owned(),
            labels: labels.to_owned(),
            hit: false,
            bytes: 0,
            cpu_seconds: cost.cpu_seconds,
            memory_gb_hours: cost.memory_gb_hours,
        }
    }
}

/// The statistics of one label set.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct LabelStats {
    /// Lookups recorded.
    pub lookups: u64,
    /// Of which hits.
    pub hits: u64,
    /// Bytes restored by hits (outputs not recomputed).
    pub bytes_saved: u64,
    /// CPU-hours the hits did not spend (what the entries cost to compute).
    pub cpu_hours_saved: f64,
    /// Memory GB-hours the hits did not spend.
    pub memory_gb_hours_saved: f64,
    /// CPU-hours the misses spent.
    pub cpu_hours_spent: f64,
}

impl LabelStats {
    /// Hits over lookups (0 without lookups).
    pub fn hit_rate(&self) -> f64 {
        if self.lookups == 0 { 0.0 } else { self.hits as f64 / self.lookups as f64 }
    }

    fn add(&mut self, l: &Lookup) {
        self.lookups += 1;
        if l.hit {
            self.hits += 1;
            self.bytes_saved += l.bytes;
            self.cpu_hours_saved += l.cpu_seconds / 3600.0;
            self.memory_gb_hours_saved += l.memory_gb_hours;
        } else {
            self.cpu_hours_spent += l.cpu_seconds / 3600.0;
        }
    }
}

/// The statistics of a cache.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// Per label set.
    pub by_labels: BTreeMap<String, LabelStats>,
    /// Every lookup.
    pub total: LabelStats,
    /// Lines of `stats.jsonl` that did not parse (a torn last line), skipped.
    pub bad_lines: usize,
}

pub(crate) fn append(layout: &Layout, lookup: &Lookup) -> io::Result<()> {
    let mut line = serde_json::to_string(lookup).map_err(io::Error::other)?;
    line.push('\n');
    // One write of one line on a file opened for appending: concurrent runs interleave whole lines.
    OpenOptions::new().create(true).append(true).open(layout.stats())?.write_all(line.as_bytes())
}

pub(crate) fn read(layout: &Layout) -> io::Result<CacheStats> {
    let text = match fs::read_to_string(layout.stats()) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut stats = CacheStats::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Lookup>(line) {
            Ok(l) => {
                stats.by_labels.entry(l.labels.clone()).or_default().add(&l);
                stats.total.add(&l);
            }
            Err(_) => stats.bad_lines += 1,
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_hit_rate_is_hits_over_lookups(hits in proptest::collection::vec(any::<bool>(), 0..50)) {
            let key = CacheKey::builder().build();
            let mut s = LabelStats::default();
            for h in &hits {
                let cost = Cost { cpu_seconds: 3600.0, memory_gb_hours: 1.0 };
                s.add(&if *h { Lookup::hit(&key, "", 10, cost) } else { Lookup::miss(&key, "", cost) });
            }
            let n = hits.iter().filter(|h| **h).count();
            prop_assert_eq!(s.hits as usize, n);
            let want = if hits.is_empty() { 0.0 } else { n as f64 / hits.len() as f64 };
            prop_assert!((s.hit_rate() - want).abs() < 1e-12);
            prop_assert!((s.cpu_hours_saved - n as f64).abs() < 1e-9);
            prop_assert_eq!(s.bytes_saved, 10 * n as u64);
        }
    }
}
