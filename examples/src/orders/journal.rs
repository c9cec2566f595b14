//! The capture-only journal: an append-only file of JSON lines, one accepted order per line.
//!
//! An order captured while `orders.ingest` is `capture_only` is acknowledged only after its line is written
//! and fsync'd ([`Journal::append`]). Writes go through [`ChaosIo`] under the name `journal`, so chaos rules on
//! the route `io/journal/write` slow (or fail) them like a slow disk would. The time each durable append took
//! (its write, flush and fsync) goes to the `orders_journal_fsync_seconds` histogram and to an optional
//! callback.
//!
//! On open the file is read back ([`parse`]): a torn last line (a crash in the middle of a write, which was
//! never acknowledged) and lines that are not entries are skipped with a warning, never a panic; the file is
//! then rewritten clean, so new lines never glue onto a torn one.
//!
//! Entries are removed from the front once applied downstream ([`Journal::remove_applied`]): the remaining
//! ones are rewritten with [`write_atomically`] (temporary file, fsync, rename, directory fsync), so a crash
//! leaves either the old journal or the new one. A crash between the apply and the compaction leaves applied
//! entries in the journal; applying them again is harmless, because the store ignores an id it holds.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use brownout_foundation::fs::write_atomically;
use brownout_tower::{ChaosHandle, ChaosIo};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// A callback given the duration of every durable append (write, flush and fsync).
pub type FsyncHook = Arc<dyn Fn(Duration) + Send + Sync>;

/// One line of the journal: an accepted order and when it was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    /// The order's idempotency key.
    pub id: String,
    /// The instrument.
    pub symbol: String,
    /// The quantity.
    pub qty: i64,
    /// When the order was accepted (acknowledged), in Unix milliseconds.
    pub accepted_at: i64,
}

impl JournalEntry {
    /// The entry as one journal line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// What [`parse`] found in a journal's bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The entries of the complete, valid lines, in file order.
    pub entries: Vec<JournalEntry>,
    /// The bytes ended without a newline: a write torn by a crash (never acknowledged), skipped.
    pub torn_tail: bool,
    /// Complete lines that are not entries (garbage, a torn write followed by more lines), skipped.
    pub bad_lines: usize,
}

impl Parsed {
    /// Whether the bytes were a clean journal: nothing skipped.
    pub fn is_clean(&self) -> bool {
        !self.torn_tail && self.bad_lines == 0
    }
}

/// Reads a journal's bytes. Never fails and never panics: every complete line (ended by `\n`) that is an
/// entry is kept, in order; other lines are counted in [`Parsed::bad_lines`]; bytes after the last newline
/// are a torn write ([`Parsed::torn_tail`]). Empty lines are ignored.
///
/// A prefix of a valid journal parses to a prefix of its entries: the complete lines in it.
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let mut rest = bytes;
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..end];
        rest = &rest[end + 1..];
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<JournalEntry>(line) {
            Ok(entry) => parsed.entries.push(entry),
            Err(_) => parsed.bad_lines += 1,
        }
    }
    parsed.torn_tail = !rest.is_empty();
    parsed
}

/// What [`Journal::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The entry is written and fsync'd.
    Written,
    /// An entry with this id is in the journal already (a retry): nothing was written.
    AlreadyPending,
}

/// What [`Journal::open`] recovered from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Entries found (to drain).
    pub entries: usize,
    /// Whether a torn last line was skipped.
    pub torn_tail: bool,
    /// Complete lines skipped because they were not entries.
    pub bad_lines: usize,
}

/// The append-only journal file of captured orders. All operations take one async lock, so appends,
/// reads and compactions never interleave.
pub struct Journal {
    path: PathBuf,
    chaos: ChaosHandle,
    on_fsync: Option<FsyncHook>,
    state: tokio::sync::Mutex<State>,
    backlog: AtomicU64,
    bytes: AtomicU64,
}

struct State {
    /// The open file; `None` after a rewrite could not reopen it (the next append rewrites again).
    file: Option<ChaosIo<tokio::fs::File>>,
    /// Closed for good ([`Journal::close`]).
    closed: bool,
    /// The entries in the file, in order.
    pending: VecDeque<JournalEntry>,
    /// Their ids.
    ids: HashSet<String>,
    /// The file's length as far as complete, fsync'd appends go.
    len: u64,
    /// A failed append may have left part of a line: rewrite the file from `pending` before the next one.
    dirty: bool,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("backlog", &self.backlog())
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

fn open_append(path: &Path, chaos: &ChaosHandle) -> io::Result<ChaosIo<tokio::fs::File>> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    Ok(ChaosIo::new(tokio::fs::File::from_std(file), "journal", chaos))
}

fn render<'a>(entries: impl IntoIterator<Item = &'a JournalEntry>) -> Vec<u8> {
    entries.into_iter().flat_map(JournalEntry::to_line).collect()
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` and recovers its entries. A torn last line or bad
    /// lines are skipped with a warning, and the file is rewritten without them. Appends go through
    /// [`ChaosIo`] named `journal` over `chaos`; `on_fsync` is given each durable append's duration.
    ///
    /// Needs a tokio runtime (the file is a `tokio::fs::File`); the recovery itself reads synchronously.
    ///
    /// # Errors
    ///
    /// The file cannot be read, created or rewritten.
    pub fn open(path: &Path, chaos: &ChaosHandle, on_fsync: Option<FsyncHook>) -> io::Result<(Journal, Recovered)> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(with_path(path, e)),
        };
        let parsed = parse(&bytes);
        let recovered =
            Recovered { entries: parsed.entries.len(), torn_tail: parsed.torn_tail, bad_lines: parsed.bad_lines };
        let len = if parsed.is_clean() {
            bytes.len() as u64
        } else {
            tracing::warn!(
                journal = %path.display(),
                torn_tail = parsed.torn_tail,
                bad_lines = parsed.bad_lines,
                kept = parsed.entries.len(),
                "orders journal: skipped what a crash left half-written; rewriting it clean"
            );
            let clean = render(&parsed.entries);
            write_atomically(path, &clean).map_err(|e| with_path(path, e))?;
            clean.len() as u64
        };
        let file = open_append(path, chaos).map_err(|e| with_path(path, e))?;
        let ids = parsed.entries.iter().map(|e| e.id.clone()).collect();
        let journal = Journal {
            path: path.to_path_buf(),
            chaos: chaos.clone(),
            on_fsync,
            backlog: AtomicU64::new(parsed.entries.len() as u64),
            bytes: AtomicU64::new(len),
            state: tokio::sync::Mutex::new(State {
                file: Some(file),
                closed: false,
                pending: parsed.entries.into(),
                ids,
                len,
                dirty: false,
            }),
        };
        journal.publish_backlog();
        Ok((journal, recovered))
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries waiting to be applied downstream.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// The journal file's length in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn publish_backlog(&self) {
        metrics::gauge!("orders_journal_backlog").set(self.backlog() as f64);
    }

    fn sync_counts(&self, state: &State) {
        self.backlog.store(state.pending.len() as u64, Ordering::Relaxed);
        self.bytes.store(state.len, Ordering::Relaxed);
        self.publish_backlog();
    }

    /// Appends `entry` and fsyncs it; only then does it return `Ok(Appended::Written)` and the order may be
    /// acknowledged. An entry whose id is in the journal already is not written again
    /// ([`Appended::AlreadyPending`]).
    ///
    /// # Errors
    ///
    /// The write or the fsync failed (or a chaos rule on `io/journal/write` failed it), or the journal is
    /// closed. Nothing is acknowledged then; the next append first repairs what a failed write may have left.
    pub async fn append(&self, entry: JournalEntry) -> io::Result<Appended> {
        let line = entry.to_line();
        let mut state = self.state.lock().await;
        if state.ids.contains(&entry.id) {
            return Ok(Appended::AlreadyPending);
        }
        if state.closed {
            return Err(io::Error::other("the orders journal is closed"));
        }
        if state.dirty || state.file.is_none() {
            self.rewrite(&mut state, 0).await?;
        }
        let Some(file) = state.file.as_mut() else {
            return Err(io::Error::other("the orders journal is closed"));
        };
        let start = tokio::time::Instant::now();
        let written = async {
            file.write_all(&line).await?;
            file.flush().await?;
            file.get_mut().sync_data().await
        }
        .await;
        if let Err(e) = written {
            state.dirty = true;
            return Err(e);
        }
        let took = start.elapsed();
        metrics::histogram!("orders_journal_fsync_seconds").record(took.as_secs_f64());
        if let Some(hook) = &self.on_fsync {
            hook(took);
        }
        state.len += line.len() as u64;
        state.ids.insert(entry.id.clone());
        state.pending.push_back(entry);
        self.sync_counts(&state);
        Ok(Appended::Written)
    }

    /// The first `max` entries waiting to be applied, in order.
    pub async fn peek(&self, max: usize) -> Vec<JournalEntry> {
        self.state.lock().await.pending.iter().take(max).cloned().collect()
    }

    /// Removes the first `n` entries (applied downstream) by rewriting the rest atomically.
    ///
    /// # Errors
    ///
    /// The rewrite failed: the journal is unchanged and still holds the `n` entries (applying them again later
    /// is harmless).
    pub async fn remove_applied(&self, n: usize) -> io::Result<()> {
        let mut state = self.state.lock().await;
        self.rewrite(&mut state, n).await
    }

    /// Rewrites the file atomically with the pending entries less the first `skip`, and reopens it.
    async fn rewrite(&self, state: &mut State, skip: usize) -> io::Result<()> {
        if state.closed {
            return Err(io::Error::other("the orders journal is closed"));
        }
        let skip = skip.min(state.pending.len());
        let bytes = render(state.pending.iter().skip(skip));
        let len = bytes.len() as u64;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(io::Error::other)?
            .map_err(|e| with_path(&self.path, e))?;
        for entry in state.pending.drain(..skip) {
            state.ids.remove(&entry.id);
        }
        state.len = len;
        self.sync_counts(state);
        // The rename replaced the file: appends must go to the new one, never to the old handle.
        state.file = None;
        state.dirty = true;
        state.file = Some(open_append(&self.path, &self.chaos).map_err(|e| with_path(&self.path, e))?);
        state.dirty = false;
        Ok(())
    }

    /// Closes the file: later appends fail. Entries stay in the file for the next open.
    pub async fn close(&self) {
        let mut state = self.state.lock().await;
        state.closed = true;
        state.file = None;
    }
}
