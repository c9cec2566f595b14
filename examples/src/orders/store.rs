//! The downstream of the orders route: an embedded SQLite database file.
//!
//! [`Store`] keeps a small pool of connections (a fixed set, handed out under a tokio [`Semaphore`]), each in
//! WAL mode with `synchronous = FULL` (a commit is on disk when it returns) and a `busy_timeout`. Every query
//! runs on tokio's blocking pool (`spawn_blocking`) under a per-call timeout that covers the wait for a
//! connection too. A query cut by the timeout finishes on its blocking thread and gives its connection back.
//!
//! Applying an order is `INSERT ... ON CONFLICT(id) DO NOTHING`: the order's id is its idempotency key, so an
//! order applied twice (a client's retry, a journal entry replayed after a crash) is stored once and the
//! second apply reports [`Applied::Duplicate`].
//!
//! [`Store`] is a tower `Service<OrderWrite>`, so the generic chaos layer (`ChaosHandle::layer()`) can stand in
//! front of it: injected errors, hangs and delays then meet this client, its pool and its timeouts.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use brownout_foundation::sync::lock;
use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Order;

/// How the [`Store`] connects and how long a call may take.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How many connections the pool holds (at least 1). Calls beyond that wait for one, within their timeout.
    pub pool_size: usize,
    /// SQLite's `busy_timeout`: how long a connection waits for another one's write lock before failing.
    pub busy_timeout: Duration,
    /// The per-call timeout: waiting for a connection plus running the query.
    pub call_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { pool_size: 4, busy_timeout: Duration::from_secs(2), call_timeout: Duration::from_millis(500) }
    }
}

/// One order to apply, with the time it was accepted (Unix milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderWrite {
    /// The order; its `id` is the idempotency key.
    pub order: Order,
    /// When the service accepted it (acknowledged it to the client), in Unix milliseconds.
    pub accepted_at_ms: i64,
}

/// What applying an order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The order was new: it is stored now.
    New,
    /// An order with this id was stored already: nothing changed.
    Duplicate,
}

/// A row of the `orders` table.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOrder {
    /// The order as stored.
    pub order: Order,
    /// When the order was accepted (Unix milliseconds).
    pub accepted_at_ms: i64,
    /// When the order was applied to the store (Unix milliseconds).
    pub applied_at_ms: i64,
}

/// What went wrong in a [`Store`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The database could not be opened or prepared.
    Open,
    /// The call did not finish within its timeout (waiting for a connection, or the query).
    Timeout,
    /// SQLite answered with an error (a locked database past `busy_timeout`, an I/O error, a constraint).
    Query,
    /// The query's blocking task failed (it panicked).
    Task,
}

/// The error of a [`Store`] call: its kind and SQLite's (or the timeout's) message.
#[derive(Debug, Clone)]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// What went wrong.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            StoreErrorKind::Open => "cannot open the order store",
            StoreErrorKind::Timeout => "order store call timed out",
            StoreErrorKind::Query => "order store query failed",
            StoreErrorKind::Task => "order store task failed",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::new(StoreErrorKind::Query, e.to_string())
    }
}

/// The SQLite order store: a pool of connections to one database file. Cheap to clone; clones share the pool
/// and the counters.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    call_timeout: Duration,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    applied: AtomicU64,
    duplicates: AtomicU64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("idle", &self.inner.permits.available_permits())
            .field("call_timeout", &self.inner.call_timeout)
            .field("applied", &self.applied())
            .field("duplicates", &self.duplicates())
            .finish()
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY NOT NULL,
    symbol TEXT NOT NULL,
    qty INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    applied_at INTEGER NOT NULL
)";

const INSERT: &str = "INSERT INTO orders (id, symbol, qty, accepted_at, applied_at) VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT(id) DO NOTHING";

fn connect(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "the order store is not in WAL mode");
    }
    // A commit is durable when it returns: the journal entry it replaces may be compacted away right after.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database file `path` with `options.pool_size` connections, in WAL mode,
    /// and creates the `orders` table if it is missing. Blocking: call it at start-up (or on a blocking
    /// thread).
    ///
    /// # Errors
    ///
    /// The file cannot be opened or the schema cannot be created ([`StoreErrorKind::Open`]).
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::new(StoreErrorKind::Open, format!("{}: {e}", path.display()));
        let size = options.pool_size.max(1);
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            idle.push(connect(path, options.busy_timeout).map_err(open_err)?);
        }
        idle[0].execute_batch(SCHEMA).map_err(open_err)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                idle: Mutex::new(idle),
                permits: Arc::new(Semaphore::new(size)),
                call_timeout: options.call_timeout,
                counts: Arc::default(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Orders this store inserted (new ids), counted when the insert committed, even when the caller had
    /// stopped waiting (a timeout): this is the truth of what the database holds.
    pub fn applied(&self) -> u64 {
        self.inner.counts.applied.load(Ordering::Relaxed)
    }

    /// Applies whose id was stored already (ignored by `ON CONFLICT DO NOTHING`).
    pub fn duplicates(&self) -> u64 {
        self.inner.counts.duplicates.load(Ordering::Relaxed)
    }

    /// Stores `write.order` unless an order with its id is stored already; says which.
    ///
    /// # Errors
    ///
    /// SQLite's error, or a timeout (the insert may still commit after it: the id makes a retry safe).
    pub async fn apply(&self, write: OrderWrite) -> Result<Applied, StoreError> {
        let counts = self.inner.counts.clone();
        self.run(move |conn| {
            let applied_at = super::unix_millis();
            let changed = conn.execute(
                INSERT,
                params![write.order.id, write.order.symbol, write.order.qty, write.accepted_at_ms, applied_at],
            )?;
            Ok(if changed == 1 {
                counts.applied.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("orders_applied_total").increment(1);
                Applied::New
            } else {
                counts.duplicates.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("orders_duplicates_total").increment(1);
                Applied::Duplicate
            })
        })
        .await
    }

    /// The stored order with this id, if any.
    ///
    /// # Errors
    ///
    /// SQLite's error, or a timeout.
    pub async fn get(&self, id: &str) -> Result<Option<StoredOrder>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn.prepare("SELECT id, symbol, qty, accepted_at, applied_at FROM orders WHERE id = ?1")?;
            let mut rows = stmt.query_map([id], row_to_order)?;
            rows.next().transpose()
        })
        .await
    }

    /// Every stored order, by id.
    ///
    /// # Errors
    ///
    /// SQLite's error, or a timeout.
    pub async fn all(&self) -> Result<Vec<StoredOrder>, StoreError> {
        self.run(|conn| {
            let mut stmt = conn.prepare("SELECT id, symbol, qty, accepted_at, applied_at FROM orders ORDER BY id")?;
            let rows = stmt.query_map([], row_to_order)?;
            rows.collect()
        })
        .await
    }

    /// How many orders are stored.
    ///
    /// # Errors
    ///
    /// SQLite's error, or a timeout.
    pub async fn count(&self) -> Result<u64, StoreError> {
        self.run(|conn| conn.query_row("SELECT COUNT(*) FROM orders", [], |row| row.get::<_, i64>(0)))
            .await
            .map(|n| u64::try_from(n).unwrap_or(0))
    }

    /// Runs `f` on a pooled connection on the blocking pool, within the call timeout.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let work = async move {
            let permit = inner
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| StoreError::new(StoreErrorKind::Task, "the pool is closed"))?;
            let conn = lock(&inner.idle)
                .pop()
                .ok_or_else(|| StoreError::new(StoreErrorKind::Task, "no idle connection under a permit"))?;
            let pooled = Pooled { conn: Some(conn), inner: inner.clone(), _permit: permit };
            tokio::task::spawn_blocking(move || {
                let result = pooled.conn.as_ref().map(f);
                drop(pooled);
                result
            })
            .await
            .map_err(|e| StoreError::new(StoreErrorKind::Task, e.to_string()))?
            .ok_or_else(|| StoreError::new(StoreErrorKind::Task, "no connection"))?
            .map_err(StoreError::from)
        };
        match tokio::time::timeout(self.inner.call_timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                Err(StoreError::new(StoreErrorKind::Timeout, format!("no answer within {:?}", self.inner.call_timeout)))
            }
        }
    }
}

fn row_to_order(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredOrder> {
    Ok(StoredOrder {
        order: Order { id: row.get(0)?, symbol: row.get(1)?, qty: row.get(2)? },
        accepted_at_ms: row.get(3)?,
        applied_at_ms: row.get(4)?,
    })
}

/// A connection out of the pool: back into it when dropped, before its permit is released.
struct Pooled {
    conn: Option<Connection>,
    inner: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            lock(&self.inner.idle).push(conn);
        }
    }
}

impl tower::Service<OrderWrite> for Store {
    type Response = Applied;
    type Error = StoreError;
    type Future = Pin<Box<dyn Future<Output = Result<Applied, StoreError>> + Send>>;

    /// Always ready: the pool's limit is waited for inside the call, under its timeout.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, write: OrderWrite) -> Self::Future {
        let store = self.clone();
        Box::pin(async move { store.apply(write).await })
    }
}
