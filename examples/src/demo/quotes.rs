//! `GET /quote/{symbol}`, a critical route: a quote from the provider or from the quote cache, as
//! `quotes.source` says ([`QuoteSource`]).
//!
//! `live` calls the provider for every quote; `cached` serves a cached quote younger than the age limit and
//! calls the provider for the others; `stale_ok` does the same and accepts an aged quote when the provider
//! fails (stale-if-error), so the provider still sees the calls an open breaker needs to probe and close.
//!
//! Every answer carries `x-quote-age-ms` (0 for a live quote). An answer from the cache carries
//! `x-served-from: cache`; when the cached quote is older than the route's age limit
//! ([`Options::quote_max_age`](super::Options::quote_max_age)) it is counted in [`Counters::stale`] and marked
//! `x-degraded: stale` (a degraded answer: the GameDay counts it as an error) — or, when `quotes.source` is
//! `stale_ok`, `x-degraded: stale-ok` (accepted by the operator's choice, also counted in
//! [`Counters::stale_accepted`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use brownout_foundation::slots::find_or_push;
use bytes::Bytes;
use tokio::time::Instant;
use tower::ServiceExt;

use super::flags::{ModeFlag, QuoteSource};
use super::provider::{self, Provider};
use super::{Counters, DEGRADED_HEADER, QUOTE_AGE_HEADER, SERVED_FROM_HEADER};

/// When the provider answered a cached quote: set by the fallback on its answers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchedAt(pub(crate) Instant);

/// Each symbol's last good quote and when it was fetched, hashed with foldhash (seeded per process).
type CachedQuotes = HashMap<String, (Bytes, Instant), foldhash::fast::RandomState>;

/// How often a worker rewrites a symbol's cached quote: a live quote fetched within this of the one the same
/// worker last stored is not stored again. Every worker rewriting the hot symbol's entry at every request made the
/// cache's lock and entry the lines the workers fought over most (`cargo bench -p benches --bench app`); now
/// the cached quote may be this much older than the newest live one.
const REFRESH: Duration = Duration::from_millis(100);

/// Numbers the caches, for each thread's [`WRITTEN`].
static CACHES: AtomicU64 = AtomicU64::new(0);

/// The most symbols a thread remembers writing, per cache, before it forgets them all.
const REMEMBERED: usize = 4096;

/// The most caches a thread remembers writing to (one per service built on it; a test builds a few): past it,
/// it forgets the one it met first.
const CACHES_REMEMBERED: usize = 16;

/// When a thread last stored each symbol, in one cache.
type Stored = HashMap<String, Instant, foldhash::fast::RandomState>;

thread_local! {
    /// When this thread last stored each symbol, per cache (by number): a read of its own memory instead of
    /// the shared lock, for all but one live quote per symbol in [`REFRESH`].
    static WRITTEN: RefCell<Vec<(u64, Stored)>> = const { RefCell::new(Vec::new()) };
}

/// The last good quote of each symbol and when it was fetched (`tokio::time`, so paused-time tests age it).
#[derive(Debug, Clone)]
pub(crate) struct QuoteCache {
    quotes: Arc<Mutex<CachedQuotes>>,
    id: u64,
}

impl Default for QuoteCache {
    fn default() -> Self {
        QuoteCache { quotes: Arc::default(), id: CACHES.fetch_add(1, Ordering::Relaxed) }
    }
}

impl QuoteCache {
    /// The cached quote of `symbol` and its fetch time.
    pub(crate) fn get(&self, symbol: &str) -> Option<(Bytes, Instant)> {
        self.quotes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(symbol).cloned()
    }

    /// Keeps a copy of `body` as the last good quote of `symbol`, fetched now, unless this thread stored the
    /// symbol's quote less than [`REFRESH`] ago (then nothing is copied: a copy of a shared body is an atomic add,
    /// and its drop another). A symbol already cached is updated in place: its key is neither copied nor freed.
    fn insert(&self, symbol: String, body: &Bytes) {
        let now = Instant::now();
        if self.written_lately(&symbol, now) {
            return;
        }
        let body = body.clone();
        let mut cache = self.quotes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match cache.get_mut(symbol.as_str()) {
            Some(entry) => *entry = (body, now),
            None => {
                cache.insert(symbol, (body, now));
            }
        }
    }

    /// Whether this thread stored `symbol` less than [`REFRESH`] before `now`; if not, notes it as stored now.
    fn written_lately(&self, symbol: &str, now: Instant) -> bool {
        WRITTEN
            .try_with(|written| {
                let Ok(mut written) = written.try_borrow_mut() else { return false };
                let (_, symbols) = find_or_push(
                    &mut written,
                    CACHES_REMEMBERED,
                    |(id, _)| *id == self.id,
                    || (self.id, HashMap::default()),
                );
                if let Some(at) = symbols.get_mut(symbol) {
                    if now.saturating_duration_since(*at) < REFRESH {
                        return true;
                    }
                    *at = now;
                    return false;
                }
                if symbols.len() == REMEMBERED {
                    symbols.clear();
                }
                symbols.insert(symbol.to_owned(), now);
                false
            })
            .unwrap_or(false)
    }
}

/// What the quote route needs.
#[derive(Debug)]
pub(crate) struct Quotes {
    pub(crate) provider: Provider,
    pub(crate) cache: QuoteCache,
    pub(crate) counters: Arc<Counters>,
    pub(crate) source: ModeFlag<QuoteSource>,
    pub(crate) max_age: Duration,
}

/// `GET /quote/{symbol}`. Behind an `Arc`: axum clones the state for every request, and the provider is a
/// boxed service whose clone allocates; the handler clones only the provider, once, to call it.
pub(crate) fn router(quotes: Quotes) -> Router {
    Router::new().route("/quote/{symbol}", get(quote)).with_state(Arc::new(quotes))
}

async fn quote(State(quotes): State<Arc<Quotes>>, Path(symbol): Path<String>, headers: http::HeaderMap) -> Response {
    quotes.counters.requests.fetch_add(1, Ordering::Relaxed);
    let source = quotes.source.get();
    if source != QuoteSource::Live
        && let Some((body, fetched)) = quotes.cache.get(&symbol)
    {
        // A fresh entry is served from the cache; an aged one is refreshed through the provider, whose fallback
        // serves it (accepted under `stale_ok`) when the provider fails. Even under `stale_ok` the aged entries
        // keep calling the provider: those calls are what lets an open breaker probe and close again.
        let age = fetched.elapsed();
        if age <= quotes.max_age {
            quotes.counters.quotes_from_cache.fetch_add(1, Ordering::Relaxed);
            return quotes.cached(body, age, source);
        }
    }
    // A symbol that makes no valid URI is the user's mistake, not the provider's.
    let Some(req) = provider::request(&symbol, &headers) else {
        return (StatusCode::BAD_REQUEST, "invalid symbol").into_response();
    };
    match quotes.provider.clone().oneshot(req).await {
        Ok(response) if response.status().is_success() => {
            match response.extensions().get::<FetchedAt>().copied() {
                // The fallback answered from the cache.
                Some(FetchedAt(fetched)) => quotes.cached(response.into_body(), fetched.elapsed(), source),
                None => {
                    let body = response.into_body();
                    quotes.cache.insert(symbol, &body);
                    let mut answer = (StatusCode::OK, body).into_response();
                    answer.headers_mut().insert(&QUOTE_AGE_HEADER, HeaderValue::from_static("0"));
                    answer
                }
            }
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "quote provider unavailable").into_response(),
    }
}

impl Quotes {
    /// A cached quote of age `age`, marked (and counted) stale when older than the limit.
    fn cached(&self, body: Bytes, age: Duration, source: QuoteSource) -> Response {
        let mut answer = (StatusCode::OK, body).into_response();
        let headers = answer.headers_mut();
        headers.insert(&SERVED_FROM_HEADER, HeaderValue::from_static("cache"));
        headers.insert(&QUOTE_AGE_HEADER, HeaderValue::from(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)));
        if age > self.max_age {
            self.counters.stale.fetch_add(1, Ordering::Relaxed);
            if source == QuoteSource::StaleOk {
                self.counters.stale_accepted.fetch_add(1, Ordering::Relaxed);
                headers.insert(&DEGRADED_HEADER, HeaderValue::from_static("stale-ok"));
            } else {
                headers.insert(&DEGRADED_HEADER, HeaderValue::from_static("stale"));
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker stores a symbol's live quote at most every [`REFRESH`]; another symbol, another cache or a quote
    /// after [`REFRESH`] is stored at once.
    #[tokio::test(start_paused = true)]
    async fn a_worker_rewrites_a_symbols_quote_at_most_every_refresh() {
        let cache = QuoteCache::default();
        let quote = |cache: &QuoteCache, symbol| cache.get(symbol).map(|(body, _)| body);
        cache.insert("ACME".into(), &Bytes::from_static(b"1"));
        cache.insert("ACME".into(), &Bytes::from_static(b"2"));
        assert_eq!(quote(&cache, "ACME").as_deref(), Some(&b"1"[..]), "within REFRESH: kept");
        cache.insert("INIT".into(), &Bytes::from_static(b"3"));
        assert_eq!(quote(&cache, "INIT").as_deref(), Some(&b"3"[..]), "another symbol: stored");
        let other = QuoteCache::default();
        other.insert("ACME".into(), &Bytes::from_static(b"4"));
        assert_eq!(quote(&other, "ACME").as_deref(), Some(&b"4"[..]), "another cache: stored");

        tokio::time::advance(REFRESH - Duration::from_millis(1)).await;
        cache.insert("ACME".into(), &Bytes::from_static(b"5"));
        assert_eq!(quote(&cache, "ACME").as_deref(), Some(&b"1"[..]));
        tokio::time::advance(Duration::from_millis(1)).await;
        cache.insert("ACME".into(), &Bytes::from_static(b"6"));
        let (body, fetched) = cache.get("ACME").unwrap();
        assert_eq!((&body[..], fetched), (&b"6"[..], Instant::now()), "after REFRESH: stored, fetched now");
    }
}
