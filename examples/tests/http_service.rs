//! The `http_service` example's server over real HTTP: rules reloaded from their file, a bad file that keeps
//! the last good rules, flags reloaded from theirs, and `/metrics`.
//!
//! Reloads go through the file watcher, so the tests poll with a bounded number of attempts instead of
//! sleeping a fixed time.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use examples::http_service::{Options, Service, serve_with};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const CALM: &str = "experiment: calm\nrules: []\n";

const OUTAGE: &str = "\
experiment: outage
rules:
  - name: quotes-down
    match: { route: /api/quotes/** }
    sample: { mode: exact, rate: 1.0 }
    fault: { error: { status: 503, body: provider down } }
";

/// A rate over 1: the file parses as YAML but the rule is invalid.
const BAD: &str = "\
experiment: broken
rules:
  - name: too-much
    sample: { mode: exact, rate: 2.0 }
    fault: { error: { status: 503 } }
";

/// A running server on a free loopback port, over its own copy of the rules and flag files.
struct Server {
    service: Service,
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    async fn start(name: &str) -> Server {
        Server::start_with(name, |_| {}).await
    }

    /// [`Server::start`] with `adjust` applied to the options first.
    async fn start_with(name: &str, adjust: impl FnOnce(&mut Options)) -> Server {
        let dir = std::env::temp_dir().join(format!("http-service-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let flags = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/feature_flags.yaml");
        std::fs::copy(&flags, dir.join("flags.yaml")).unwrap();
        std::fs::write(dir.join("rules.yaml"), CALM).unwrap();
        let mut options = Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            rules: dir.join("rules.yaml"),
            flags: dir.join("flags.yaml"),
            ..Options::default()
        };
        adjust(&mut options);
        let service = Service::start(&options).unwrap();
        let listener = tokio::net::TcpListener::bind(options.listen).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_with(listener, &service, &options, async {
            let _ = stopped.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        Server { service, base, client, dir, stop: Some(stop) }
    }

    /// GET `path`: the status, the `x-served-from` header and the body.
    async fn get(&self, path: &str) -> (u16, Option<String>, String) {
        self.get_with(path, &[]).await
    }

    /// [`get`](Self::get) with these request headers.
    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Option<String>, String) {
        let mut request = http::Request::get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self.client.request(request.body(Empty::new()).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let from = response.headers().get("x-served-from").map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, from, String::from_utf8_lossy(&body).into_owned())
    }

    /// Replaces a file the way editors and ConfigMaps do: write another, rename it over.
    fn replace(&self, file: &str, text: &str) {
        let tmp = self.dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.join(file)).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Retries `check` every 25 ms until it gives `Some`, at most 400 times (10 s): reloads go through a file
/// watcher, so a test waits for their effect, bounded, instead of sleeping a fixed time.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for attempt in 0..400 {
        if let Some(value) = check(attempt).await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: not seen within 400 attempts");
}

/// The value of the first sample of `metric` whose labels contain `labels`, in Prometheus text format.
fn sample(text: &str, metric: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")) && line.contains(labels))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_change_takes_effect_a_bad_one_keeps_the_last_good_rules_and_metrics_show_the_faults() {
    let server = Server::start("rules").await;
    assert_eq!(server.get("/healthz").await.0, 200);
    // Calm: the live provider answers, and its quote fills the cache.
    let (status, from, body) = server.get("/quote/ABC").await;
    assert_eq!((status, from), (200, None), "{body}");

    // Every provider call now fails with a 503: a symbol never fetched has no cached quote, so the user sees
    // the 503; a cached symbol is served from the cache.
    server.replace("rules.yaml", OUTAGE);
    eventually("the 503 rule in force", |attempt| {
        let server = &server;
        async move { (server.get(&format!("/quote/NEW{attempt}")).await.0 == 503).then_some(()) }
    })
    .await;
    assert_eq!(server.service.chaos.snapshot().experiment.as_deref(), Some("outage"));
    let (status, from, _) = server.get("/quote/ABC").await;
    assert_eq!((status, from.as_deref()), (200, Some("cache")), "the fallback hides the outage");
    let metrics = server.get("/metrics").await.2;
    let injected = sample(&metrics, "chaos_faults_injected_total", r#"rule="quotes-down""#);
    assert!(injected.is_some_and(|n| n >= 1.0), "chaos_faults_injected_total in:\n{metrics}");

    // A rules file that does not load: rejected with the file, the field and the reason; the outage stays.
    server.replace("rules.yaml", BAD);
    let error = eventually("the bad rules rejected", |_| {
        let status = server.service.rules_status();
        async move { status.last_error }
    })
    .await;
    assert!(error.contains("rules.yaml") && error.contains("rules[0]"), "{error}");
    assert_eq!(server.service.chaos.snapshot().experiment.as_deref(), Some("outage"));
    assert!(server.service.chaos.is_armed());
    assert_eq!(server.get("/quote/NEVER-FETCHED").await.0, 503, "the last good rules still inject");

    // Fixed again: the reload counts, and the provider answers.
    server.replace("rules.yaml", CALM);
    eventually("the calm rules back", |_| {
        let server = &server;
        async move { (server.get("/quote/FRESH").await.0 == 200).then_some(()) }
    })
    .await;
    assert!(server.service.rules_status().reloaded >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_flag_is_reloaded_from_the_flag_file() {
    let server = Server::start("flags").await;
    assert_eq!(server.get("/quote/XYZ").await.0, 200);
    let flags = std::fs::read_to_string(server.dir.join("flags.yaml")).unwrap();
    let forced = flags.replace("    default: none\n", "    default: none\n    value: forced_open\n");
    assert_ne!(forced, flags, "the shipped flag file defines quotes.breaker with `default: none`");
    server.replace("flags.yaml", &forced);
    eventually("quotes.breaker=forced_open", |_| {
        let value = server.service.flags.get("quotes.breaker").map(|(v, _)| v).ok();
        async move { (value.as_deref() == Some("forced_open")).then_some(()) }
    })
    .await;
    // The breaker isolates the provider: a cached symbol comes from the cache, a new one has none.
    let (status, from, _) = server.get("/quote/XYZ").await;
    assert_eq!((status, from.as_deref()), (200, Some("cache")));
    assert_eq!(server.get("/quote/UNSEEN").await.0, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_serves_the_same_quote_with_no_brownout_layer_on_its_path() {
    let server = Server::start_with("bare", |o| {
        o.bare = true;
        o.provider_latency = Duration::ZERO;
    })
    .await;
    assert_eq!(server.get("/quote/ABC").await, (200, None, r#"{"symbol":"ABC","price":101.25}"#.to_owned()));
    // The rules still load, but nothing on the bare path reads them: an outage changes no answer.
    server.replace("rules.yaml", OUTAGE);
    eventually("the outage rules to load", |_| {
        let reloaded = server.service.rules_status().reloaded;
        async move { (reloaded >= 1).then_some(()) }
    })
    .await;
    for _ in 0..20 {
        assert_eq!(server.get("/quote/ABC").await.0, 200);
    }
    assert_eq!(server.get("/healthz").await.0, 200);
}

#[test]
fn bare_and_provider_latency_parse_and_bare_refuses_the_admin_api() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let o = Options::parse(args(&["--bare", "--provider-latency", "0ms"])).unwrap();
    assert!(o.bare);
    assert_eq!(o.provider_latency, Duration::ZERO);
    assert_eq!(Options::default().provider_latency, Duration::from_millis(1));
    assert!(
        Options::parse(args(&["--provider-latency", "soon"])).unwrap_err().to_string().contains("--provider-latency")
    );
    assert!(Options::parse(args(&["--bare", "--admin-token-file", "t"])).unwrap_err().to_string().contains("--bare"));
}

#[test]
fn the_cpu_clock_option_parses_and_defaults_to_the_thread_clock() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(Options::default().thread_cpu);
    assert!(!Options::parse(args(&["--cpu-clock", "wall"])).unwrap().thread_cpu);
    assert!(Options::parse(args(&["--cpu-clock", "thread"])).unwrap().thread_cpu);
    let err = Options::parse(args(&["--cpu-clock", "cycles"])).unwrap_err().to_string();
    assert!(err.contains("--cpu-clock") && err.contains("cycles"), "{err}");
}

/// With the thread clock each request's CPU is charged to the meter; with the wall estimate it is recorded
/// as wall time and never claims process CPU.
#[tokio::test]
async fn the_demo_meters_request_cpu_with_the_clock_asked_for() {
    use examples::demo::{self, Options as DemoOptions};
    use tower::ServiceExt;

    for thread_cpu in [true, false] {
        let chaos = brownout_tower::ChaosHandle::for_environment(brownout_chaos::Environment::Test);
        let app = demo::app_with(&chaos, &DemoOptions { thread_cpu, ..DemoOptions::default() }, Duration::ZERO);
        for _ in 0..5 {
            let req = http::Request::get("/quote/ACME").body(axum::body::Body::empty()).unwrap();
            let response = app.app.clone().oneshot(req).await.unwrap();
            assert_eq!(response.status(), 200);
        }
        let r = app.meter.reconcile();
        assert_eq!((r.finished_jobs, r.running_jobs), (5, 0), "thread_cpu {thread_cpu}");
        assert_eq!(r.jobs_cpu_seconds > 0.0, thread_cpu, "thread_cpu {thread_cpu}: {r:?}");
    }
}

/// Header-driven faults through the real service: the demo passes the `x-chaos-*` headers on to the provider
/// call where the chaos layer sits, so a request with the right token gets the fault it asks for, and one
/// without the token, or with a wrong one, gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_chaos_headers_with_the_token_inject_through_the_real_service() {
    const TOKEN: &str = "contract-token-0123456789abcdef";
    let server = Server::start_with("header-faults", |o| {
        let dir = o.rules.parent().unwrap().to_path_buf();
        std::fs::write(dir.join("chaos-token"), format!("{TOKEN}\n")).unwrap();
        let rules = format!(
            "experiment: contract\nheader_faults: {{ enabled: true, token_file: {} }}\nrules: []\n",
            dir.join("chaos-token").display()
        );
        std::fs::write(dir.join("header-rules.yaml"), rules).unwrap();
        o.rules = dir.join("header-rules.yaml");
    })
    .await;
    let abort = ("x-chaos-abort-status", "503");
    // No token, or a wrong one: the headers are ignored and the provider answers.
    assert_eq!(server.get_with("/quote/H1", &[abort]).await.0, 200);
    let wrong = ("x-chaos-token", "contract-token-0123456789abcdeX");
    assert_eq!(server.get_with("/quote/H2", &[abort, wrong]).await.0, 200);
    // The token: the provider call fails with the 503 asked for; a symbol never fetched has no cached quote.
    let (status, _, body) = server.get_with("/quote/H3", &[abort, ("x-chaos-token", TOKEN)]).await;
    assert_eq!((status, body.as_str()), (503, "quote provider unavailable"));
    // A cached symbol is served from the cache while its provider call is aborted.
    let (status, from, _) = server.get_with("/quote/H1", &[abort, ("x-chaos-token", TOKEN)]).await;
    assert_eq!((status, from.as_deref()), (200, Some("cache")));
    let injected = server.service.chaos.snapshot().rules.iter().find(|r| r.name == "header").map(|r| r.injected);
    assert_eq!(injected, Some(2), "two faults asked for with the token, none without");
}

/// Reads from `stream` until the server closes it (or resets it); panics if it is still open after `bound`.
async fn closed_within(stream: &mut tokio::net::TcpStream, bound: Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(bound, read_all).await.expect("the server closes the slow connection");
    String::from_utf8_lossy(&seen).into_owned()
}

/// A client that sends half a request head, or half a body, is cut off after the configured timeout
/// instead of holding its connection open; a normal request on the same server is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_bodies_are_cut_off_after_their_timeouts() {
    use tokio::io::AsyncWriteExt;
    const TOKEN: &str = "slow-client-token-0123456789abcdef";
    let server = Server::start_with("slow", |o| {
        o.header_read_timeout = Duration::from_millis(300);
        o.body_read_timeout = Duration::from_millis(300);
        let tokens = o.rules.parent().unwrap().join("tokens");
        std::fs::write(&tokens, format!("ops:{TOKEN}\n")).unwrap();
        o.admin_token_file = Some(tokens);
        o.admin_audit_log = o.rules.parent().unwrap().join("audit.jsonl");
    })
    .await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    // Half a head: never completed, closed without an answer.
    let mut slow_head = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow_head.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
    // A whole head, then 10 of the 1000 body bytes it announced, to an endpoint that reads the body.
    let mut slow_body = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /admin/chaos HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"rules\":"
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();
    // Generous bounds: the timeouts are 300 ms; the checks are only that the connections end.
    let seen = closed_within(&mut slow_head, Duration::from_secs(5)).await;
    assert!(!seen.contains("200 OK"), "{seen}");
    let seen = closed_within(&mut slow_body, Duration::from_secs(5)).await;
    assert!(seen.starts_with("HTTP/1.1 400") && seen.contains("not received within"), "{seen}");
    assert_eq!(server.service.chaos.snapshot().experiment.as_deref(), Some("calm"), "the cut-off body changed nothing");
    // The server still answers normal requests.
    assert_eq!(server.get("/healthz").await.0, 200);
}

#[test]
fn the_read_timeouts_parse_and_refuse_zero() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let o = Options::default();
    assert_eq!((o.header_read_timeout, o.body_read_timeout), (Duration::from_secs(10), Duration::from_secs(30)));
    let o = Options::parse(args(&["--header-read-timeout", "2s", "--body-read-timeout", "500ms"])).unwrap();
    assert_eq!((o.header_read_timeout, o.body_read_timeout), (Duration::from_secs(2), Duration::from_millis(500)));
    for bad in ["0s", "soon"] {
        let e = Options::parse(args(&["--body-read-timeout", bad])).unwrap_err().to_string();
        assert!(e.contains("--body-read-timeout") && e.contains(bad), "{e}");
    }
}
