//! Per-request cost metering: each request is a cost-meter job, and a budget's concurrency guardrail is
//! obeyed.
//!
//! ```
//! # async fn quote() -> &'static str { "42" }
//! use axum::{Router, routing::get};
//! use brownout_tower::CostLayer;
//! use brownout_cost::{Labels, Meter, Tier, guardrail::ConcurrencyLimit};
//!
//! let meter = Meter::new();
//! let limit = ConcurrencyLimit::new(256); // lowered by a BudgetMonitor when a budget goes critical
//! let cost = CostLayer::new(meter, Labels::new("trading", "quotes").env("prod"))
//!     .label_with(|req, labels| {
//!         if req.uri.path().starts_with("/api/backtest") {
//!             labels.tier = Tier::Batch;
//!         }
//!     })
//!     .limit(limit);
//! let app: Router = Router::new().route("/api/quotes", get(quote)).layer(cost);
//! ```
//!
//! The job ends when the inner service's response future completes (or is dropped: a cancelled request is
//! still recorded); streaming a body afterwards is not charged. By default a request's CPU is the thread CPU
//! it used, apportioned ([`CpuMode::Apportioned`](brownout_cost::CpuMode): each poll timed with the TSC, each
//! worker's thread CPU clock read about once a millisecond and split over the polls it ran; within 2% of the
//! kernel's figure, under 50 ns a poll), so a request that waits (on a dependency, on an injected delay) is
//! not charged its wait. [`thread_cpu`](CostLayer::thread_cpu) reads the thread CPU clock around every poll
//! (exact, two system calls per poll); [`wall_estimate`](CostLayer::wall_estimate) charges the request's
//! wall time (an estimate: a wait is charged as CPU). When the concurrency limit has no room, the request is
//! answered `503` with `Retry-After` and `x-cost-guardrail: concurrency`, without calling the inner service.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};

use ::http::header::{HeaderName, HeaderValue};
use ::http::{HeaderMap, Method, Request, Response, Uri};
use brownout_cost::guardrail::{ConcurrencyLimit, Permit};
use brownout_cost::{CpuMode, Job, JobId, JobSpec, Labels, Meter};
use brownout_foundation::slots::{NumberBlock, next_number};
use bytes::Bytes;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::refusal::unavailable;

/// Numbers the layers, for their per-thread blocks of request numbers.
static LAYERS: AtomicU64 = AtomicU64::new(0);

/// `x-cost-guardrail: concurrency` marks a request refused by a budget's concurrency guardrail.
pub static GUARDRAIL_HEADER: HeaderName = HeaderName::from_static("x-cost-guardrail");

/// The request's id for its job record: this header's value when present. Without it the request is numbered
/// `{service}-{n}`: unique per layer, in order on each worker thread (each takes numbers in blocks of 1,024),
/// not across threads.
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// What a label function sees of a request.
#[derive(Debug)]
#[non_exhaustive]
pub struct RequestInfo<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The request's URI.
    pub uri: &'a Uri,
    /// The request's headers.
    pub headers: &'a HeaderMap,
}

type LabelFn = dyn Fn(&RequestInfo<'_>, &mut Labels) + Send + Sync;

/// Meters every request as a cost-meter job. Holds only configuration; cheap to clone.
#[derive(Clone)]
pub struct CostLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    meter: Meter,
    labels: Labels,
    label_with: Option<Arc<LabelFn>>,
    cpu: CpuMode,
    limit: Option<ConcurrencyLimit>,
    rejected: metrics::Counter,
    sequence: Arc<AtomicU64>,
    /// Tells this layer's blocks of numbers apart in each thread's [`NUMBERS`].
    id: u64,
}

/// How many request numbers a thread takes from a layer's sequence at once: numbers are unique per layer, and
/// in arrival order on each thread, not across threads.
const NUMBER_BLOCK: u64 = 1024;

/// How many layers' blocks of numbers each thread keeps (a service has a handful of layers).
const BLOCKS_KEPT: usize = 16;

thread_local! {
    /// Each thread's blocks of request numbers, one per layer: numbering a request touches no state shared with
    /// other threads.
    static NUMBERS: RefCell<Vec<NumberBlock>> = const { RefCell::new(Vec::new()) };
}

impl Config {
    /// A request's number: from the calling thread's block of this layer's numbers, taken at its first request
    /// and whenever the block runs out.
    fn number(&self) -> u64 {
        let shared = || self.sequence.fetch_add(1, Relaxed);
        NUMBERS
            .try_with(|cell| {
                // A thread being torn down, or a label function that starts a request, has no blocks at hand.
                let Ok(mut blocks) = cell.try_borrow_mut() else { return shared() };
                next_number(&mut blocks, BLOCKS_KEPT, self.id, &self.sequence, NUMBER_BLOCK)
            })
            .unwrap_or_else(|_| shared())
    }
}

impl fmt::Debug for CostLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostLayer")
            .field("labels", &self.config.labels)
            .field("cpu", &self.config.cpu)
            .field("limit", &self.config.limit)
            .finish()
    }
}

impl CostLayer {
    /// Meters requests with `meter`, each job carrying `labels`.
    pub fn new(meter: Meter, labels: Labels) -> Self {
        metrics::describe_counter!(
            "cost_meter_requests_rejected_total",
            "Requests refused by a budget's concurrency guardrail."
        );
        let rejected = metrics::counter!("cost_meter_requests_rejected_total", "service" => labels.service.to_string());
        CostLayer {
            config: Arc::new(Config {
                meter,
                labels,
                label_with: None,
                cpu: CpuMode::Apportioned,
                limit: None,
                rejected,
                sequence: Arc::new(AtomicU64::new(0)),
                id: LAYERS.fetch_add(1, Relaxed),
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Adjusts each request's labels (starting from the layer's) from the request. Keep label values few:
    /// they become metric labels.
    pub fn label_with(mut self, f: impl Fn(&RequestInfo<'_>, &mut Labels) + Send + Sync + 'static) -> Self {
        self.config_mut().label_with = Some(Arc::new(f));
        self
    }

    /// Reads the thread CPU clock around every poll ([`CpuMode::ThreadCpu`]: exact, at two system calls per
    /// poll) instead of apportioning it (the default, [`CpuMode::Apportioned`]).
    pub fn thread_cpu(mut self) -> Self {
        self.config_mut().cpu = CpuMode::ThreadCpu;
        self
    }

    /// Charges each request its wall time ([`CpuMode::WallEstimate`]: two clock reads per request, no
    /// per-poll cost, but a request that waits is charged its wait as CPU) instead of its apportioned CPU.
    pub fn wall_estimate(mut self) -> Self {
        self.config_mut().cpu = CpuMode::WallEstimate;
        self
    }

    /// Obeys `limit`: a request that finds no room gets `503` and `Retry-After: 1`.
    pub fn limit(mut self, limit: ConcurrencyLimit) -> Self {
        self.config_mut().limit = Some(limit);
        self
    }
}

impl<S> Layer<S> for CostLayer {
    type Service = Cost<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cost { inner, config: self.config.clone() }
    }
}

/// The service of [`CostLayer`].
#[derive(Clone)]
pub struct Cost<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for Cost<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cost").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S> Cost<S> {
    inner_service_accessors!();
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Cost<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: From<Bytes>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, Response<ResB>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let config = &self.config;
        let permit = match &config.limit {
            Some(limit) => match limit.try_acquire() {
                Some(permit) => Some(permit),
                None => {
                    config.rejected.increment(1);
                    let response = unavailable(
                        b"over budget: concurrency limited by a cost guardrail, retry later\n",
                        1,
                        &GUARDRAIL_HEADER,
                        HeaderValue::from_static("concurrency"),
                    );
                    return ResponseFuture { state: State::Refused { response: Some(response) } };
                }
            },
            None => None,
        };
        let given = req.headers().get(&REQUEST_ID_HEADER).and_then(|v| v.to_str().ok());
        // Label values are interned: this copy touches no shared state.
        let mut labels = config.labels.clone();
        let number = given.is_none().then(|| config.number());
        if let Some(f) = &config.label_with {
            f(&RequestInfo { method: req.method(), uri: req.uri(), headers: req.headers() }, &mut labels);
        }
        // A request without `x-request-id` is numbered: its id is written out only if something reads it.
        let id = match number {
            Some(number) => JobId::numbered(labels.service.clone(), number),
            None => JobId::from(given.unwrap_or_default()),
        };
        // One job per request: its events at DEBUG, so the default log level writes no line per request.
        let mut spec = JobSpec::new(id, labels).per_request();
        spec.cpu_mode = config.cpu;
        let job = config.meter.start(spec);
        // The job's polls are charged through the job itself (`Job::poll_charged`): the future holds one
        // reference to its state, the job's.
        let inner = self.inner.call(req);
        ResponseFuture { state: State::Metered { inner, job: Finisher(Some(job)), _permit: permit } }
    }
}

/// Finishes its job when dropped: a request cancelled mid-flight is still recorded.
struct Finisher(Option<Job>);

impl Drop for Finisher {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            job.finish();
        }
    }
}

pin_project! {
    /// Response future of [`Cost`]: the metered inner future, or the guardrail's refusal.
    pub struct ResponseFuture<F, T> {
        #[pin]
        state: State<F, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, T> {
        Metered { #[pin] inner: F, job: Finisher, _permit: Option<Permit> },
        Refused { response: Option<T> },
    }
}

impl<F, T> fmt::Debug for ResponseFuture<F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Metered { inner, job, .. } => {
                let output = match &job.0 {
                    Some(running) => std::task::ready!(running.poll_charged(inner, cx)),
                    // Finished: polled after completion, the inner future's to answer.
                    None => std::task::ready!(inner.poll(cx)),
                };
                if let Some(job) = job.0.take() {
                    job.finish();
                }
                Poll::Ready(output)
            }
            StateProj::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("ResponseFuture polled after completion")))
            }
        }
    }
}
