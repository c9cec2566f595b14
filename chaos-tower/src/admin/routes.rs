//! Authentication, body reading and routing of the admin API, and one handler per endpoint.

use std::time::SystemTime;

use brownout_chaos::ChaosConfig;
use brownout_degrade::ForcedState;
use brownout_degrade::flags::FlagKind;
use bytes::{Buf, Bytes};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use serde::Deserialize;
use serde_json::{Value, json};

use super::audit::{self, AuditEntry};
use super::{AdminBody, Inner};
use crate::BoxError;

/// A refused request: its status and `{"field", "reason"}`.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    field: String,
    reason: String,
}

impl Problem {
    fn new(status: StatusCode, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { status, field: field.into(), reason: reason.into() }
    }

    fn bad(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, field, reason)
    }

    fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "path", reason)
    }
}

type Answer = Result<Value, Problem>;

pub(super) fn respond(status: StatusCode, body: &Value) -> Response<AdminBody> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(AdminBody::new(bytes));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(super) fn empty(status: StatusCode) -> Response<AdminBody> {
    let mut response = Response::new(AdminBody::default());
    *response.status_mut() = status;
    response
}

fn problem(p: Problem) -> Response<AdminBody> {
    respond(p.status, &json!({ "field": p.field, "reason": p.reason }))
}

pub(super) async fn handle<B>(inner: &Inner, req: Request<B>) -> Response<AdminBody>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    if inner.tokens.is_empty() {
        return empty(StatusCode::NOT_FOUND);
    }
    let Some(token_id) = inner.tokens.authenticate(req.headers()).map(str::to_owned) else {
        return unauthorised(inner).await;
    };
    let (parts, body) = req.into_parts();
    let body = match read_body(body, inner.body_limit).await {
        Ok(body) => body,
        Err(p) => return problem(p),
    };
    let path = parts.uri.path();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let ctx = Ctx { inner, token_id: &token_id };
    let method = &parts.method;
    if let ["ofrep", "v1", "evaluate", "flags", rest @ ..] = segments.as_slice() {
        return super::ofrep::handle(inner.flags.as_ref(), rest, method, &parts.headers, &body);
    }
    if method == Method::PUT
        && let Some(ct) = parts.headers.get(header::CONTENT_TYPE)
        && !is_json(ct)
    {
        return problem(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content-type", "must be application/json"));
    }
    let result = match (segments.as_slice(), method) {
        (["chaos"], &Method::GET) => ctx.chaos().map(chaos_view),
        (["chaos"], &Method::PUT) => ctx.replace_chaos(&body),
        (["chaos", "arm"], &Method::POST) => ctx.arm(),
        (["chaos", "disarm"], &Method::POST) => ctx.disarm(),
        (["flags"], &Method::GET) => ctx.list_flags(),
        (["flags", name], &Method::GET) => ctx.flag(name),
        (["flags", name], &Method::PUT) => ctx.set_flag(name, &body),
        (["flags", name], &Method::DELETE) => ctx.unset_flag(name),
        (["breakers"], &Method::GET) => ctx.list_breakers(),
        (["breakers", name], &Method::GET) => ctx.breaker(name).map(|b| json!(b.snapshot())),
        (["breakers", name, action], &Method::POST) => ctx.breaker_action(name, action),
        (["budgets"], &Method::GET) => ctx.budgets(),
        (segments, _) => return not_allowed_or_found(segments),
    };
    match result {
        Ok(value) => respond(StatusCode::OK, &value),
        Err(p) => problem(p),
    }
}

pub(super) fn is_json(value: &HeaderValue) -> bool {
    value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// `405` with `Allow` for a known path, `404` otherwise.
fn not_allowed_or_found(segments: &[&str]) -> Response<AdminBody> {
    let allow = match segments {
        ["chaos"] => "GET, PUT",
        ["chaos", "arm" | "disarm"] => "POST",
        ["flags"] | ["breakers"] | ["budgets"] => "GET",
        ["flags", _] => "GET, PUT, DELETE",
        ["breakers", _] => "GET",
        ["breakers", _, _] => "POST",
        _ => return problem(Problem::not_found("no such endpoint")),
    };
    let mut response = problem(Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method", format!("use {allow}")));
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `401` with an empty body, once the failure's turn in the global schedule of [`Throttle`] has come.
///
/// [`Throttle`]: super::Throttle
async fn unauthorised(inner: &Inner) -> Response<AdminBody> {
    tracing::warn!(target: "brownout::admin", "admin request without a valid token");
    metrics::counter!("chaos_admin_auth_failures_total").increment(1);
    let at = inner.failures.fail();
    if at > tokio::time::Instant::now() {
        tokio::time::sleep_until(at).await;
    }
    let mut response = empty(StatusCode::UNAUTHORIZED);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Reads the whole body, refusing with `413` as soon as it is known to exceed `limit`.
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Problem>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let too_large =
        || Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body", format!("is larger than the limit of {limit} bytes"));
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let mut body = std::pin::pin!(body);
    let mut buf = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| Problem::bad("body", format!("cannot be read: {}", e.into())))?;
        if let Ok(mut data) = frame.into_data() {
            if buf.len().saturating_add(data.remaining()) > limit {
                return Err(too_large());
            }
            while data.has_remaining() {
                let chunk = data.chunk();
                buf.extend_from_slice(chunk);
                let n = chunk.len();
                data.advance(n);
            }
        }
    }
    Ok(Bytes::from(buf))
}

/// Parses a JSON body strictly; errors say where and why.
fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Problem> {
    if body.is_empty() {
        return Err(Problem::bad("body", "a JSON body is required"));
    }
    serde_json::from_slice(body).map_err(|e| Problem::bad("body", e.to_string()))
}

fn chaos_view(chaos: &crate::ChaosHandle) -> Value {
    let counters = chaos.snapshot();
    json!({
        "armed": counters.armed,
        "latched": counters.latched,
        "environment": counters.environment,
        "config": chaos.controller().config(),
        "counters": counters,
    })
}

fn chaos_state(chaos: &crate::ChaosHandle) -> Value {
    json!({ "armed": chaos.is_armed(), "config": chaos.controller().config() })
}

/// `PUT /flags/{name}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFlag {
    value: Value,
}

struct Ctx<'a> {
    inner: &'a Inner,
    token_id: &'a str,
}

impl Ctx<'_> {
    fn audit(&self, action: &'static str, target: &str, before: Value, after: Value) {
        audit::record(self.inner.audit.as_ref(), &AuditEntry::new(self.token_id, action, target, before, after));
    }

    fn chaos(&self) -> Result<&crate::ChaosHandle, Problem> {
        self.inner.chaos.as_ref().ok_or_else(|| Problem::not_found("chaos is not served by this admin API"))
    }

    fn replace_chaos(&self, body: &[u8]) -> Answer {
        let chaos = self.chaos()?;
        if body.is_empty() {
            return Err(Problem::bad("body", "a JSON chaos config is required"));
        }
        let text = std::str::from_utf8(body).map_err(|_| Problem::bad("body", "is not UTF-8"))?;
        let config = ChaosConfig::from_json_str(text, None).map_err(|e| Problem::bad(e.field(), e.reason()))?;
        self.check_bounds(chaos, &config)?;
        let before = chaos_state(chaos);
        chaos.load(config).map_err(|e| Problem::bad(e.field(), e.reason()))?;
        self.audit("chaos.replace", "chaos", before, chaos_state(chaos));
        Ok(chaos_view(chaos))
    }

    /// What the API adds to the config's own checks: a `ttl` within the API's maximum, and no header-fault
    /// token source other than the service's own.
    fn check_bounds(&self, chaos: &crate::ChaosHandle, config: &ChaosConfig) -> Result<(), Problem> {
        self.check_ttl(config.ttl).map_err(|reason| Problem::bad("ttl", reason))?;
        let Some(asked) = super::token_source(config) else {
            return Ok(());
        };
        let active = super::token_source(&chaos.controller().config());
        if Some(&asked) == self.inner.startup_token_source.as_ref() || Some(&asked) == active.as_ref() {
            return Ok(());
        }
        let field = if asked.1.is_some() { "header_faults.token_file" } else { "header_faults.token_env" };
        Err(Problem::bad(
            field,
            "the admin API keeps the header-fault token source the service was started with; \
             give the same `token_env`/`token_file` as the active rules, or leave it out with header faults off",
        ))
    }

    fn check_ttl(&self, ttl: std::time::Duration) -> Result<(), String> {
        let max = self.inner.max_ttl;
        if ttl <= max {
            return Ok(());
        }
        Err(format!("is {}; the admin API accepts at most {} (AdminApiBuilder::max_ttl)", humanize(ttl), humanize(max)))
    }

    fn arm(&self) -> Answer {
        let chaos = self.chaos()?;
        let ttl = chaos.controller().config().ttl;
        self.check_ttl(ttl).map_err(|reason| Problem::new(StatusCode::CONFLICT, "ttl", reason))?;
        let before = json!({ "armed": chaos.is_armed() });
        chaos.arm().map_err(|e| Problem::new(StatusCode::CONFLICT, e.field(), e.reason()))?;
        let after = json!({ "armed": chaos.is_armed() });
        self.audit("chaos.arm", "chaos", before, after.clone());
        Ok(after)
    }

    fn disarm(&self) -> Answer {
        let chaos = self.chaos()?;
        let before = json!({ "armed": chaos.is_armed() });
        chaos.disarm();
        let after = json!({ "armed": chaos.is_armed() });
        self.audit("chaos.disarm", "chaos", before, after.clone());
        Ok(after)
    }

    fn flags(&self) -> Result<&brownout_degrade::Flags, Problem> {
        self.inner.flags.as_ref().ok_or_else(|| Problem::not_found("flags are not served by this admin API"))
    }

    fn list_flags(&self) -> Answer {
        let flags = self.flags()?;
        Ok(json!({ "flags": flags.list().into_iter().map(flag_row).collect::<Vec<_>>() }))
    }

    fn flag(&self, name: &str) -> Answer {
        let flags = self.flags()?;
        flags
            .list()
            .into_iter()
            .find(|f| f.name == name)
            .map(flag_row)
            .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "name", format!("no flag named `{}`", clip(name))))
    }

    fn set_flag(&self, name: &str, body: &[u8]) -> Answer {
        let flags = self.flags()?;
        let before = self.flag(name)?;
        let SetFlag { value } = parse_json(body)?;
        let kind = flags.kind(name).map_err(|e| Problem::new(StatusCode::NOT_FOUND, "name", e.reason()))?;
        let text = match (&kind, &value) {
            (_, Value::String(s)) => s.clone(),
            (FlagKind::Bool, Value::Bool(b)) => b.to_string(),
            (FlagKind::Number { .. }, Value::Number(n)) => n.to_string(),
            (kind, _) => {
                let want = match kind {
                    FlagKind::Bool => "true or false (or a string)",
                    FlagKind::Strategy(_) => "a string naming one of its strategies",
                    FlagKind::Number { .. } => "a number (or a string)",
                    _ => "a value of its kind (or a string)",
                };
                return Err(Problem::bad("value", format!("`{name}` is a {} flag: give {want}", kind.name())));
            }
        };
        flags.set(name, &text).map_err(|e| Problem::bad("value", e.reason()))?;
        let after = self.flag(name)?;
        self.audit("flag.set", name, before, after.clone());
        Ok(after)
    }

    fn unset_flag(&self, name: &str) -> Answer {
        let flags = self.flags()?;
        let before = self.flag(name)?;
        flags.unset(name).map_err(|e| Problem::new(StatusCode::NOT_FOUND, "name", e.reason()))?;
        let after = self.flag(name)?;
        self.audit("flag.unset", name, before, after.clone());
        Ok(after)
    }

    fn breaker(&self, name: &str) -> Result<&brownout_degrade::CircuitBreaker, Problem> {
        if self.inner.breakers.is_empty() {
            return Err(Problem::not_found("breakers are not served by this admin API"));
        }
        self.inner
            .breakers
            .get(name)
            .map(|b| &**b)
            .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "name", format!("no breaker named `{}`", clip(name))))
    }

    fn list_breakers(&self) -> Answer {
        if self.inner.breakers.is_empty() {
            return Err(Problem::not_found("breakers are not served by this admin API"));
        }
        Ok(json!({ "breakers": self.inner.breakers.values().map(|b| b.snapshot()).collect::<Vec<_>>() }))
    }

    fn breaker_action(&self, name: &str, action: &str) -> Answer {
        let breaker = self.breaker(name)?;
        let action = match action {
            "open" => "breaker.open",
            "close" => "breaker.close",
            "reset" => "breaker.reset",
            _ => return Err(Problem::bad("action", "must be open, close or reset")),
        };
        let before = json!(breaker.snapshot());
        match action {
            "breaker.open" => breaker.force(ForcedState::ForcedOpen),
            "breaker.close" => breaker.force(ForcedState::ForcedClosed),
            _ => {
                breaker.force(ForcedState::None);
                breaker.reset();
            }
        }
        let after = json!(breaker.snapshot());
        self.audit(action, name, before, after.clone());
        Ok(after)
    }

    fn budgets(&self) -> Answer {
        let monitor = self.inner.budgets.as_ref().ok_or_else(|| Problem::not_found("budgets are not served"))?;
        let monitor = brownout_foundation::sync::lock(monitor);
        let now = SystemTime::now();
        let budgets: Vec<Value> = monitor
            .budgets()
            .iter()
            .map(|b| {
                let u = monitor.utilization(&b.name);
                let forecast = monitor.forecast(&b.name, now);
                json!({
                    "name": b.name,
                    "owner": b.owner,
                    "utilization": u.map(|u| json!({ "cpu": u.cpu, "memory": u.memory, "max": u.max() })),
                    "level": monitor.level(&b.name).as_str(),
                    "forecast": forecast.map(|f| json!({
                        "projected_utilization": {
                            "cpu": f.projected_utilization.cpu,
                            "memory": f.projected_utilization.memory,
                        },
                        "exhausted_at": f.exhausted_at_unix.map(brownout_foundation::time::rfc3339),
                    })),
                })
            })
            .collect();
        Ok(json!({ "month": monitor.month().to_string(), "budgets": budgets }))
    }
}

fn flag_row(f: brownout_degrade::flags::FlagInfo) -> Value {
    json!({
        "name": f.name,
        "kind": f.kind,
        "value": f.value,
        "default": f.default,
        "source": f.source.to_string(),
        "description": f.description,
    })
}

/// A duration as `24h`, `1h 30m` or `250ms` (a sub-second rest of a longer one is dropped).
fn humanize(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let parts = [(secs / 3600, "h"), (secs % 3600 / 60, "m"), (secs % 60, "s")];
    let text: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect();
    text.join(" ")
}

/// A name from the path, cut short for error messages.
fn clip(name: &str) -> String {
    name.chars().take(64).collect()
}
