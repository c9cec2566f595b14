//! `cost-meter cache stats` and `cost-meter cache gc`.

use std::path::PathBuf;

use brownout_cost::cache::{ResultCache, parse_size};
use clap::Subcommand;
use serde_json::json;

use crate::Failure;

/// `cost-meter cache`'s commands.
#[derive(Debug, Subcommand)]
pub(crate) enum CacheCmd {
    /// Hit rate per label set, bytes and CPU-hours saved, from the cache's lookups.
    Stats {
        /// The cache's directory.
        #[arg(long, value_name = "DIR")]
        cache: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove least recently used entries until the rest fit in SIZE, then unreferenced blobs.
    Gc {
        /// The cache's directory.
        #[arg(long, value_name = "DIR")]
        cache: PathBuf,
        /// The size to keep at most (bytes, or with K, M, G, T: powers of 1024).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: u64,
    },
}

fn open(dir: &PathBuf) -> Result<ResultCache, Failure> {
    if !dir.is_dir() {
        return Err(Failure::Refused(format!("{}: no cache there", dir.display())));
    }
    ResultCache::open(dir).map_err(|e| Failure::Refused(format!("{}: {e}", dir.display())))
}

pub(crate) fn cache_cmd(cmd: CacheCmd) -> Result<(), Failure> {
    match cmd {
        CacheCmd::Stats { cache, json } => {
            let stats = open(&cache)?.stats().map_err(|e| Failure::Refused(format!("{}: {e}", cache.display())))?;
            if stats.bad_lines > 0 {
                eprintln!("cost-meter: {}: {} line(s) of stats.jsonl skipped (torn)", cache.display(), stats.bad_lines);
            }
            if json {
                let by: Vec<_> = stats
                    .by_labels
                    .iter()
                    .map(|(l, s)| json!({ "labels": l, "hit_rate": s.hit_rate(), "stats": s }))
                    .collect();
                let doc = json!({ "by_labels": by, "total": stats.total, "hit_rate": stats.total.hit_rate() });
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                return Ok(());
            }
            let w = stats.by_labels.keys().map(String::len).max().unwrap_or(0).max(6);
            println!(
                "{:<w$} {:>7} {:>5} {:>8} {:>12} {:>14} {:>14}",
                "labels", "lookups", "hits", "hit rate", "bytes saved", "cpu-h saved", "cpu-h spent"
            );
            let rows = stats.by_labels.iter().map(|(l, s)| (l.as_str(), s)).chain([("(all)", &stats.total)]);
            for (labels, s) in rows {
                println!(
                    "{:<w$} {:>7} {:>5} {:>7.1}% {:>12} {:>14.6} {:>14.6}",
                    labels,
                    s.lookups,
                    s.hits,
                    s.hit_rate() * 100.0,
                    s.bytes_saved,
                    s.cpu_hours_saved,
                    s.cpu_hours_spent
                );
            }
            Ok(())
        }
        CacheCmd::Gc { cache, max_size } => {
            let r = open(&cache)?.gc(max_size).map_err(|e| Failure::Refused(format!("{}: {e}", cache.display())))?;
            println!(
                "{}: removed {} entr{} ({} bytes), kept {} ({} bytes, limit {max_size})",
                cache.display(),
                r.entries_removed,
                if r.entries_removed == 1 { "y" } else { "ies" },
                r.bytes_removed,
                r.entries_kept,
                r.bytes_kept
            );
            Ok(())
        }
    }
}
