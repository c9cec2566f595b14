//! The memory limit a ballast is measured against: the cgroup v2 `memory.max` of the process when one is
//! set, else the machine's physical memory (`MemTotal` in `/proc/meminfo`), whichever is lower.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::bytes::human;

/// Where a [`MemoryLimit`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitSource {
    /// A cgroup v2 `memory.max` file (the process's own cgroup or an ancestor).
    CgroupV2(PathBuf),
    /// Physical memory, from `/proc/meminfo`.
    PhysicalMemory,
}

impl fmt::Display for LimitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitSource::CgroupV2(path) => write!(f, "{}", path.display()),
            LimitSource::PhysicalMemory => f.write_str("/proc/meminfo"),
        }
    }
}

/// How much memory the process may use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryLimit {
    /// The limit in bytes.
    pub bytes: u64,
    /// Where it was read.
    pub source: LimitSource,
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} limit from {}", human(self.bytes), self.source)
    }
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Reads the memory limit: the lowest cgroup v2 `memory.max` set on the process's cgroup or its ancestors
/// (under `/sys/fs/cgroup`), capped by physical memory.
pub fn memory_limit() -> io::Result<MemoryLimit> {
    let physical = parse_meminfo_total(&std::fs::read_to_string("/proc/meminfo")?)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no MemTotal in /proc/meminfo"))?;
    let cgroup =
        std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|text| cgroup_v2_path(&text).map(str::to_owned));
    let limit = cgroup_limit(Path::new(CGROUP_ROOT), cgroup.as_deref());
    Ok(match limit {
        Some((bytes, path)) if bytes < physical => MemoryLimit { bytes, source: LimitSource::CgroupV2(path) },
        _ => MemoryLimit { bytes: physical, source: LimitSource::PhysicalMemory },
    })
}

/// The lowest `memory.max` set from the process's cgroup up to `root`, and the file it came from.
fn cgroup_limit(root: &Path, cgroup: Option<&str>) -> Option<(u64, PathBuf)> {
    let mut dirs = vec![root.to_path_buf()];
    if let Some(cgroup) = cgroup {
        let mut dir = root.to_path_buf();
        for part in cgroup.split('/').filter(|p| !p.is_empty() && *p != "..") {
            dir.push(part);
            dirs.push(dir.clone());
        }
    }
    dirs.into_iter()
        .filter_map(|dir| {
            let file = dir.join("memory.max");
            let text = std::fs::read_to_string(&file).ok()?;
            parse_memory_max(&text).map(|bytes| (bytes, file))
        })
        .min_by_key(|(bytes, _)| *bytes)
}

/// The cgroup v2 path of the process: the `0::/path` line of `/proc/self/cgroup`.
pub(crate) fn cgroup_v2_path(proc_self_cgroup: &str) -> Option<&str> {
    proc_self_cgroup.lines().find_map(|line| line.strip_prefix("0::")).map(str::trim)
}

/// A `memory.max` value: bytes, or `None` for `max` (no limit) and anything unreadable.
pub(crate) fn parse_memory_max(text: &str) -> Option<u64> {
    match text.trim() {
        "max" => None,
        n => n.parse().ok(),
    }
}

/// `MemTotal:  24615432 kB` → bytes.
pub(crate) fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let rest = meminfo.lines().find_map(|line| line.strip_prefix("MemTotal:"))?;
    let mut parts = rest.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_files() {
        assert_eq!(parse_memory_max("max\n"), None);
        assert_eq!(parse_memory_max("536870912\n"), Some(512 << 20));
        assert_eq!(parse_memory_max("garbage"), None);
        assert_eq!(parse_meminfo_total("MemTotal:       24615432 kB\nMemFree: 1 kB\n"), Some(24_615_432 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(cgroup_v2_path("0::/kubepods/pod1/c1\n"), Some("/kubepods/pod1/c1"));
        assert_eq!(cgroup_v2_path("12:cpu,cpuacct:/user.slice\n0::/\n"), Some("/"));
        assert_eq!(cgroup_v2_path("4:cpu:/docker/abc\n"), None);
    }

    #[test]
    fn the_lowest_memory_max_on_the_path_wins() {
        let root = std::env::temp_dir().join(format!("brownout-cg-{}", std::process::id()));
        let leaf = root.join("kubepods/pod1");
        std::fs::create_dir_all(&leaf).expect("temp dir");
        std::fs::write(root.join("memory.max"), "max\n").expect("write");
        std::fs::write(root.join("kubepods/memory.max"), "2147483648\n").expect("write");
        std::fs::write(leaf.join("memory.max"), "1073741824\n").expect("write");
        let found = cgroup_limit(&root, Some("/kubepods/pod1"));
        assert_eq!(found, Some((1 << 30, leaf.join("memory.max"))));
        std::fs::write(leaf.join("memory.max"), "max\n").expect("write");
        let found = cgroup_limit(&root, Some("/kubepods/pod1"));
        assert_eq!(found.map(|f| f.0), Some(2 << 30));
        assert_eq!(cgroup_limit(&root, Some("/")), None);
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn this_machine_has_a_limit() {
        let limit = memory_limit().expect("/proc/meminfo is readable");
        assert!(limit.bytes > 64 << 20, "{limit}");
    }
}
