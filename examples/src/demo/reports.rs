//! `GET /reports/{name}`, a non-critical route: a sizeable CSV report (about
//! [`Options::report_bytes`](super::Options::report_bytes), 256 KiB by default), delivered as
//! `reports.delivery` says ([`ReportDelivery`]):
//!
//! - `cached`: the whole report is built in memory and kept in the report cache, keyed by name (a hit is
//!   served from it). Memory grows with the distinct names asked for, up to
//!   [`Options::report_cache_entries`](super::Options::report_cache_entries) reports (the oldest is evicted
//!   beyond that);
//! - `streaming`: the report is generated and sent chunk by chunk (16 KiB), never whole in memory and never
//!   cached, so memory stays bounded whatever the names: the mode to switch to under memory pressure.
//!
//! Both modes send the same bytes for the same name and size. Answers carry `x-report-delivery` with the mode.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body::Frame;

use super::Counters;
use super::flags::{ModeFlag, ReportDelivery};

/// `x-report-delivery: cached | streaming`: how a report was delivered.
pub static REPORT_DELIVERY_HEADER: http::HeaderName = http::HeaderName::from_static("x-report-delivery");

/// The size of a streamed chunk (a chunk ends on a whole line, so it may be a line longer).
const CHUNK: usize = 16 * 1024;

/// What the report route needs.
#[derive(Debug)]
pub(crate) struct Reports {
    pub(crate) counters: Arc<Counters>,
    pub(crate) delivery: ModeFlag<ReportDelivery>,
    /// A report's size: lines are added until it reaches this many bytes.
    pub(crate) bytes: usize,
    /// The most reports the cache keeps (0: none).
    pub(crate) max_entries: usize,
    pub(crate) cache: Mutex<ReportCache>,
}

/// The cached reports, by name, and their insertion order (the oldest is evicted first).
#[derive(Debug, Default)]
pub(crate) struct ReportCache {
    reports: HashMap<String, Bytes>,
    order: VecDeque<String>,
}

/// `GET /reports/{name}`.
pub(crate) fn router(reports: Reports) -> Router {
    Router::new().route("/reports/{name}", get(report)).with_state(Arc::new(reports))
}

async fn report(State(reports): State<Arc<Reports>>, Path(name): Path<String>) -> Response {
    let counters = &reports.counters;
    counters.report_requests.fetch_add(1, Ordering::Relaxed);
    let (body, mode) = match reports.delivery.get() {
        ReportDelivery::Cached => {
            counters.reports_cached.fetch_add(1, Ordering::Relaxed);
            (Body::from(reports.cached(name)), "cached")
        }
        ReportDelivery::Streaming => {
            counters.reports_streamed.fetch_add(1, Ordering::Relaxed);
            (Body::new(ReportStream { lines: Lines::new(name, reports.bytes) }), "streaming")
        }
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    headers.insert(&REPORT_DELIVERY_HEADER, HeaderValue::from_static(mode));
    response
}

impl Reports {
    /// The report from the cache, or built whole and cached.
    fn cached(&self, name: String) -> Bytes {
        if let Some(hit) = self.lock().reports.get(&name).cloned() {
            self.counters.report_cache_hits.fetch_add(1, Ordering::Relaxed);
            return hit;
        }
        // Built outside the lock: two first requests for one name may both build it (the same bytes).
        let mut lines = Lines::new(name.clone(), self.bytes);
        let mut whole = Vec::with_capacity(self.bytes + 128);
        while let Some(chunk) = lines.next_chunk() {
            whole.extend_from_slice(&chunk);
        }
        let whole = Bytes::from(whole);
        if self.max_entries > 0 {
            let mut cache = self.lock();
            if cache.reports.insert(name.clone(), whole.clone()).is_none() {
                cache.order.push_back(name);
                while cache.order.len() > self.max_entries {
                    if let Some(oldest) = cache.order.pop_front() {
                        cache.reports.remove(&oldest);
                    }
                }
            }
            self.counters.report_cache_entries.store(cache.reports.len() as u64, Ordering::Relaxed);
        }
        whole
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReportCache> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The lines of a report, generated on demand: a header, then `name,row,price,volume` rows whose numbers
/// follow from the name and the row, until the report reaches its size.
#[derive(Debug)]
struct Lines {
    name: String,
    seed: u64,
    row: u64,
    written: usize,
    size: usize,
}

impl Lines {
    fn new(name: String, size: usize) -> Self {
        // FNV-1a of the name: the same report for the same name, in every process.
        let seed =
            name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Self { name, seed, row: 0, written: 0, size }
    }

    /// The next chunk of whole lines (about [`CHUNK`] bytes), or `None` at the end.
    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.written >= self.size && self.row > 0 {
            return None;
        }
        let mut chunk = String::with_capacity(CHUNK + 128);
        if self.row == 0 {
            chunk.push_str("symbol,row,price,volume\n");
            self.row = 1;
        }
        while chunk.len() < CHUNK && self.written + chunk.len() < self.size {
            let h = mix(self.seed ^ self.row);
            let price = 50.0 + (h % 100_000) as f64 / 1000.0;
            let volume = (h >> 20) % 1_000_000;
            // Writing to a String cannot fail.
            let _ = writeln!(chunk, "{},{},{price:.3},{volume}", self.name, self.row);
            self.row += 1;
        }
        self.written += chunk.len();
        Some(Bytes::from(chunk))
    }

    fn done(&self) -> bool {
        self.written >= self.size && self.row > 0
    }
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A report's body in `streaming` mode: each frame is the next chunk, generated when polled.
#[derive(Debug)]
struct ReportStream {
    lines: Lines,
}

impl http_body::Body for ReportStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().lines.next_chunk().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.lines.done()
    }
}
