//! A running service that embeds Brownout, reached over HTTP: the load goes to its URL (a load balancer or
//! one replica), faults are armed through the admin API of every replica, and the breakers, flags and
//! counters are read from them.
//!
//! - Arm: `PUT {admin}/chaos` with the scenario's rules held disarmed (`armed: false`, and one seed for all)
//!   on every replica, then `POST {admin}/chaos/arm` on each. A replica that refuses (a wrong token, rules it
//!   cannot take) fails the scenario: every replica is disarmed, so none is left injecting.
//! - Disarm (the planned end, the SLO guard's abort, Ctrl-C): `POST {admin}/chaos/disarm` on every replica at
//!   once, each tried even if another fails or hangs.
//! - Injected faults: the sum of `GET {admin}/chaos`'s rule counters over the replicas. Breakers: `GET
//!   {admin}/breakers`; degrade flags: `GET {admin}/flags` (a flag away from its default is a degradation).
//! - Calls that reached the fault layer (the injected rate's denominator): the sum over the replicas of a
//!   counter of their Prometheus endpoint (`/metrics` at the admin URL's host), named by
//!   [`Remote::calls_metric`]; without it the rate's band is not judged.

use std::fmt;
use std::path::Path;

use brownout_chaos::ChaosConfig;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::load::{BoxFuture, Client};
use crate::target::{Counters, State, Target};

/// The fault switch of a remote target: the chaos rules its admin API serves.
pub const REMOTE_SWITCH: &str = "default";

/// How long a replica may take to answer one request of the runner.
const ADMIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Running replicas of a service, under test through their admin API.
#[derive(Clone)]
pub struct Remote {
    load: Client,
    target: String,
    admins: Vec<String>,
    token: String,
    calls_metric: Option<String>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("target", &self.target)
            .field("admins", &self.admins)
            .field("calls_metric", &self.calls_metric)
            .finish_non_exhaustive()
    }
}

/// Reads a token file: its first line, trimmed; an empty one is refused.
fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or_default().trim().to_owned();
    if token.is_empty() {
        return Err(format!("{}: the first line holds no token", path.display()));
    }
    Ok(token)
}

impl Remote {
    /// The service at `target` (`http://host:port`), its replicas' admin APIs at `admins`
    /// (`http://host:port/admin`), with the bearer token in `token_file`.
    pub fn new(target: &str, admins: &[String], token_file: &Path) -> Result<Remote, String> {
        if admins.is_empty() {
            return Err("--admin-url: give the admin API of every replica (at least one)".into());
        }
        let load = Client::http(target).map_err(|e| format!("--target: {e}"))?;
        for admin in admins {
            Client::http(admin).map_err(|e| format!("--admin-url: {e}"))?;
        }
        Ok(Remote {
            load,
            target: target.trim_end_matches('/').to_owned(),
            admins: admins.iter().map(|a| a.trim_end_matches('/').to_owned()).collect(),
            token: read_token(token_file).map_err(|e| format!("--admin-token-file: {e}"))?,
            calls_metric: None,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// The counter of calls that reached the fault layer, summed over the replicas' `/metrics`.
    pub fn calls_metric(mut self, name: impl Into<String>) -> Self {
        self.calls_metric = Some(name.into());
        self
    }

    /// One admin request; the error names the replica, the request and the answer.
    async fn admin(&self, admin: &str, method: Method, path: &str, body: Option<&Value>) -> Result<Value, String> {
        self.admin_answer(admin, method, path, body, false).await.map(Option::unwrap_or_default)
    }

    /// [`admin`](Self::admin) of a part the replica may not serve: its `404` is `None` (a service whose admin
    /// API has no breakers or no flags has none to watch).
    async fn admin_optional(&self, admin: &str, path: &str) -> Result<Option<Value>, String> {
        self.admin_answer(admin, Method::GET, path, None, true).await
    }

    async fn admin_answer(
        &self,
        admin: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        optional: bool,
    ) -> Result<Option<Value>, String> {
        let uri = format!("{admin}{path}");
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token));
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = request.body(Full::new(bytes)).map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(ADMIN_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| format!("{method} {uri}: no answer within {ADMIN_TIMEOUT:?}"))?
            .map_err(|e| format!("{method} {uri}: {e}"))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| format!("{method} {uri}: {e}"))?.to_bytes();
        if status == StatusCode::UNAUTHORIZED {
            return Err(format!(
                "{method} {uri}: 401 Unauthorized: the replica refused the token of --admin-token-file"
            ));
        }
        if optional && status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status != StatusCode::OK {
            return Err(format!("{method} {uri}: {status} {}", String::from_utf8_lossy(&body).trim()));
        }
        serde_json::from_slice(&body).map(Some).map_err(|e| format!("{method} {uri}: not JSON: {e}"))
    }

    /// The replica's Prometheus endpoint: `/metrics` at its admin URL's host.
    fn metrics_url(admin: &str) -> String {
        let uri: http::Uri = admin.parse().unwrap_or_default();
        format!("http://{}/metrics", uri.authority().map_or("", |a| a.as_str()))
    }

    /// The kill switch on every replica at once (one that does not answer delays none of the others); every
    /// replica is tried, and the error names each that failed.
    async fn disarm_all(&self) -> Result<(), String> {
        let mut tasks = tokio::task::JoinSet::new();
        for admin in self.admins.clone() {
            let remote = self.clone();
            tasks.spawn(async move { remote.admin(&admin, Method::POST, "/chaos/disarm", None).await });
        }
        let mut errors = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(view)) if view["armed"] == false => {}
                Ok(Ok(view)) => errors.push(format!("a replica answered the kill switch with {view}")),
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(format!("disarming: {e}")),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }

    async fn calls(&self, metric: &str) -> Result<u64, String> {
        let (mut total, mut found) = (0.0, false);
        for admin in &self.admins {
            let url = Remote::metrics_url(admin);
            let request = http::Request::get(&url).body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
            let response = tokio::time::timeout(ADMIN_TIMEOUT, self.http.request(request))
                .await
                .map_err(|_| format!("GET {url}: no answer within {ADMIN_TIMEOUT:?}"))?
                .map_err(|e| format!("GET {url}: {e}"))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| format!("GET {url}: {e}"))?.to_bytes();
            if status != StatusCode::OK {
                return Err(format!("GET {url}: {status}"));
            }
            let text = String::from_utf8_lossy(&body);
            found |= has_metric(&text, metric);
            total += sum_counter(&text, metric);
        }
        // A replica that has not registered the counter yet counts 0; none having it is a misspelt name.
        if !found {
            return Err(format!("--calls-metric: no replica's /metrics has a counter named `{metric}`"));
        }
        Ok(total as u64)
    }
}

/// The exposition has a series (or a `# TYPE` line) of `name`.
fn has_metric(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        let l = l.strip_prefix("# TYPE ").unwrap_or(l);
        l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{']))
    })
}

/// The sum of every series of counter `name` in a Prometheus text exposition.
fn sum_counter(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            // The name must end here: `name{…} v` or `name v`, not `name_other`.
            let rest = match rest.chars().next()? {
                '{' => &rest[rest.find('}')? + 1..],
                ' ' => rest,
                _ => return None,
            };
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

impl Target for Remote {
    fn describe(&self) -> String {
        format!(
            "{} ({} replica{} through their admin API)",
            self.target,
            self.admins.len(),
            if self.admins.len() == 1 { "" } else { "s" }
        )
    }

    fn client(&self) -> Client {
        self.load.clone()
    }

    fn switches(&self) -> Vec<String> {
        vec![REMOTE_SWITCH.to_owned()]
    }

    fn arm<'a>(&'a self, _switch: &'a str, mut config: ChaosConfig) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            // One seed for every replica (a config without one would draw its own on each), so the run can be
            // replayed from the seed the report records.
            let seed = *config.seed.get_or_insert_with(|| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                now.as_nanos() as u64
            });
            // First the rules, held disarmed, on every replica: one that refuses them (a wrong token, rules it
            // cannot take) fails the scenario before any replica injects a fault.
            config.armed = false;
            let body = serde_json::to_value(&config).map_err(|e| e.to_string())?;
            let loaded = async {
                for admin in &self.admins {
                    self.admin(admin, Method::PUT, "/chaos", Some(&body)).await?;
                }
                // Then arm each; one that refuses now leaves the others to be disarmed.
                for admin in &self.admins {
                    let armed = self.admin(admin, Method::POST, "/chaos/arm", None).await?;
                    if armed["armed"] != true {
                        return Err(format!("POST {admin}/chaos/arm: answered {armed}, not armed"));
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = loaded {
                // Never leave some replicas armed: the kill switch on every one.
                if let Err(more) = self.disarm_all().await {
                    return Err(format!("{e}; disarming after it: {more}"));
                }
                return Err(e);
            }
            Ok(seed)
        })
    }

    fn disarm<'a>(&'a self, _switch: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.disarm_all())
    }

    fn counters<'a>(&'a self, _switch: &'a str) -> BoxFuture<'a, Result<Counters, String>> {
        Box::pin(async move {
            let mut injected = 0;
            for admin in &self.admins {
                let view = self.admin(admin, Method::GET, "/chaos", None).await?;
                let rules = view["counters"]["rules"].as_array().cloned().unwrap_or_default();
                injected += rules.iter().filter_map(|r| r["injected"].as_u64()).sum::<u64>();
            }
            let calls = match &self.calls_metric {
                Some(metric) => Some(self.calls(metric).await?),
                None => None,
            };
            Ok(Counters { calls, injected })
        })
    }

    fn state(&self) -> BoxFuture<'_, Result<State, String>> {
        Box::pin(async move {
            let mut state = State::default();
            for admin in &self.admins {
                let breakers = self.admin_optional(admin, "/breakers").await?.unwrap_or_default();
                for b in breakers["breakers"].as_array().into_iter().flatten() {
                    if b["state"] != "closed" || b["forced"].as_str().is_some_and(|f| f != "none") {
                        let name = b["name"].as_str().unwrap_or("breaker").to_owned();
                        if !state.breakers_open.contains(&name) {
                            state.breakers_open.push(name);
                        }
                    }
                }
                let flags = self.admin_optional(admin, "/flags").await?.unwrap_or_default();
                for f in flags["flags"].as_array().into_iter().flatten() {
                    if f["value"] != f["default"] {
                        let name = f["name"].as_str().unwrap_or("flag").to_owned();
                        if !state.degraded.contains(&name) {
                            state.degraded.push(name);
                        }
                    }
                }
            }
            Ok(state)
        })
    }

    /// Every replica answers `GET {admin}/chaos` with the token (and serves the calls counter, when one is
    /// named), before any load: a wrong token or URL fails the run at once, not at the first arming, after
    /// the replica's admin API has started to slow down the failed reads of the steady state.
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let mut errors = Vec::new();
            for admin in &self.admins {
                if let Err(e) = self.admin(admin, Method::GET, "/chaos", None).await {
                    errors.push(e);
                }
            }
            if !errors.is_empty() {
                return Err(format!("--admin-url: {}", errors.join("; ")));
            }
            if let Some(metric) = &self.calls_metric {
                self.calls(metric).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_by_exact_name() {
        let text = "# TYPE demo_provider_calls_total counter\n\
                    demo_provider_calls_total 12\n\
                    demo_provider_calls_total{route=\"a\"} 3\n\
                    demo_provider_calls_total_other 100\n\
                    other 7\n";
        assert_eq!(sum_counter(text, "demo_provider_calls_total"), 15.0);
        assert_eq!(sum_counter(text, "missing"), 0.0);
    }

    #[test]
    fn a_counter_is_known_by_its_type_line_or_a_series() {
        assert!(has_metric("# TYPE demo_calls_total counter\n", "demo_calls_total"));
        assert!(has_metric("demo_calls_total{a=\"b\"} 0\n", "demo_calls_total"));
        assert!(!has_metric("# TYPE demo_calls_total_other counter\ndemo_calls 1\n", "demo_calls_total"));
    }

    /// What the admin API's `PUT /chaos` reads back (strictly, unknown fields refused) is what the runner
    /// sends: every scenario of the shipped plan, held disarmed.
    #[test]
    fn the_rules_sent_to_a_replica_parse_as_they_were() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/chaos/gameday.yaml");
        let plan = crate::plan::Plan::load(&path).unwrap();
        for s in &plan.scenarios {
            let mut config = s.chaos.clone();
            config.armed = false;
            config.seed = Some(7);
            let text = serde_json::to_value(&config).unwrap().to_string();
            let back = ChaosConfig::from_json_str(&text, None).unwrap_or_else(|e| panic!("{}: {e}: {text}", s.name));
            assert_eq!(back, config, "{}", s.name);
        }
    }

    #[test]
    fn the_metrics_url_is_at_the_admin_host() {
        assert_eq!(Remote::metrics_url("http://127.0.0.1:8080/admin"), "http://127.0.0.1:8080/metrics");
    }

    #[test]
    fn a_token_file_without_a_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "\n").unwrap();
        let err = Remote::new("http://127.0.0.1:1", &["http://127.0.0.1:1/admin".into()], &path).unwrap_err();
        assert!(err.contains("--admin-token-file") && err.contains("no token"), "{err}");
        let err = Remote::new("ftp://x", &["http://127.0.0.1:1/admin".into()], &path).unwrap_err();
        assert!(err.starts_with("--target"), "{err}");
    }
}
