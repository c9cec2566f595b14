//! Reloading a file when its content changes, as editors, scripts and Kubernetes change it.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::error::FlagError;
use super::registry::Flags;

/// Events that arrive within this window of each other are folded into one read.
pub(crate) const SETTLE: Duration = Duration::from_millis(100);
/// The longest a stream of events can delay a read.
const SETTLE_MAX: Duration = Duration::from_secs(1);
/// How often the watcher re-checks its watches and the file's identity without an event.
pub(crate) const RESCAN: Duration = Duration::from_secs(1);

enum Message {
    Event(notify::Result<Event>),
    Stop,
}

/// Calls a function with a file's bytes each time its content changes, on a thread of its own, until dropped:
/// the machinery behind [`FlagWatcher`], for any file a service reloads (its chaos rules, for example).
///
/// What it promises:
/// - **New content, once.** Opens, reads and closes after reading are ignored; a burst of events (a truncate
///   then a write, a write then a rename) settles for 100 ms (at most 1 s) and is read once; content equal
///   to the last content read calls nothing. Reading the file (the service itself, `cat`, a backup) never
///   reloads it.
/// - **Every way a file is replaced:** written in place, renamed over (editors), truncated then written,
///   deleted and re-created, its directory removed and re-created, a symlink re-pointed, and the Kubernetes
///   ConfigMap update (a new `..<timestamp>` directory and a `..data` symlink renamed over the old one, the
///   watched file a symlink through `..data`). The watch is on the file's directory, its parent, and the
///   directory the file resolves to; every second the watcher also compares the file's identity (device,
///   inode, size, modification time) with the last it saw, a backstop for anything inotify cannot report.
/// - **A missing file keeps the last good.** A deleted or unreadable file calls nothing (the last content
///   stays in force) until a file with new content appears.
pub struct FileWatcher {
    stop: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for FileWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatcher").field("path", &self.path).finish()
    }
}

impl FileWatcher {
    /// Starts watching `path`. `on_change` first runs once on the calling thread with the content at start
    /// (read after the watch is in place, so no edit can slip between the two; skipped if the file cannot be
    /// read), then on the watch thread with each new content. A caller that already loaded the file gets
    /// the same bytes again: loaders that ignore identical content make that free.
    ///
    /// Errors (no file name in the path, a directory that does not exist or cannot be watched) say why, not
    /// which file: the caller knows it.
    pub fn start(path: impl AsRef<Path>, mut on_change: impl FnMut(&[u8]) + Send + 'static) -> std::io::Result<Self> {
        let path = std::path::absolute(path.as_ref())?;
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the directory {} does not exist", dir.display()),
            ));
        }
        let (tx, rx) = mpsc::channel();
        let mut state = State {
            path: path.clone(),
            name,
            dir,
            tx: tx.clone(),
            watcher: None,
            watched: Vec::new(),
            last: None,
            identity: None,
            gone: false,
        };
        state.rewatch()?;
        if let Some(bytes) = state.read_new() {
            on_change(&bytes);
        }
        let thread = std::thread::Builder::new()
            .name("brownout-file-watch".into())
            .spawn(move || state.run(&rx, &mut on_change))?;
        Ok(Self { stop: tx, thread: Some(thread), path })
    }

    /// The watched file (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileWatcher {
    fn drop(&mut self) {
        let _ = self.stop.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A file's identity as `stat` reports it: a change means the content may have changed.
type Identity = (u64, u64, u64, Option<SystemTime>);

fn identity(path: &Path) -> Option<Identity> {
    let meta = std::fs::metadata(path).ok()?;
    let (dev, ino) = dev_ino(&meta);
    Some((dev, ino, meta.len(), meta.modified().ok()))
}

#[cfg(unix)]
fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dev_ino(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// A directory's identity for the watch set: device and inode only (its size and time change with its
/// entries, which needs no new watch).
fn dir_identity(path: &Path) -> Option<Identity> {
    identity(path).map(|(dev, ino, ..)| (dev, ino, 0, None))
}

/// The watch thread's state.
struct State {
    path: PathBuf,
    name: std::ffi::OsString,
    /// The file's directory, as given.
    dir: PathBuf,
    tx: mpsc::Sender<Message>,
    watcher: Option<notify::RecommendedWatcher>,
    /// The directories watched, with their identity when the watch was made (a directory removed and
    /// re-created has a new one, and needs a new watch).
    watched: Vec<(PathBuf, Option<Identity>)>,
    /// The last content read.
    last: Option<Vec<u8>>,
    /// The file's identity at the last read.
    identity: Option<Identity>,
    /// The file was missing at the last look (logged once).
    gone: bool,
}

impl State {
    fn run(mut self, rx: &mpsc::Receiver<Message>, on_change: &mut impl FnMut(&[u8])) {
        loop {
            match rx.recv_timeout(RESCAN) {
                Ok(Message::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Ok(Message::Event(event)) => {
                    if !self.concerns_us(&event) {
                        continue;
                    }
                    if !self.settle(rx) {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // The backstop: nothing to do unless a watch went stale or the file's identity moved.
                    let stale = self.watched_dirs() != self.watched;
                    if !stale && identity(&self.path) == self.identity {
                        continue;
                    }
                }
            }
            if let Err(e) = self.rewatch() {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot renew the file watch");
            }
            if let Some(bytes) = self.read_new() {
                on_change(&bytes);
            }
        }
    }

    /// Waits until no event came for [`SETTLE`] (at most [`SETTLE_MAX`]). `false`: stop.
    fn settle(&self, rx: &mpsc::Receiver<Message>) -> bool {
        let deadline = Instant::now() + SETTLE_MAX;
        loop {
            let wait = SETTLE.min(deadline.saturating_duration_since(Instant::now()));
            if wait.is_zero() {
                return true;
            }
            match rx.recv_timeout(wait) {
                Ok(Message::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return false,
                Ok(Message::Event(_)) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => return true,
            }
        }
    }

    /// Is this event about our file, its directory, or the links it resolves through? Reads are not.
    fn concerns_us(&self, event: &notify::Result<Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "file watch error; checking the file");
                return true;
            }
        };
        if event.need_rescan() {
            return true;
        }
        match event.kind {
            // A writer closed the file: its write is complete.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            // Opens, reads, closes after reading.
            EventKind::Access(_) => return false,
            _ => {}
        }
        let target_name = std::fs::canonicalize(&self.path).ok().and_then(|p| p.file_name().map(|n| n.to_owned()));
        event.paths.iter().any(|p| {
            let name = p.file_name();
            name == Some(self.name.as_os_str())
                // The directory itself, removed or re-created (seen from its parent).
                || p == &self.dir
                // Kubernetes' `..data` link and `..<timestamp>` directories.
                || name.is_some_and(|n| n.as_encoded_bytes().starts_with(b".."))
                // The file the path resolves to, in its own directory.
                || (name.is_some() && name == target_name.as_deref())
        })
    }

    /// The directories to watch now: the file's, its parent (to see the directory removed and re-created),
    /// and the one the file resolves to through symlinks; those that exist.
    fn watched_dirs(&self) -> Vec<(PathBuf, Option<Identity>)> {
        let mut dirs = vec![self.dir.clone()];
        dirs.extend(self.dir.parent().map(Path::to_path_buf));
        let target_dir = std::fs::canonicalize(&self.path).ok().and_then(|p| p.parent().map(Path::to_path_buf));
        if let Some(target_dir) = target_dir
            && !dirs.contains(&target_dir)
            && std::fs::canonicalize(&self.dir).ok().as_ref() != Some(&target_dir)
        {
            dirs.push(target_dir);
        }
        dirs.into_iter().filter(|d| d.is_dir()).map(|d| (dir_identity(&d), d)).map(|(id, d)| (d, id)).collect()
    }

    /// Makes a new set of watches if the directories to watch changed.
    fn rewatch(&mut self) -> std::io::Result<()> {
        let dirs = self.watched_dirs();
        if dirs == self.watched && self.watcher.is_some() {
            return Ok(());
        }
        let tx = self.tx.clone();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(Message::Event(event));
        })
        .map_err(std::io::Error::other)?;
        for (dir, _) in &dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive).map_err(std::io::Error::other)?;
        }
        self.watcher = Some(watcher);
        self.watched = dirs;
        Ok(())
    }

    /// The file's content if it differs from the last content read.
    fn read_new(&mut self) -> Option<Vec<u8>> {
        let before = identity(&self.path);
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) => {
                if !self.gone {
                    tracing::warn!(
                        file = %self.path.display(), error = %e,
                        "cannot read the watched file; the last good content stays in force"
                    );
                }
                self.gone = true;
                self.identity = None;
                return None;
            }
        };
        self.gone = false;
        self.identity = before;
        if self.last.as_deref() == Some(&bytes[..]) {
            return None;
        }
        self.last = Some(bytes.clone());
        Some(bytes)
    }
}

/// Reloads a flag file into [`Flags`] each time its content changes, until dropped (see [`FileWatcher`]). A
/// file that fails to load — an empty file among them — is reported (a `tracing` warning naming file, field
/// and reason) and the last good flags stay in force.
pub struct FlagWatcher {
    inner: FileWatcher,
}

impl std::fmt::Debug for FlagWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagWatcher").field("path", &self.inner.path).finish()
    }
}

impl FlagWatcher {
    /// Starts watching `path` for `flags`, loading its content at start (a no-op for flags that already hold
    /// it).
    pub fn start(flags: &Flags, path: impl AsRef<Path>) -> Result<Self, FlagError> {
        let path = path.as_ref().to_path_buf();
        let (flags, file) = (flags.clone(), path.clone());
        // A failed load keeps the last good flags and has logged why.
        let inner = FileWatcher::start(&path, move |bytes| {
            let _ = flags.load_bytes(&file, bytes);
        })
        .map_err(|e| FlagError::new("", format!("cannot watch the file: {e}")).in_file(Some(&path)))?;
        Ok(Self { inner })
    }
}
