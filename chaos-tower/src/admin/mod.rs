//! The admin (control-plane) service: change chaos rules, degrade flags and breakers of a running service,
//! and read budgets, over HTTP with JSON.
//!
//! An endpoint that can inject faults into production is the most dangerous thing this library ships, so
//! it is off unless a token is configured, and every request must prove itself:
//!
//! - `Authorization: Bearer <token>`, compared in constant time against every configured token (no early
//!   exit). A missing, repeated, garbled or wrong token gets `401` with an empty body and
//!   `WWW-Authenticate: Bearer`, whatever the path, and changes nothing. Failures are slowed down (see
//!   [`Throttle`]); a valid token never is.
//! - Request bodies are read up to a limit (64 KiB by default; `413` beyond, before anything is parsed),
//!   must be JSON (`415` for another `Content-Type`), and are parsed strictly (unknown fields refused).
//! - Bad input gets a `4xx` with `{"field": …, "reason": …}` (never a file path) and changes nothing: a
//!   refused rule set leaves the last good rules active.
//! - Chaos stays bounded: a rule set whose `ttl` exceeds the API's maximum ([`DEFAULT_MAX_TTL`], 24 h, or
//!   [`AdminApiBuilder::max_ttl`]) is refused (`400` on `PUT /chaos`, `409` on `POST /chaos/arm` when the
//!   current rules, loaded from a file, have a longer one). A rule set sent to `PUT /chaos` may not choose
//!   where the header-fault token comes from: its `header_faults.token_env` / `token_file`, when given, must
//!   be the ones of the rules the chaos handle held when the API was built, or of the active rules (which
//!   only the service's own files change); any other is refused with `400`, before anything is read, so an
//!   admin request can neither turn an arbitrary file or environment variable into the token nor probe
//!   whether one exists.
//! - Every change is appended to the [`AuditLog`] (JSON lines: time, token id, action, target, before,
//!   after); the token never appears in the log, in a response or in an error.
//!
//! It is a Tower service over `http::Request<B>` → `http::Response<AdminBody>`, routed on the path *below*
//! its mount point; mount it under a prefix, for example with axum:
//!
//! ```
//! use axum::Router;
//! use brownout_tower::ChaosHandle;
//! use brownout_tower::admin::{AdminApi, TokenSet};
//!
//! let chaos = ChaosHandle::new();
//! let tokens = TokenSet::new().with("ops", "a-long-random-secret-0123456789")?;
//! let admin = AdminApi::builder().tokens(tokens).chaos(chaos.clone()).build()?;
//! let app: Router = Router::new().nest_service("/admin", admin);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Endpoints
//!
//! | Method and path | What it does |
//! |---|---|
//! | `GET /chaos` | `{"armed", "environment", "config", "counters"}`: the active rules and their counters |
//! | `PUT /chaos` | replaces the rule set with the JSON config in the body (validated; `400` keeps the old one) |
//! | `POST /chaos/disarm` | the kill switch |
//! | `POST /chaos/arm` | arms the current rules again (`409` when the production guard refuses, or their `ttl` exceeds the maximum) |
//! | `GET /flags`, `GET /flags/{name}` | every flag (or one): value, default, kind, source |
//! | `PUT /flags/{name}` | `{"value": …}`: overrides the flag; the JSON type must fit the flag (a string is parsed) |
//! | `DELETE /flags/{name}` | drops the override |
//! | `GET /breakers`, `GET /breakers/{name}` | breaker snapshots |
//! | `POST /breakers/{name}/open` | forces the breaker open (`forced_open`) |
//! | `POST /breakers/{name}/close` | forces it closed (`forced_closed`) |
//! | `POST /breakers/{name}/reset` | drops any forced state and restarts it closed with an empty window |
//! | `GET /budgets` | each budget's utilisation, alert level and month-end forecast |
//! | `POST /ofrep/v1/evaluate/flags/{key}` | one flag, evaluated as the OpenFeature Remote Evaluation Protocol says |
//! | `POST /ofrep/v1/evaluate/flags` | every flag (OFREP bulk evaluation, with an `ETag`) |
//!
//! # Decisions
//!
//! - Hand-routed over `http` types rather than built on axum: chaos-tower's default build stays free of a web
//!   framework, and the feature `admin` (on by default) adds no crate that chaos-core does not already build.
//! - Authentication comes first, on every path: a stranger cannot tell endpoints from typos, and no body is
//!   read before the token is checked.
//! - The failure counter is per API (not per client address, which a Tower service cannot always know): a
//!   flood of failures slows other *failing* clients, never a valid token.
//! - The audit line is written after the change (a full disk must not block the kill switch); a failed write
//!   is logged at `error` and the change stays applied.
//! - Metrics: `chaos_admin_auth_failures_total` and `chaos_admin_changes_total{action}`.
//! - OFREP (`/ofrep/v1/...`) sits behind the same token and throttle as every other endpoint, so a remote
//!   OpenFeature SDK passes the admin token as a bearer token (its OFREP provider's headers); its errors use
//!   OFREP's shape (`{"key", "errorCode", "errorDetails"}`) so OFREP providers read them. Evaluations change
//!   nothing and are not audited.
//!
//! A part the builder was not given (chaos, flags, breakers, budgets) answers `404`. A breaker that also
//! follows a degrade flag ([`brownout_degrade::force_from_flag`]) takes the flag's state again at the flag's
//! next change.

mod audit;
mod auth;
mod ofrep;
mod routes;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use brownout_cost::budget::BudgetMonitor;
use brownout_degrade::{CircuitBreaker, Flags};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower_service::Service;

pub use audit::{AuditEntry, AuditLog};
pub use auth::{MAX_TOKEN_LEN, MIN_TOKEN_BITS, MIN_TOKEN_LEN, Throttle, TokenError, TokenSet};

use crate::{BoxError, ChaosHandle};

/// The default limit of request bodies: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The default longest `ttl` of a rule set loaded or armed through the API: 24 hours.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);

/// Where a rule set's header-fault token comes from: `(token_env, token_file)`.
pub(crate) type TokenSource = (Option<String>, Option<String>);

/// The admin service. Cheap to clone; every clone shares the same parts, failure counter and audit log.
#[derive(Clone)]
pub struct AdminApi {
    inner: Arc<Inner>,
}

struct Inner {
    tokens: TokenSet,
    chaos: Option<ChaosHandle>,
    flags: Option<Flags>,
    breakers: BTreeMap<String, Arc<CircuitBreaker>>,
    budgets: Option<Arc<Mutex<BudgetMonitor>>>,
    audit: Option<AuditLog>,
    failures: auth::Failures,
    body_limit: usize,
    max_ttl: Duration,
    /// The header-fault token source of the rules held when the API was built (`None`: no header faults).
    startup_token_source: Option<TokenSource>,
}

impl fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("AdminApi")
            .field("tokens", &i.tokens)
            .field("chaos", &i.chaos.is_some())
            .field("flags", &i.flags.is_some())
            .field("breakers", &i.breakers.keys().collect::<Vec<_>>())
            .field("budgets", &i.budgets.is_some())
            .field("audit", &i.audit)
            .field("body_limit", &i.body_limit)
            .field("max_ttl", &i.max_ttl)
            .finish()
    }
}

/// Builds an [`AdminApi`]; every part is optional but the tokens.
#[derive(Default)]
pub struct AdminApiBuilder {
    tokens: TokenSet,
    chaos: Option<ChaosHandle>,
    flags: Option<Flags>,
    breakers: BTreeMap<String, Arc<CircuitBreaker>>,
    budgets: Option<Arc<Mutex<BudgetMonitor>>>,
    audit: Option<AuditLog>,
    throttle: Throttle,
    body_limit: Option<usize>,
    max_ttl: Option<Duration>,
}

impl fmt::Debug for AdminApiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminApiBuilder").field("tokens", &self.tokens).finish_non_exhaustive()
    }
}

/// The builder was not given what the API needs (a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    reason: &'static str,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "admin API: {}", self.reason)
    }
}

impl std::error::Error for BuildError {}

impl AdminApiBuilder {
    /// The tokens allowed to use the API (required; an empty set is refused by [`build`](Self::build)).
    pub fn tokens(mut self, tokens: TokenSet) -> Self {
        self.tokens = tokens;
        self
    }

    /// Serves `/chaos` over this handle.
    pub fn chaos(mut self, chaos: ChaosHandle) -> Self {
        self.chaos = Some(chaos);
        self
    }

    /// Serves `/flags` over these flags.
    pub fn flags(mut self, flags: Flags) -> Self {
        self.flags = Some(flags);
        self
    }

    /// Serves this breaker under `/breakers/{its name}` (a later breaker of the same name replaces it).
    pub fn breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.breakers.insert(breaker.name().to_owned(), breaker);
        self
    }

    /// Serves these breakers, each under its name.
    pub fn breakers(self, breakers: impl IntoIterator<Item = Arc<CircuitBreaker>>) -> Self {
        breakers.into_iter().fold(self, Self::breaker)
    }

    /// Serves `/budgets` from this monitor (locked briefly per request).
    pub fn budgets(mut self, monitor: Arc<Mutex<BudgetMonitor>>) -> Self {
        self.budgets = Some(monitor);
        self
    }

    /// Appends every change to this log. Without one, changes are only reported through `tracing`.
    pub fn audit_log(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    /// How failed authentications are slowed down (default: [`Throttle::default`]).
    pub fn throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = throttle;
        self
    }

    /// The largest request body accepted, in bytes (default [`DEFAULT_BODY_LIMIT`]).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }

    /// The longest `ttl` of a rule set loaded (`PUT /chaos`) or armed (`POST /chaos/arm`) through the API
    /// (default [`DEFAULT_MAX_TTL`], 24 hours). A longer one is refused with its field and this limit.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = Some(ttl);
        self
    }

    /// The API; refused without a token, so an API cannot be switched on by mistake without one.
    pub fn build(self) -> Result<AdminApi, BuildError> {
        if self.tokens.is_empty() {
            return Err(BuildError { reason: "no token configured; the admin API stays off" });
        }
        metrics::describe_counter!(
            "chaos_admin_auth_failures_total",
            "Admin API requests refused for a missing or wrong token."
        );
        metrics::describe_counter!("chaos_admin_changes_total", "Changes made through the admin API, by action.");
        let startup_token_source = self.chaos.as_ref().and_then(|c| token_source(&c.controller().config()));
        Ok(AdminApi {
            inner: Arc::new(Inner {
                tokens: self.tokens,
                chaos: self.chaos,
                flags: self.flags,
                breakers: self.breakers,
                budgets: self.budgets,
                audit: self.audit,
                failures: auth::Failures::new(self.throttle),
                body_limit: self.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
                max_ttl: self.max_ttl.unwrap_or(DEFAULT_MAX_TTL),
                startup_token_source,
            }),
        })
    }
}

impl AdminApi {
    /// A builder.
    pub fn builder() -> AdminApiBuilder {
        AdminApiBuilder::default()
    }

    /// The API switched off: it answers `404` to every request (what to mount when no token is configured).
    pub fn disabled() -> AdminApi {
        AdminApi {
            inner: Arc::new(Inner {
                tokens: TokenSet::new(),
                chaos: None,
                flags: None,
                breakers: BTreeMap::new(),
                budgets: None,
                audit: None,
                failures: auth::Failures::new(Throttle::default()),
                body_limit: DEFAULT_BODY_LIMIT,
                max_ttl: DEFAULT_MAX_TTL,
                startup_token_source: None,
            }),
        }
    }
}

/// The header-fault token source a config names, if it names one.
pub(crate) fn token_source(config: &brownout_chaos::ChaosConfig) -> Option<TokenSource> {
    let h = config.header_faults.as_ref()?;
    (h.token_env.is_some() || h.token_file.is_some()).then(|| (h.token_env.clone(), h.token_file.clone()))
}

/// The body of the admin API's responses: the whole JSON document at once (or nothing).
#[derive(Debug, Default)]
pub struct AdminBody {
    data: Option<Bytes>,
}

impl AdminBody {
    pub(crate) fn new(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Self { data: (!data.is_empty()).then_some(data) }
    }
}

impl Body for AdminBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// The response future of [`AdminApi`].
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Response<AdminBody>> + Send>>,
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<AdminBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl<B> Service<Request<B>> for AdminApi
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<AdminBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let inner = self.inner.clone();
        ResponseFuture { inner: Box::pin(async move { routes::handle(&inner, req).await }) }
    }
}
