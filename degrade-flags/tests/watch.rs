//! The file watcher on real files and the real (inotify) watcher, edited the way editors, scripts and
//! Kubernetes edit them: exactly one call per content change, none for reads, none for identical content.
//!
//! The waits here are bounds on a real OS, not measurements: a call is awaited for up to `PATIENCE` (its
//! latency is printed), and "no call" is checked over `QUIET`, longer than the watcher's settle time and its
//! rescan period together.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use brownout_degrade::flags::{FileWatcher, FlagWatcher, Flags, Source};

const PATIENCE: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(1600);

struct Probe {
    calls: Receiver<Vec<u8>>,
    _watcher: FileWatcher,
}

impl Probe {
    /// Watches `path`; the call for the content at start is taken off first.
    fn start(path: &Path) -> Probe {
        let (tx, calls) = mpsc::channel();
        let watcher = FileWatcher::start(path, move |bytes| tx.send(bytes.to_vec()).unwrap()).unwrap();
        let probe = Probe { calls, _watcher: watcher };
        if path.exists() {
            probe.calls.try_recv().expect("the content at start is handed over at once");
        }
        probe
    }

    /// Exactly one call, with `content`, and nothing after it.
    fn expect_one(&self, content: &str, what: &str) {
        let began = Instant::now();
        let got = self.calls.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("{what}: no call in {PATIENCE:?}"));
        eprintln!("{what}: called after {:?}", began.elapsed());
        assert_eq!(String::from_utf8_lossy(&got), content, "{what}: the whole new content, read once");
        self.expect_none(what);
    }

    fn expect_none(&self, what: &str) {
        if let Ok(extra) = self.calls.recv_timeout(QUIET) {
            panic!("{what}: an extra call with {:?}", String::from_utf8_lossy(&extra));
        }
    }
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    fs::write(&file, "v: 0\n").unwrap();
    (dir, file)
}

#[test]
fn reads_never_call_and_identical_content_never_calls() {
    let (_dir, file) = scratch();
    let probe = Probe::start(&file);
    for _ in 0..50 {
        let _ = fs::read(&file).unwrap();
    }
    probe.expect_none("50 reads");
    // Touched, or rewritten with the same bytes: the content did not change.
    fs::write(&file, "v: 0\n").unwrap();
    probe.expect_none("the same bytes rewritten");
}

#[test]
fn a_write_in_place_calls_once() {
    let (_dir, file) = scratch();
    let probe = Probe::start(&file);
    fs::write(&file, "v: 1\n").unwrap();
    probe.expect_one("v: 1\n", "write in place");
    let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
    f.write_all(b"# edit\n").unwrap();
    drop(f);
    probe.expect_one("v: 1\n# edit\n", "append");
}

#[test]
fn a_rename_over_the_file_calls_once() {
    let (dir, file) = scratch();
    let probe = Probe::start(&file);
    // As vim and most editors save: write a new file, rename it over the old one.
    let tmp = dir.path().join(".config.yaml.swp");
    fs::write(&tmp, "v: 2\n").unwrap();
    fs::rename(&tmp, &file).unwrap();
    probe.expect_one("v: 2\n", "rename over");
}

#[test]
fn a_truncate_then_write_is_read_once_whole() {
    let (_dir, file) = scratch();
    let probe = Probe::start(&file);
    let mut f = fs::OpenOptions::new().write(true).truncate(true).open(&file).unwrap();
    f.write_all(b"v: ").unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(10));
    f.write_all(b"3\n").unwrap();
    drop(f);
    probe.expect_one("v: 3\n", "truncate, then two writes");
}

#[test]
fn a_deleted_file_keeps_the_last_content_until_it_comes_back() {
    let (_dir, file) = scratch();
    let probe = Probe::start(&file);
    fs::remove_file(&file).unwrap();
    probe.expect_none("deleted");
    fs::write(&file, "v: 0\n").unwrap();
    probe.expect_none("re-created with the same content");
    fs::remove_file(&file).unwrap();
    fs::write(&file, "v: 4\n").unwrap();
    probe.expect_one("v: 4\n", "deleted and re-created with new content");
}

#[test]
fn the_directory_removed_and_re_created_is_watched_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("conf");
    fs::create_dir(&dir).unwrap();
    let file = dir.join("config.yaml");
    fs::write(&file, "v: 0\n").unwrap();
    let probe = Probe::start(&file);
    fs::remove_dir_all(&dir).unwrap();
    probe.expect_none("directory removed");
    fs::create_dir(&dir).unwrap();
    fs::write(&file, "v: 5\n").unwrap();
    probe.expect_one("v: 5\n", "directory re-created");
    // And the new directory is watched: a later edit is seen too.
    fs::write(&file, "v: 6\n").unwrap();
    probe.expect_one("v: 6\n", "an edit in the re-created directory");
}

#[test]
fn a_re_pointed_symlink_and_an_edit_of_its_target_call_once_each() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a.yaml"), root.path().join("elsewhere"));
    fs::create_dir(&b).unwrap();
    let b = b.join("b.yaml");
    fs::write(&a, "v: a\n").unwrap();
    fs::write(&b, "v: b\n").unwrap();
    let link = root.path().join("config.yaml");
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let probe = Probe::start(&link);
    // Re-pointed as `ln -sfn` does: a new link renamed over the old one.
    let tmp = root.path().join("config.yaml.new");
    std::os::unix::fs::symlink(&b, &tmp).unwrap();
    fs::rename(&tmp, &link).unwrap();
    probe.expect_one("v: b\n", "symlink re-pointed to another directory");
    fs::write(&b, "v: b2\n").unwrap();
    probe.expect_one("v: b2\n", "the link's target edited in its own directory");
}

/// The kubelet's update of a mounted ConfigMap: the data goes into a new `..<timestamp>` directory, a
/// `..data_tmp` symlink to it is renamed over `..data`, and the old directory is removed. The watched file
/// is `config.yaml -> ..data/config.yaml` and never changes itself.
#[test]
fn a_kubernetes_configmap_update_calls_once() {
    let root = tempfile::tempdir().unwrap();
    let mount = root.path();
    let publish = |stamp: &str, content: &str| {
        let data = mount.join(format!("..{stamp}"));
        fs::create_dir(&data).unwrap();
        fs::write(data.join("config.yaml"), content).unwrap();
        std::os::unix::fs::symlink(format!("..{stamp}"), mount.join("..data_tmp")).unwrap();
        fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
        data
    };
    let first = publish("2026_12_04_10_00_00.1", "v: 0\n");
    std::os::unix::fs::symlink("..data/config.yaml", mount.join("config.yaml")).unwrap();
    let probe = Probe::start(&mount.join("config.yaml"));
    let second = publish("2026_12_04_10_05_00.2", "v: 7\n");
    fs::remove_dir_all(&first).unwrap();
    probe.expect_one("v: 7\n", "ConfigMap update");
    publish("2026_12_04_10_10_00.3", "v: 8\n");
    fs::remove_dir_all(&second).unwrap();
    probe.expect_one("v: 8\n", "a second ConfigMap update");
}

#[test]
fn flag_watcher_keeps_the_last_good_flags_on_an_empty_or_broken_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.yaml");
    let spec = "flags:\n  quotes.breaker: { type: strategy, options: [none, forced_open], default: none";
    fs::write(&file, format!("{spec}, value: forced_open }}\n")).unwrap();
    let flags = Flags::from_file(&file).unwrap();
    let (tx, changes) = mpsc::channel();
    flags.subscribe(move |change| tx.send(change.new.clone()).unwrap());
    let _watcher = FlagWatcher::start(&flags, &file).unwrap();
    let breaker = flags.strategy("quotes.breaker").unwrap();

    // Truncated and left empty (a writer that died half-way): the forced state stays.
    fs::OpenOptions::new().write(true).truncate(true).open(&file).unwrap();
    std::thread::sleep(QUIET);
    assert_eq!(breaker.get(), "forced_open", "an empty file is not a reload");
    fs::write(&file, "flags: [not, a, map]\n").unwrap();
    std::thread::sleep(QUIET);
    assert_eq!(breaker.get(), "forced_open", "a broken file keeps the last good flags");
    assert!(changes.try_recv().is_err(), "no change was published");

    fs::write(&file, format!("{spec}, value: none }}\n")).unwrap();
    let began = Instant::now();
    assert_eq!(changes.recv_timeout(PATIENCE).unwrap(), "none");
    eprintln!("flag reloaded after {:?}", began.elapsed());
    assert_eq!(flags.get("quotes.breaker").unwrap(), ("none".to_owned(), Source::File));
}
