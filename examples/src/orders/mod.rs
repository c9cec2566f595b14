//! The critical "place an order" route, with a degrade mode that loses nothing: `orders.ingest`.
//!
//! - `normal`: `POST /orders` applies the order to the [`Store`] (an embedded SQLite file) through the generic
//!   chaos layer and a per-call timeout, and answers `201 Created` (`200 OK` for an id stored already). A store
//!   failure (real or injected) answers `503` with `Retry-After`, and nothing was acknowledged.
//! - `capture_only`: the order is appended to the [`Journal`] (JSON lines, fsync'd) and acknowledged with
//!   `202 Accepted` and `x-orders-mode: capture_only`; the database is not touched.
//!
//! A background drainer applies the journal's entries to the store, in order, whenever the mode is `normal`
//! and the journal is not empty (so also at open, after a crash), then compacts them away; it backs off while
//! the store fails. The order's `id` is its idempotency key: the store inserts with
//! `ON CONFLICT(id) DO NOTHING`, so a replayed entry or a client's retry is applied once. After a capture-only
//! period every acknowledged order is applied exactly once, even across a `SIGKILL`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use examples::orders::{Orders, OrdersOptions};
//! let flags = brownout_degrade::Flags::new();
//! let chaos = brownout_tower::ChaosHandle::new();
//! let orders = Orders::open(std::path::Path::new("run/orders"), &flags, &chaos, OrdersOptions::default())?;
//! let app: axum::Router = axum::Router::new().merge(orders.router());
//! flags.set("orders.ingest", "capture_only").map_err(|e| e.to_string())?; // degrade: capture only
//! flags.set("orders.ingest", "normal").map_err(|e| e.to_string())?; // recover: the drainer applies the backlog
//! # drop(app); Ok(()) }
//! ```
//!
//! Metrics (the `metrics` facade): `orders_accepted_total{mode}`, `orders_applied_total`,
//! `orders_duplicates_total`, `orders_rejected_total{reason}`, the `orders_journal_backlog` gauge and the
//! `orders_journal_fsync_seconds` histogram.
#![warn(missing_docs)]

pub mod journal;
pub mod store;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use brownout_degrade::Flags;
use brownout_degrade::StrategyFlag;
use brownout_degrade::flags::FlagKind;
use brownout_tower::{Chaos, ChaosHandle, InjectedError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use tower::timeout::Timeout;

use brownout_foundation::sync::lock;

pub use self::journal::{Appended, FsyncHook, Journal, JournalEntry, Recovered};
pub use self::store::{Applied, OrderWrite, Store, StoreError, StoreErrorKind, StoreOptions, StoredOrder};

/// The flag that switches ingestion: strategy `[normal, capture_only]`, default `normal`.
pub const INGEST_FLAG: &str = "orders.ingest";

/// The response header saying which mode handled an order: `normal` or `capture_only`.
pub static MODE_HEADER: HeaderName = HeaderName::from_static("x-orders-mode");

/// The database file, the journal and the lock file inside the orders directory.
const DB_FILE: &str = "orders.sqlite3";
const JOURNAL_FILE: &str = "orders.journal";
const LOCK_FILE: &str = "orders.lock";

/// Unix time in milliseconds (0 before 1970).
pub(crate) fn unix_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An order as clients send it: `{ "id": "<idempotency key>", "symbol": "ACME", "qty": 10 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// The idempotency key: an order with an id the store holds already is not applied again.
    pub id: String,
    /// The instrument.
    pub symbol: String,
    /// The quantity.
    pub qty: i64,
}

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// The longest symbol accepted, in bytes.
pub const MAX_SYMBOL_LEN: usize = 32;
/// The largest quantity accepted.
pub const MAX_QTY: i64 = 1_000_000_000;

impl Order {
    /// Checks the fields: an id of 1 to [`MAX_ID_LEN`] bytes and a symbol of 1 to [`MAX_SYMBOL_LEN`] bytes,
    /// neither with control characters, and a quantity in `1..=MAX_QTY`.
    ///
    /// # Errors
    ///
    /// The first field that is wrong, and why.
    pub fn validate(&self) -> Result<(), String> {
        fn text(field: &str, value: &str, max: usize) -> Result<(), String> {
            if value.is_empty() || value.len() > max {
                return Err(format!("{field}: must be 1 to {max} bytes long"));
            }
            if value.chars().any(char::is_control) {
                return Err(format!("{field}: must not contain control characters"));
            }
            Ok(())
        }
        text("id", &self.id, MAX_ID_LEN)?;
        text("symbol", &self.symbol, MAX_SYMBOL_LEN)?;
        if !(1..=MAX_QTY).contains(&self.qty) {
            return Err(format!("qty: must be between 1 and {MAX_QTY}"));
        }
        Ok(())
    }
}

/// How orders are ingested, read from the [`INGEST_FLAG`] flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Apply each order to the store before acknowledging it.
    Normal,
    /// Append each order to the journal (fsync'd) and acknowledge it; the drainer applies it later.
    CaptureOnly,
}

impl Mode {
    /// `normal` or `capture_only`, as the flag and the `x-orders-mode` header spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::CaptureOnly => "capture_only",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The options of [`Orders::open`].
#[derive(Clone)]
pub struct OrdersOptions {
    /// The store's pool size, busy timeout and per-call timeout. The per-call timeout also bounds each call
    /// through the chaos layer (an injected hang or delay is cut by it).
    pub store: StoreOptions,
    /// The chaos handle whose rules the journal's writes obey (route `io/journal/write`). `None`: the handle
    /// given to [`Orders::open`]. Rules without targeting apply to the journal's writes as well as to the
    /// store, so give the journal its own handle (or target the store's rules) when a database fault must
    /// leave the journal alone.
    pub journal_chaos: Option<ChaosHandle>,
    /// Called with the duration of every durable journal append (write, flush and fsync), beside the
    /// `orders_journal_fsync_seconds` histogram: plug a latency window here.
    pub on_fsync: Option<FsyncHook>,
    /// Called with the duration and success of every store call (live orders and the drainer's), through the
    /// chaos layer and the per-call timeout: plug a latency window here to degrade on a slow or failing store.
    pub on_store_call: Option<StoreCallHook>,
    /// In normal mode, an order the store fails to take is captured into the journal instead (`202`,
    /// `x-served-from: journal`), to be applied when the store is back: the per-request fallback. Off, the
    /// caller gets the `503` (the GameDay's `--without-fallback`).
    pub fallback_to_journal: bool,
    /// How many journal entries the drainer applies before compacting them away.
    pub drain_batch: usize,
    /// How often the idle drainer looks at the mode and the backlog without being woken (a safety net: flag
    /// changes and appends wake it at once).
    pub drain_poll: Duration,
    /// In capture-only mode, the drainer applies one journal entry this often, a probe of the store (its
    /// outcome goes to [`on_store_call`](Self::on_store_call), so a trigger can see the store healthy again
    /// and end the mode); zero: no probe.
    pub probe_every: Duration,
    /// The drainer's first wait after a store failure; it doubles up to `retry_max`.
    pub retry_min: Duration,
    /// The drainer's longest wait between attempts while the store fails.
    pub retry_max: Duration,
}

impl Default for OrdersOptions {
    fn default() -> Self {
        Self {
            store: StoreOptions::default(),
            journal_chaos: None,
            on_fsync: None,
            on_store_call: None,
            fallback_to_journal: true,
            drain_batch: 256,
            drain_poll: Duration::from_secs(1),
            probe_every: Duration::from_millis(100),
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
        }
    }
}

impl fmt::Debug for OrdersOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrdersOptions")
            .field("store", &self.store)
            .field("journal_chaos", &self.journal_chaos.is_some())
            .field("on_fsync", &self.on_fsync.is_some())
            .field("on_store_call", &self.on_store_call.is_some())
            .field("fallback_to_journal", &self.fallback_to_journal)
            .field("drain_batch", &self.drain_batch)
            .field("drain_poll", &self.drain_poll)
            .field("probe_every", &self.probe_every)
            .field("retry_min", &self.retry_min)
            .field("retry_max", &self.retry_max)
            .finish()
    }
}

/// What [`Orders::place`] did with an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Normal mode: the order is stored (`201`).
    Applied,
    /// Normal mode: an order with this id was stored already; nothing changed (`200`).
    Duplicate,
    /// Capture-only mode: the order is in the journal, fsync'd (`202`).
    Captured,
    /// Capture-only mode: an order with this id is in the journal already; nothing was written (`202`).
    AlreadyCaptured,
    /// Normal mode, but the store failed: the order went to the journal instead, the fallback (`202`,
    /// `x-served-from: journal`); the drainer applies it when the store is back.
    FellBack,
}

/// Why [`Orders::place`] did not acknowledge an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceErrorKind {
    /// The order's fields are wrong (`400`).
    Invalid,
    /// Normal mode: the store failed or timed out (`503`).
    Store,
    /// Capture-only mode: the journal's write or fsync failed (`503`).
    Journal,
}

/// An order that was not acknowledged, and why.
#[derive(Debug, Clone)]
pub struct PlaceError {
    kind: PlaceErrorKind,
    message: String,
    injected: bool,
}

impl PlaceError {
    /// Why.
    pub fn kind(&self) -> PlaceErrorKind {
        self.kind
    }

    /// Whether a chaos rule injected the failure (an [`InjectedError`]).
    pub fn is_injected(&self) -> bool {
        self.injected
    }
}

impl fmt::Display for PlaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlaceError {}

/// Whether `e` (or what it wraps) is an injected fault.
fn is_injected(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(e) = current {
        if e.is::<InjectedError>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<InjectedError>())
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The counters of the orders route, as `GET /orders/stats` shows them and a GameDay reads them.
///
/// With unique ids, once the backlog is drained `applied == accepted`: every acknowledged order applied,
/// none twice. `applied` counts the store's inserts when they commit, so an insert that committed after its
/// caller timed out (answered `503`, never acknowledged) counts in `applied` and not in `accepted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrdersStats {
    /// The mode in force now.
    pub mode: Mode,
    /// Orders acknowledged as new: `201` in normal mode plus `202` captured in capture-only mode.
    pub accepted: u64,
    /// Of `accepted`, those applied directly in normal mode.
    pub accepted_normal: u64,
    /// Of `accepted`, those captured into the journal.
    pub accepted_captured: u64,
    /// Orders inserted into the store (new ids), by requests and by the drainer.
    pub applied: u64,
    /// Orders whose id was known already: stored (ignored by the store) or waiting in the journal.
    pub duplicates: u64,
    /// Requests answered `503`: the store or the journal failed.
    pub rejected: u64,
    /// Journal entries the drainer applied (or found applied already) and compacted away.
    pub drained: u64,
    /// Journal entries waiting to be applied.
    pub backlog: u64,
    /// The journal file's length in bytes.
    pub journal_bytes: u64,
}

/// Called with the duration and success of each store call (see [`OrdersOptions::on_store_call`]).
pub type StoreCallHook = Arc<dyn Fn(Duration, bool) + Send + Sync>;

/// Calls the store through its chaos layer and timeout, telling `hook` how the call went.
async fn call_store(shared: &Shared, write: OrderWrite) -> Result<Applied, tower::BoxError> {
    shared.counters.store_calls.fetch_add(1, Ordering::Relaxed);
    let began = tokio::time::Instant::now();
    let result = shared.downstream.clone().oneshot(write).await;
    if let Some(hook) = &shared.options.on_store_call {
        hook(began.elapsed(), result.is_ok());
    }
    result
}

#[derive(Debug, Default)]
struct Counters {
    /// Store calls started (live orders, fallback-free drains and probes).
    store_calls: AtomicU64,
    accepted_normal: AtomicU64,
    accepted_captured: AtomicU64,
    captured_duplicates: AtomicU64,
    rejected: AtomicU64,
    drained: AtomicU64,
}

/// The store behind the generic chaos layer, behind the per-call timeout.
type Downstream = Timeout<Chaos<Store>>;

struct Shared {
    dir: PathBuf,
    flag: StrategyFlag,
    store: Store,
    downstream: Downstream,
    journal: Journal,
    counters: Counters,
    options: OrdersOptions,
    /// Wakes the drainer: an append, a change of the flag, a shutdown.
    wake: Notify,
    stop: AtomicBool,
    /// The exclusive lock on the directory, released at shutdown.
    lock_file: Mutex<Option<std::fs::File>>,
}

/// Aborts the drainer when the last [`Orders`] handle goes.
struct DrainerGuard(Mutex<Option<JoinHandle<()>>>);

impl Drop for DrainerGuard {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.0).take() {
            task.abort();
        }
    }
}

/// The orders route: its store, its journal, its drainer and its counters. Cheap to clone; clones share
/// everything. The drainer stops when the last clone (or router) is dropped, or at [`shutdown`](Self::shutdown).
#[derive(Clone)]
pub struct Orders {
    shared: Arc<Shared>,
    drainer: Arc<DrainerGuard>,
}

impl fmt::Debug for Orders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orders").field("dir", &self.shared.dir).field("stats", &self.stats()).finish()
    }
}

/// The `orders.ingest` flag, defined if `flags` lacks it; an existing definition must offer both modes.
fn ingest_flag(flags: &Flags) -> Result<StrategyFlag, String> {
    if flags.kind(INGEST_FLAG).is_err() {
        let kind = FlagKind::Strategy(Arc::from(vec![Box::from("normal"), Box::from("capture_only")]));
        flags.define(INGEST_FLAG, kind, "normal").map_err(|e| e.to_string())?;
    }
    match flags.kind(INGEST_FLAG).map_err(|e| e.to_string())? {
        FlagKind::Strategy(options)
            if ["normal", "capture_only"].iter().all(|m| options.iter().any(|o| **o == **m)) => {}
        other => {
            return Err(format!(
                "flag {INGEST_FLAG}: must be a strategy offering `normal` and `capture_only`, found {}",
                match other {
                    FlagKind::Strategy(options) => format!("strategy [{}]", options.join(", ")),
                    other => other.name().to_owned(),
                }
            ));
        }
    }
    flags.strategy(INGEST_FLAG).map_err(|e| e.to_string())
}

impl Orders {
    /// Opens the orders route over the directory `dir` (created if missing): the SQLite file
    /// `orders.sqlite3`, the journal `orders.journal` (recovered: entries left by a crash are drained once the
    /// mode is normal) and `orders.lock`, held exclusively so two processes never share a journal. Reads the
    /// `orders.ingest` flag from `flags`, defining it (`[normal, capture_only]`, default `normal`) if missing.
    /// Store calls go through `chaos.layer()` (the generic flavour) and the per-call timeout; journal writes
    /// through `ChaosIo` named `journal` (over `options.journal_chaos`, or `chaos`). Starts the drainer.
    ///
    /// Must be called inside a tokio runtime. Blocks while it opens the files (start-up work).
    ///
    /// # Errors
    ///
    /// No runtime, the directory or a file cannot be opened, another process holds the directory, or the
    /// flag exists with another type; the message names the file.
    pub fn open(dir: &Path, flags: &Flags, chaos: &ChaosHandle, options: OrdersOptions) -> Result<Orders, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "Orders::open must be called inside a tokio runtime".to_owned())?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("{}: {e}", lock_path.display()))?;
        lock_file.try_lock().map_err(|e| {
            format!("{}: cannot lock the orders directory (is another process using it?): {e}", lock_path.display())
        })?;
        let flag = ingest_flag(flags)?;
        let store = Store::open(&dir.join(DB_FILE), &options.store).map_err(|e| e.to_string())?;
        let journal_chaos = options.journal_chaos.clone().unwrap_or_else(|| chaos.clone());
        let journal_path = dir.join(JOURNAL_FILE);
        let (journal, recovered) = Journal::open(&journal_path, &journal_chaos, options.on_fsync.clone())
            .map_err(|e| format!("orders journal: {e}"))?;
        if recovered.entries > 0 {
            tracing::info!(
                journal = %journal_path.display(),
                entries = recovered.entries,
                "orders journal: entries left from before; they are drained once the mode is normal"
            );
        }
        let downstream = Timeout::new(Chaos::new(store.clone(), chaos), options.store.call_timeout);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            flag,
            store,
            downstream,
            journal,
            counters: Counters::default(),
            options,
            wake: Notify::new(),
            stop: AtomicBool::new(false),
            lock_file: Mutex::new(Some(lock_file)),
        });
        let weak = Arc::downgrade(&shared);
        flags.subscribe(move |change| {
            if &*change.flag == INGEST_FLAG
                && let Some(shared) = weak.upgrade()
            {
                tracing::info!(flag = INGEST_FLAG, from = %change.old, to = %change.new, "orders ingest mode changed");
                shared.wake.notify_one();
            }
        });
        let task = runtime.spawn(drain_loop(shared.clone()));
        Ok(Orders { shared, drainer: Arc::new(DrainerGuard(Mutex::new(Some(task)))) })
    }

    /// The mode in force (one atomic load of the flag).
    pub fn mode(&self) -> Mode {
        mode_of(&self.shared.flag)
    }

    /// The store (the SQLite file): for checks, such as every acknowledged id being stored once.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The journal of captured orders.
    pub fn journal(&self) -> &Journal {
        &self.shared.journal
    }

    /// The counters now.
    pub fn stats(&self) -> OrdersStats {
        let c = &self.shared.counters;
        let accepted_normal = c.accepted_normal.load(Ordering::Relaxed);
        let accepted_captured = c.accepted_captured.load(Ordering::Relaxed);
        OrdersStats {
            mode: self.mode(),
            accepted: accepted_normal + accepted_captured,
            accepted_normal,
            accepted_captured,
            applied: self.shared.store.applied(),
            duplicates: self.shared.store.duplicates() + c.captured_duplicates.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            drained: c.drained.load(Ordering::Relaxed),
            backlog: self.shared.journal.backlog(),
            journal_bytes: self.shared.journal.bytes(),
        }
    }

    /// Places an order in the mode in force (see the [module documentation](self)).
    ///
    /// # Errors
    ///
    /// The order is invalid, or the store (normal mode) or the journal (capture-only mode) failed: the order
    /// was not acknowledged.
    pub async fn place(&self, order: Order) -> Result<Placed, PlaceError> {
        self.place_in(self.mode(), order).await
    }

    async fn place_in(&self, mode: Mode, order: Order) -> Result<Placed, PlaceError> {
        let c = &self.shared.counters;
        if let Err(message) = order.validate() {
            metrics::counter!("orders_rejected_total", "reason" => "invalid").increment(1);
            return Err(PlaceError { kind: PlaceErrorKind::Invalid, message, injected: false });
        }
        match mode {
            Mode::Normal => {
                let kept = self.shared.options.fallback_to_journal.then(|| order.clone());
                let write = OrderWrite { order, accepted_at_ms: unix_millis() };
                match call_store(&self.shared, write).await {
                    Ok(Applied::New) => {
                        c.accepted_normal.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("orders_accepted_total", "mode" => "normal").increment(1);
                        Ok(Placed::Applied)
                    }
                    Ok(Applied::Duplicate) => Ok(Placed::Duplicate),
                    Err(e) if kept.is_some() => {
                        tracing::debug!(error = %e, "the store failed: the order goes to the journal");
                        let order = kept.expect("checked");
                        match Box::pin(self.place_in(Mode::CaptureOnly, order)).await? {
                            Placed::Captured | Placed::AlreadyCaptured => Ok(Placed::FellBack),
                            other => Ok(other),
                        }
                    }
                    Err(e) => {
                        c.rejected.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("orders_rejected_total", "reason" => "store").increment(1);
                        let injected = is_injected(&*e);
                        tracing::warn!(error = %e, injected, "order not placed: the store failed");
                        Err(PlaceError { kind: PlaceErrorKind::Store, message: e.to_string(), injected })
                    }
                }
            }
            Mode::CaptureOnly => {
                let entry =
                    JournalEntry { id: order.id, symbol: order.symbol, qty: order.qty, accepted_at: unix_millis() };
                match self.shared.journal.append(entry).await {
                    Ok(Appended::Written) => {
                        c.accepted_captured.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("orders_accepted_total", "mode" => "capture_only").increment(1);
                        self.shared.wake.notify_one();
                        Ok(Placed::Captured)
                    }
                    Ok(Appended::AlreadyPending) => {
                        c.captured_duplicates.fetch_add(1, Ordering::Relaxed);
                        Ok(Placed::AlreadyCaptured)
                    }
                    Err(e) => {
                        c.rejected.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("orders_rejected_total", "reason" => "journal").increment(1);
                        let injected = is_injected(&e);
                        tracing::warn!(error = %e, injected, "order not captured: the journal failed");
                        Err(PlaceError { kind: PlaceErrorKind::Journal, message: e.to_string(), injected })
                    }
                }
            }
        }
    }

    /// Calls made to the store so far, counted as they start (live orders, the drainer's and its probes):
    /// what a fault on the store's chaos switch could have hit.
    pub fn store_calls(&self) -> u64 {
        self.shared.counters.store_calls.load(Ordering::Relaxed)
    }

    /// Waits until the journal is empty (the drainer applied it), for at most `within`; says whether it is.
    pub async fn drained(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.shared.journal.backlog() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the drainer (after the entry it is applying), closes the journal (later captures fail) and
    /// releases the directory's lock, so the directory can be opened again. Entries not yet applied stay in
    /// the journal for the next open.
    pub async fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        let task = lock(&self.drainer.0).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.shared.journal.close().await;
        lock(&self.shared.lock_file).take();
    }

    /// The routes: `POST /orders` (a JSON [`Order`]) and `GET /orders/stats` (the [`OrdersStats`] as JSON), to
    /// `.merge()` into an app.
    ///
    /// `POST /orders` answers `201` (stored), `200` (stored already), `202` (captured into the journal),
    /// `400` (not an order) or `503` with `Retry-After: 1` (the store or the journal failed; not acknowledged);
    /// every answer carries `x-orders-mode` and a JSON body.
    pub fn router(&self) -> Router {
        Router::new().route("/orders", post(post_order)).route("/orders/stats", get(get_stats)).with_state(self.clone())
    }
}

fn json_response(status: StatusCode, mode: Option<Mode>, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(mode) = mode {
        headers.insert(&MODE_HEADER, HeaderValue::from_static(mode.as_str()));
    }
    response
}

async fn post_order(State(orders): State<Orders>, body: Bytes) -> Response {
    let mode = orders.mode();
    let order: Order = match serde_json::from_slice(&body) {
        Ok(order) => order,
        Err(e) => {
            metrics::counter!("orders_rejected_total", "reason" => "invalid").increment(1);
            let error = format!("not an order ({{\"id\", \"symbol\", \"qty\"}}): {e}");
            return json_response(StatusCode::BAD_REQUEST, Some(mode), &serde_json::json!({ "error": error }));
        }
    };
    let id = order.id.clone();
    let (status, outcome) = match orders.place_in(mode, order).await {
        Ok(Placed::Applied) => (StatusCode::CREATED, "applied"),
        Ok(Placed::Duplicate) => (StatusCode::OK, "duplicate"),
        Ok(Placed::Captured) => (StatusCode::ACCEPTED, "captured"),
        Ok(Placed::AlreadyCaptured) => (StatusCode::ACCEPTED, "already_captured"),
        Ok(Placed::FellBack) => {
            let body = serde_json::json!({ "id": id, "status": "captured", "mode": mode, "fallback": true });
            let mut response = json_response(StatusCode::ACCEPTED, Some(mode), &body);
            response.headers_mut().insert("x-served-from", HeaderValue::from_static("journal"));
            return response;
        }
        Err(e) => {
            let status = match e.kind() {
                PlaceErrorKind::Invalid => StatusCode::BAD_REQUEST,
                PlaceErrorKind::Store | PlaceErrorKind::Journal => StatusCode::SERVICE_UNAVAILABLE,
            };
            let body = serde_json::json!({ "id": id, "error": e.to_string(), "injected": e.is_injected() });
            let mut response = json_response(status, Some(mode), &body);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            return response;
        }
    };
    json_response(status, Some(mode), &serde_json::json!({ "id": id, "status": outcome, "mode": mode }))
}

async fn get_stats(State(orders): State<Orders>) -> Response {
    let stats = serde_json::to_value(orders.stats()).unwrap_or_default();
    json_response(StatusCode::OK, None, &stats)
}

fn mode_of(flag: &StrategyFlag) -> Mode {
    if flag.get() == "capture_only" { Mode::CaptureOnly } else { Mode::Normal }
}

/// The drainer: while the mode is normal and the journal holds entries, applies them in order through the
/// chaos-wrapped store and compacts them away; backs off while the store fails; otherwise sleeps until woken.
async fn drain_loop(shared: Arc<Shared>) {
    let opts = &shared.options;
    let mut backoff = opts.retry_min;
    let mut last_probe: Option<tokio::time::Instant> = None;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let backlog = shared.journal.backlog() > 0;
        if mode_of(&shared.flag) == Mode::CaptureOnly && backlog && !opts.probe_every.is_zero() {
            // Capture-only: apply one entry now and then, a probe of the store. Its outcome reaches the store's
            // latency window, so a trigger that switched to capture-only on a slow or failing store sees it
            // healthy again; without it nothing would call the store, and the mode could never end.
            if last_probe.is_none_or(|at| at.elapsed() >= opts.probe_every) {
                last_probe = Some(tokio::time::Instant::now());
                if let Err(e) = drain_batch(&shared, 1, true).await {
                    tracing::debug!(error = %e, "orders drainer: the store probe failed");
                }
            }
            let wait = opts.probe_every.saturating_sub(last_probe.map_or(Duration::ZERO, |at| at.elapsed()));
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(wait.min(opts.drain_poll)) => {}
            }
            continue;
        }
        if mode_of(&shared.flag) == Mode::Normal && backlog {
            match drain_batch(&shared, opts.drain_batch, false).await {
                Ok(()) => backoff = opts.retry_min,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "orders drainer: backing off");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shared.wake.notified() => {}
                    }
                    backoff = (backoff * 2).min(opts.retry_max);
                }
            }
            continue;
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(opts.drain_poll) => {}
        }
    }
}

/// Applies up to one batch of entries, stopping at the first failure (or a switch to capture-only), and
/// compacts away those applied.
async fn drain_batch(shared: &Shared, limit: usize, probe: bool) -> Result<(), String> {
    let batch = shared.journal.peek(limit.max(1)).await;
    let mut done = 0;
    let mut failure = None;
    for entry in batch {
        if shared.stop.load(Ordering::Relaxed) || (!probe && mode_of(&shared.flag) != Mode::Normal) {
            break;
        }
        let write = OrderWrite {
            order: Order { id: entry.id, symbol: entry.symbol, qty: entry.qty },
            accepted_at_ms: entry.accepted_at,
        };
        match call_store(shared, write).await {
            Ok(_) => done += 1,
            Err(e) => {
                failure = Some(format!("store: {e}"));
                break;
            }
        }
    }
    if done > 0 {
        shared.journal.remove_applied(done).await.map_err(|e| format!("journal compaction: {e}"))?;
        shared.counters.drained.fetch_add(done as u64, Ordering::Relaxed);
        tracing::debug!(entries = done, backlog = shared.journal.backlog(), "orders drainer: applied and compacted");
    }
    failure.map_or(Ok(()), Err)
}
