//! The demo service as a real server: the library behind the `http_service` example.
//!
//! [`Service::start`] installs the Prometheus recorder, loads the degrade flags and the chaos rules from their
//! files, watches both files for changes, and builds the router: the demo app's `GET /quote/{symbol}`, plus
//! `GET /metrics` (Prometheus text format) and `GET /healthz`, and with `--admin-token-file` chaos-tower's admin
//! API at `/admin` (rules, flags and the provider's breaker; audited to `--admin-audit-log`). [`serve`] runs
//! it until a shutdown signal.
//!
//! A rules or flag file that fails to load on a change is logged (file, field and reason) and the last good
//! rules or flags stay in force; [`Service::rules_status`] counts the reloads and keeps the last error.
//!
//! With budgets, the month-to-date usage is kept in `--budget-checkpoint` (default
//! [`DEFAULT_BUDGET_CHECKPOINT`]): loaded at start, saved every [`BUDGET_CHECKPOINT_INTERVAL`] while requests
//! are charged, and at shutdown ([`BudgetCheckpoint::save`] on SIGTERM or Ctrl-C, see [`shutdown_signal`]).
//! A `kill -9` loses at most the last interval's charges.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use brownout_cost::budget::{BudgetMonitor, BudgetSet, LogSink, MetricsSink};
use brownout_degrade::{FileWatcher, FlagWatcher, Flags};
use brownout_tower::ChaosHandle;
use brownout_tower::admin::{AdminApi, AuditLog, TokenSet};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::util::Either;

use crate::demo;

mod cli;

pub use cli::Cli;

/// The default `--listen` address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default `--rules` file.
pub const DEFAULT_RULES: &str = "configs/chaos/quote-provider.yaml";
/// The default `--flags` file.
pub const DEFAULT_FLAGS: &str = "configs/feature_flags.yaml";
/// The default `--admin-audit-log` file.
pub const DEFAULT_ADMIN_AUDIT_LOG: &str = "admin-audit.jsonl";

/// The budgets the requests are charged to, when the directory exists (`--budgets`).
pub const DEFAULT_BUDGETS: &str = "configs/budgets";
/// The default `--budget-checkpoint` file (in the working directory): the budgets' month-to-date usage.
pub const DEFAULT_BUDGET_CHECKPOINT: &str = "budget-checkpoint.json";
/// How often the budget checkpoint is saved while requests are charged: a `kill -9` loses at most this much
/// of the budgets' usage.
pub const BUDGET_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// The strategy flag that forces the provider's breaker (`none`, `forced_open`, …).
pub const BREAKER_FLAG: &str = "quotes.breaker";

/// The `http_service` options: its command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--listen ADDR`: where to serve (default `127.0.0.1:8080`; port 0 picks a free one).
    pub listen: SocketAddr,
    /// `--rules FILE`: the chaos rules, reloaded on change (default `configs/chaos/quote-provider.yaml`).
    pub rules: PathBuf,
    /// `--flags FILE`: the degrade flags, reloaded on change (default `configs/feature_flags.yaml`).
    pub flags: PathBuf,
    /// The demo service's timeout on its dependency (250 ms, as in the GameDay).
    pub timeout: Duration,
    /// `--admin-token-file FILE`: the bearer tokens of the admin API (see [`TokenSet`]); with it the API is
    /// mounted at `/admin`, without it `/admin` answers 404.
    pub admin_token_file: Option<PathBuf>,
    /// `--admin-audit-log FILE`: where the admin API appends its audit lines (default `admin-audit.jsonl`).
    pub admin_audit_log: PathBuf,
    /// `--budgets DIR`: budget files the requests are charged to (shown by `GET /admin/budgets`, with
    /// `budget_*` metrics). Default `configs/budgets` when that directory exists; an explicit directory
    /// that does not load is an error.
    pub budgets: Option<PathBuf>,
    /// `--budget-checkpoint FILE`: where the budgets' month-to-date usage is kept across restarts (default
    /// `budget-checkpoint.json` in the working directory; only with budgets). Loaded at start (a corrupt one is
    /// moved aside as `FILE.corrupt-<unix seconds>` and the service refuses to start: starting again counts the
    /// month from zero), saved every [`BUDGET_CHECKPOINT_INTERVAL`] while requests are charged, and at shutdown
    /// (SIGTERM, Ctrl-C). The file must be writable at start.
    pub budget_checkpoint: PathBuf,
    /// `--bare`: serve `/quote/{symbol}` with none of Brownout's layers ([`demo::bare_router`]), the baseline of
    /// the end-to-end benchmark. The rules and flags still load (and `/metrics`, `/healthz` stay) but nothing
    /// on the request path reads them; no admin API.
    pub bare: bool,
    /// `--orders-dir DIR`: where the orders route keeps its SQLite store and its journal; with it the demo
    /// serves `POST /orders` and `GET /orders/stats`, without it they answer 404 (the orders need a place
    /// that survives restarts, which only the operator can name).
    pub orders_dir: Option<PathBuf>,
    /// Off with `--without-degrade`: no degrade triggers (see `demo::degrade`), so nothing degrades by itself.
    pub degrade: bool,
    /// `--provider-latency DURATION`: how long the simulated provider takes (default 1ms; `0ms` answers at once,
    /// so an overhead measurement sees the service's own cost).
    pub provider_latency: Duration,
    /// `--cpu-clock thread|wall`: how the cost meter measures a request's CPU (default `thread`: the thread CPU
    /// clock, apportioned over the polls by their TSC time, `CostLayer`'s default; `wall`: the request's wall
    /// time, an estimate that reads no CPU clock and charges a request its waits).
    pub thread_cpu: bool,
    /// `--header-read-timeout DURATION`: how long a connection may take to send a whole request head, from
    /// when the server starts waiting for it (default [`DEFAULT_HEADER_READ_TIMEOUT`], 10 s); then it is
    /// closed. It also closes a keep-alive connection left idle that long.
    pub header_read_timeout: Duration,
    /// `--body-read-timeout DURATION`: how long a request may take to send its whole body, from the end of its
    /// head (default [`DEFAULT_BODY_READ_TIMEOUT`], 30 s); then reading the body fails, the request is
    /// answered with an error and the connection is closed.
    pub body_read_timeout: Duration,
}

/// The default `--header-read-timeout`: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The default `--body-read-timeout`: 30 s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rules: PathBuf::from(DEFAULT_RULES),
            flags: PathBuf::from(DEFAULT_FLAGS),
            timeout: Duration::from_millis(250),
            admin_token_file: None,
            admin_audit_log: PathBuf::from(DEFAULT_ADMIN_AUDIT_LOG),
            budgets: None,
            budget_checkpoint: PathBuf::from(DEFAULT_BUDGET_CHECKPOINT),
            bare: false,
            orders_dir: None,
            degrade: true,
            provider_latency: demo::PROVIDER_LATENCY,
            thread_cpu: true,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

impl Options {
    /// Parses the command line (without the program name) with [`Cli`]. The error prints clap's message (with
    /// `--help` and `--version` as "errors" that print to standard output); `exit()` on it exits 0 or 2.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, clap::Error> {
        use clap::Parser as _;
        let argv = std::iter::once("http_service".to_owned()).chain(args);
        Cli::try_parse_from(argv).map(Cli::options)
    }
}

/// The budget monitor over `dir` (or over `configs/budgets` when it exists, for `None`), publishing
/// `budget_*` metrics and logging alerts, its month-to-date usage restored from `checkpoint` and saved there
/// at most every [`BUDGET_CHECKPOINT_INTERVAL`] by its records.
fn load_budgets(dir: Option<&Path>, checkpoint: &Path) -> Result<Option<BudgetCheckpoint>, String> {
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None if Path::new(DEFAULT_BUDGETS).is_dir() => PathBuf::from(DEFAULT_BUDGETS),
        None => return Ok(None),
    };
    let set = BudgetSet::load_dir(&dir).map_err(|e| format!("--budgets {}: {e}", dir.display()))?;
    let now = SystemTime::now();
    let monitor = BudgetMonitor::open(Arc::new(set), checkpoint, now)
        .map_err(|e| format!("--budget-checkpoint: {e}; starting again counts the month from zero"))?
        .save_every(BUDGET_CHECKPOINT_INTERVAL)
        .with_sink(LogSink)
        .with_sink(MetricsSink::new());
    // Fail now, not at the first request, if the checkpoint cannot be written.
    monitor.save(now).map_err(|e| format!("--budget-checkpoint: cannot write: {e}"))?;
    tracing::info!(dir = %dir.display(), checkpoint = %checkpoint.display(), "requests charged to the budgets");
    Ok(Some(BudgetCheckpoint { monitor: Arc::new(Mutex::new(monitor)), path: checkpoint.to_path_buf() }))
}

/// The budget monitor and its month-to-date checkpoint file: a cheap `Clone` handle, to save at shutdown.
#[derive(Debug, Clone)]
pub struct BudgetCheckpoint {
    monitor: Arc<Mutex<BudgetMonitor>>,
    path: PathBuf,
}

impl BudgetCheckpoint {
    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Saves the budgets' month-to-date usage now (atomically: the file holds the old or the new state).
    pub fn save(&self) -> Result<(), String> {
        self.monitor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .save(SystemTime::now())
            .map_err(|e| format!("--budget-checkpoint: cannot write: {e}"))
    }

    /// Saves what the records held back (see [`BudgetMonitor::flush`]) and moves to a new month when one
    /// starts; errors are logged, and the next call tries again.
    fn flush(&self) {
        let now = SystemTime::now();
        let mut monitor = self.monitor.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = monitor.tick(now).and_then(|_| monitor.flush(now)) {
            tracing::error!("budget checkpoint not saved, retrying in {BUDGET_CHECKPOINT_INTERVAL:?}: {e}");
        }
    }
}

/// Saves a [`BudgetCheckpoint`] every [`BUDGET_CHECKPOINT_INTERVAL`] when records are pending, on its own
/// thread (the fsync stays off the runtime); dropping it stops the thread after a last save.
#[derive(Debug)]
struct CheckpointSaver {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CheckpointSaver {
    fn start(checkpoint: BudgetCheckpoint) -> Result<Self, String> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("budget-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(BUDGET_CHECKPOINT_INTERVAL) {
                    checkpoint.flush();
                }
                checkpoint.flush();
            })
            .map_err(|e| format!("cannot start the budget checkpoint's thread: {e}"))?;
        Ok(CheckpointSaver { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for CheckpointSaver {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Completes at the first SIGTERM (what Kubernetes and systemd send to stop a process) or Ctrl-C (SIGINT), and
/// says which. Where neither can be listened to, it never completes (the process runs until killed).
pub async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = term => "SIGTERM",
        () = ctrl_c => "Ctrl-C",
    }
}

/// The process's Prometheus recorder, installed on first use. Metric handles bind to the recorder installed
/// when they are made, so this runs before any rules load or any layer is built.
pub fn prometheus() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))
        })
        .clone()
}

/// What the rules watcher has done since the service started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesStatus {
    /// Changes of the rules file's content that loaded (a save of identical content is not one).
    pub reloaded: u64,
    /// Changes that were rejected (the last good rules stayed).
    pub rejected: u64,
    /// Why the last rejected change was rejected: the file, the field and the reason.
    pub last_error: Option<String>,
}

/// The running service: its router, its chaos switch and flags, and the watchers of their files (dropping
/// the service stops them).
#[derive(Debug)]
pub struct Service {
    /// `GET /quote/{symbol}`, `GET /metrics`, `GET /healthz`, and `/admin` with a token file.
    pub router: Front,
    /// The chaos switch of the provider's fault layer.
    pub chaos: ChaosHandle,
    /// The degrade flags, from `--flags`.
    pub flags: Flags,
    /// The Prometheus recorder's handle (renders `/metrics`).
    pub metrics: PrometheusHandle,
    status: Arc<Mutex<RulesStatus>>,
    budgets: Option<BudgetCheckpoint>,
    /// The orders route's parts, with `--orders-dir`.
    pub orders: Option<demo::OrdersParts>,
    _degradation: Option<demo::degrade::Degradation>,
    _budget_saver: Option<CheckpointSaver>,
    _rules_watcher: FileWatcher,
    _flags_watcher: FlagWatcher,
}

impl Service {
    /// Installs the metrics recorder, loads the flags and the rules (an error names the file, the field and the
    /// reason), starts watching both files, and builds the router.
    pub fn start(options: &Options) -> Result<Service, String> {
        // First: the recorder, so the rules' and layers' metric handles bind to it.
        let metrics = prometheus()?;
        let flags = Flags::from_file(&options.flags).map_err(|e| e.to_string())?;
        let flags_watcher = FlagWatcher::start(&flags, &options.flags).map_err(|e| e.to_string())?;
        let chaos = ChaosHandle::new();
        chaos.load_path(&options.rules).map_err(|e| e.to_string())?;
        let status = Arc::new(Mutex::new(RulesStatus::default()));
        let rules_watcher = {
            let (chaos, status, file) = (chaos.clone(), status.clone(), options.rules.clone());
            // Called with the content at start (the same as just loaded: nothing changes), then once per new
            // content. A reload never re-arms a latched kill switch (see `ChaosHandle::load`).
            FileWatcher::start(&options.rules, move |bytes| {
                let result = chaos.load_bytes(&file, bytes);
                let mut status = status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                match result {
                    Ok(report) if !report.changed => {}
                    Ok(report) => {
                        status.reloaded += 1;
                        match &report.held_by {
                            Some(latch) => tracing::warn!(
                                file = %file.display(), latched_by = %latch,
                                "chaos rules reloaded and held disarmed: arm explicitly to apply them"
                            ),
                            None => tracing::info!(
                                file = %file.display(), armed = report.armed, restarted = ?report.restarted,
                                "chaos rules reloaded"
                            ),
                        }
                    }
                    Err(e) => {
                        status.rejected += 1;
                        tracing::error!("chaos rules rejected, the last good rules stay: {e}");
                        status.last_error = Some(e.to_string());
                    }
                }
            })
            .map_err(|e| format!("{}: cannot watch the file: {e}", options.rules.display()))?
        };

        let render = metrics.clone();
        let observability = Router::new()
            .route("/metrics", get(move || std::future::ready(render.render())))
            .route("/healthz", get(|| std::future::ready("ok")));
        let armed = if options.bare {
            tracing::info!("--bare: no Brownout layer on /quote/{{symbol}}");
            let app = Either::Right(demo::bare_router(options.timeout, options.provider_latency));
            Armed { app, admin: None, checkpoint: None, orders: None, degradation: None }
        } else {
            armed_router(options, &chaos, &flags)?
        };
        let Armed { app, admin, checkpoint: budgets, orders, degradation } = armed;
        let own = match admin {
            Some(admin) => observability.nest_service("/admin", admin),
            None => observability,
        };
        let budget_saver = budgets.clone().map(CheckpointSaver::start).transpose()?;
        Ok(Service {
            router: Front { own, app },
            chaos,
            flags,
            metrics,
            status,
            budgets,
            orders,
            _degradation: degradation,
            _budget_saver: budget_saver,
            _rules_watcher: rules_watcher,
            _flags_watcher: flags_watcher,
        })
    }

    /// The budgets' monitor and checkpoint, when requests are charged to budgets: save it at shutdown.
    pub fn budget_checkpoint(&self) -> Option<BudgetCheckpoint> {
        self.budgets.clone()
    }

    /// What the rules watcher has done so far.
    pub fn rules_status(&self) -> RulesStatus {
        self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// What [`armed_router`] builds.
struct Armed {
    app: Either<demo::App, Router>,
    admin: Option<AdminApi>,
    checkpoint: Option<BudgetCheckpoint>,
    orders: Option<demo::OrdersParts>,
    degradation: Option<demo::degrade::Degradation>,
}

/// The demo app with every Brownout layer (and the admin API when a token file is given): its routes, the
/// budgets' checkpoint when requests are charged to budgets, the orders route with `--orders-dir`, and the
/// degrade triggers unless `--without-degrade`.
fn armed_router(options: &Options, chaos: &ChaosHandle, flags: &Flags) -> Result<Armed, String> {
    let checkpoint = load_budgets(options.budgets.as_deref(), &options.budget_checkpoint)?;
    let budgets = checkpoint.as_ref().map(|c| c.monitor.clone());
    let orders = match &options.orders_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("--orders-dir {}: {e}", dir.display()))?;
            let parts = demo::open_orders(dir, flags, true, brownout_chaos::Environment::from_env())
                .map_err(|e| format!("--orders-dir {}: {e}", dir.display()))?;
            Some(parts)
        }
        None => {
            tracing::info!("no --orders-dir: POST /orders is not served");
            None
        }
    };
    let demo_options = demo::Options {
        orders: orders.as_ref().map(|o| o.orders.clone()),
        timeout: options.timeout,
        fallback: true,
        budgets: budgets.clone(),
        thread_cpu: options.thread_cpu,
        // The demo reads `quotes.source`, `reports.delivery` and `api.shed_percent` from the service's flags.
        flags: Some(flags.clone()),
        ..demo::Options::default()
    };
    let demo = demo::app_with(chaos, &demo_options, options.provider_latency);
    // The breaker follows `quotes.breaker` when the flag file defines it (it is optional).
    if flags.kind(BREAKER_FLAG).is_ok() {
        brownout_degrade::force_from_flag(flags, BREAKER_FLAG, demo.breaker.clone()).map_err(|e| e.to_string())?;
    } else {
        tracing::info!(file = %options.flags.display(), "no `{BREAKER_FLAG}` flag: the breaker is not forced");
    }
    let degradation = if options.degrade {
        let signals = demo::degrade::Signals::new(demo.breaker.clone(), orders.as_ref().map(|o| o.store_calls.clone()));
        Some(demo::degrade::Degradation::wire(flags, signals)?)
    } else {
        tracing::info!("--without-degrade: no degrade trigger");
        None
    };
    // The admin API, only with a token file: the rules, the flags and the provider's breaker.
    let admin = if let Some(file) = &options.admin_token_file {
        let tokens = TokenSet::from_file(file).map_err(|e| format!("--admin-token-file: {e}"))?;
        let audit = AuditLog::open(&options.admin_audit_log)
            .map_err(|e| format!("--admin-audit-log {}: {e}", options.admin_audit_log.display()))?;
        let admin = AdminApi::builder()
            .tokens(tokens)
            .chaos(chaos.clone())
            .flags(flags.clone())
            .breaker(demo.breaker.clone())
            .audit_log(audit);
        let admin = match &budgets {
            Some(monitor) => admin.budgets(monitor.clone()),
            None => admin,
        };
        tracing::info!(audit = %options.admin_audit_log.display(), "admin API mounted at /admin");
        Some(admin.build().map_err(|e| e.to_string())?)
    } else {
        None
    };
    Ok(Armed { app: Either::Left(demo.app), admin, checkpoint, orders, degradation })
}

/// What `http_service` serves: its own routes (`/metrics`, `/healthz`, and `/admin/…` with a token file) beside
/// the app (the demo behind its layers, or with `--bare` the bare router), which gets every other path.
///
/// The app is not a route or the fallback of the service's `Router`: axum would box its service and its
/// future once more per request; the choice here is one comparison of the path.
#[derive(Debug, Clone)]
pub struct Front {
    own: Router,
    app: Either<demo::App, Router>,
}

impl Front {
    /// Is `path` one of the service's own routes rather than the app's?
    fn is_own(path: &str) -> bool {
        matches!(path, "/metrics" | "/healthz" | "/admin") || path.starts_with("/admin/")
    }
}

impl<B> tower::Service<http::Request<B>> for Front
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = FrontFuture<
        <Router as tower::Service<http::Request<B>>>::Future,
        <Either<demo::App, Router> as tower::Service<http::Request<B>>>::Future,
    >;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        // Both are routers underneath, always ready: readying both keeps either free to take the request.
        std::task::ready!(tower::Service::<http::Request<B>>::poll_ready(&mut self.own, cx))?;
        tower::Service::<http::Request<B>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if Self::is_own(req.uri().path()) {
            FrontFuture::Own { future: self.own.call(req) }
        } else {
            FrontFuture::App { future: self.app.call(req) }
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Front`]'s response future: an own route's, or the app's.
    #[project = FrontProj]
    #[derive(Debug)]
    pub enum FrontFuture<O, A> {
        /// `/metrics`, `/healthz` or `/admin/…`.
        Own { #[pin] future: O },
        /// The app.
        App { #[pin] future: A },
    }
}

impl<O: Future, A: Future<Output = O::Output>> Future for FrontFuture<O, A> {
    type Output = O::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match self.project() {
            FrontProj::Own { future } => future.poll(cx),
            FrontProj::App { future } => future.poll(cx),
        }
    }
}

/// Serves `service` on `listener` until `shutdown` completes, then lets the requests in flight finish.
/// Runs the Prometheus recorder's upkeep every 5 s meanwhile. The future owns what it needs (the router and
/// the metrics handle), so it can be spawned while the caller keeps the service and its watchers.
///
/// The connection timeouts are the defaults of [`Options`]; [`serve_with`] takes them from the options.
pub fn serve(
    listener: tokio::net::TcpListener,
    service: &Service,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    serve_with(listener, service, &Options::default(), shutdown)
}

/// [`serve`] with the connection timeouts of `options` (`header_read_timeout`, `body_read_timeout`): a
/// client that sends its request head or body too slowly is cut off instead of holding a connection open.
///
/// HTTP/1 over hyper's connection (with tokio's timer, which the header timeout needs; `axum::serve` sets
/// none), and hyper-util's graceful shutdown.
pub fn serve_with<S>(
    listener: tokio::net::TcpListener,
    service: &Service,
    options: &Options,
    shutdown: S,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static + use<S>
where
    S: Future<Output = ()> + Send + 'static,
{
    let (router, metrics) = (service.router.clone(), service.metrics.clone());
    let (header_timeout, body_timeout) = (options.header_read_timeout, options.body_read_timeout);
    async move {
        let upkeep = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                metrics.run_upkeep();
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of descriptors, or a connection reset before it was accepted: wait a little
                        // rather than spin.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let router = router.clone();
            let app = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let req = req.map(|body| body::Deadline::new(body, body_timeout));
                tower::ServiceExt::oneshot(router.clone(), req)
            });
            let connection = graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), app));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!("connection closed: {e}");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
        upkeep.abort();
        Ok(())
    }
}

/// The request body with a deadline for the whole of it.
mod body {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use bytes::Bytes;
    use hyper::body::{Body, Frame, SizeHint};
    use tower::BoxError;

    /// A request body that fails once its deadline passes before its end.
    pub(super) struct Deadline<B> {
        inner: B,
        timeout: Duration,
        sleep: Pin<Box<tokio::time::Sleep>>,
    }

    impl<B> Deadline<B> {
        pub(super) fn new(inner: B, timeout: Duration) -> Self {
            Self { inner, timeout, sleep: Box::pin(tokio::time::sleep(timeout)) }
        }
    }

    impl<B> Body for Deadline<B>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
                return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
            }
            match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err(format!("request body not received within {:?}", self.timeout).into())))
                }
                Poll::Pending => Poll::Pending,
            }
        }

        fn is_end_stream(&self) -> bool {
            self.inner.is_end_stream()
        }

        fn size_hint(&self) -> SizeHint {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Front;

    #[test]
    fn the_service_keeps_its_own_paths_and_gives_the_app_every_other() {
        for own in ["/metrics", "/healthz", "/admin", "/admin/", "/admin/chaos", "/admin/flags/quotes.source"] {
            assert!(Front::is_own(own), "{own}");
        }
        for app in ["/", "/quote/ACME", "/metrics/x", "/healthz/", "/administer", "/adminx/chaos", "/reports/admin"] {
            assert!(!Front::is_own(app), "{app}");
        }
    }
}
