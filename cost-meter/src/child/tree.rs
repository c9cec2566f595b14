//! A process tree's resident memory, from `/proc`: the root and every descendant, found by their parent ids.

use std::collections::HashMap;
use std::fs;

use brownout_foundation::process::{page_size, parse_statm_rss};

/// The parent id from the text of `/proc/PID/stat` (`pid (comm) state ppid …`; the command name may hold
/// spaces and parentheses, so the fields are read after its last `)`).
///
/// ```
/// use brownout_cost::child::parse_stat_ppid;
/// assert_eq!(parse_stat_ppid("42 (python3 (x) y) S 7 42 42 0"), Some(7));
/// assert_eq!(parse_stat_ppid("42 (sh"), None);
/// ```
pub fn parse_stat_ppid(stat: &str) -> Option<i32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The ids of `root` and all its live descendants (a zombie counts while it is not reaped), root first.
pub fn tree_pids(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            // A process can exit between the listing and the read: it is simply not counted.
            if let Some(ppid) =
                fs::read_to_string(format!("/proc/{pid}/stat")).ok().as_deref().and_then(parse_stat_ppid)
            {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        if let Some(kids) = children.get(&tree[i]) {
            tree.extend(kids.iter().copied().filter(|k| *k != root));
        }
        i += 1;
    }
    tree
}

/// The sum of the resident set sizes of `root`'s tree, in bytes (pages shared between its processes, as after
/// a `fork`, count once per process). A process that exits mid-walk counts 0.
pub fn tree_rss_bytes(root: i32) -> u64 {
    rss_of(tree_pids(root))
}

/// The sum of the resident set sizes of `root`'s descendants, `root` itself left out.
pub fn descendants_rss_bytes(root: i32) -> u64 {
    rss_of(tree_pids(root).into_iter().skip(1).collect())
}

fn rss_of(pids: Vec<i32>) -> u64 {
    let page = page_size() as u64;
    pids.into_iter()
        .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/statm")).ok())
        .filter_map(|statm| parse_statm_rss(&statm, page))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_ppid_is_read_after_any_command_name(comm in "[ -~]{0,20}", ppid in 0i32..1_000_000) {
            let stat = format!("123 ({comm}) S {ppid} 123 123 0 -1 4194560");
            prop_assert_eq!(parse_stat_ppid(&stat), Some(ppid));
        }
    }

    #[test]
    fn this_process_is_the_root_of_its_tree() {
        let me = std::process::id() as i32;
        assert_eq!(tree_pids(me)[0], me);
        assert!(tree_rss_bytes(me) > 0);
    }
}
