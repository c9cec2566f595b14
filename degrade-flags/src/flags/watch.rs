//! Reloading the flag file when it changes.
//!
//! The watch is on the file's directory, not the file: editors and Kubernetes ConfigMaps replace a file by
//! writing another and renaming it over, which a watch on the old inode would miss.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::error::FlagError;
use super::registry::Flags;

/// Changes that arrive within this window are folded into one reload.
const SETTLE: Duration = Duration::from_millis(50);

/// Calls a function after every change of one file, on a thread of its own, until dropped: the machinery
/// behind [`FlagWatcher`], for any file a service reloads (its chaos rules, for example).
///
/// A burst of events (a write, then a rename over the file) settles for 50 ms and makes one call. The watch is
/// on the file's directory, so a file replaced by a rename is still seen.
pub struct FileWatcher {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for FileWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatcher").field("path", &self.path).finish()
    }
}

impl FileWatcher {
    /// Starts watching `path`; `on_change` runs on the watch thread after each settled change. Errors (no file
    /// name in the path, a directory that cannot be watched) say why, not which file: the caller knows it.
    pub fn start(path: impl AsRef<Path>, mut on_change: impl FnMut() + Send + 'static) -> std::io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_os_string())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"))?;
        let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .map_err(std::io::Error::other)?;
        watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(std::io::Error::other)?;
        let thread = std::thread::Builder::new().name("brownout-file-watch".into()).spawn(move || {
            // The channel closes when the watcher is dropped: that ends the loop.
            while let Ok(event) = rx.recv() {
                let ours = match event {
                    Ok(event) => event.paths.iter().any(|p| p.file_name() == Some(name.as_os_str())),
                    Err(e) => {
                        tracing::warn!(error = %e, "file watch error");
                        false
                    }
                };
                if !ours {
                    continue;
                }
                // Let a burst of events (write, rename) settle, then call once.
                std::thread::sleep(SETTLE);
                while rx.try_recv().is_ok() {}
                on_change();
            }
        })?;
        Ok(Self { watcher: Some(watcher), thread: Some(thread), path })
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileWatcher {
    fn drop(&mut self) {
        drop(self.watcher.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reloads a flag file into [`Flags`] on every change, until dropped. A file that fails to load is reported
/// (a `tracing` warning naming file, field and reason) and the last good flags stay in force.
pub struct FlagWatcher {
    inner: FileWatcher,
}

impl std::fmt::Debug for FlagWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagWatcher").field("path", &self.inner.path).finish()
    }
}

impl FlagWatcher {
    /// Starts watching `path` for `flags`.
    pub fn start(flags: &Flags, path: impl AsRef<Path>) -> Result<Self, FlagError> {
        let path = path.as_ref().to_path_buf();
        let (flags, file) = (flags.clone(), path.clone());
        // A failed load keeps the last good flags and has logged why.
        let inner = FileWatcher::start(&path, move || {
            let _ = flags.load_file(&file);
        })
        .map_err(|e| FlagError::new("", format!("cannot watch the file: {e}")).in_file(Some(&path)))?;
        Ok(Self { inner })
    }
}
