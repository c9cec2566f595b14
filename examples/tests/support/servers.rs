//! The servers the examples' over-the-network tests start: the demo service (`http_service`'s router) on a free
//! loopback port, and a real `prometheus` process (Debian's `prometheus` package); and the HTTP helpers they
//! share. Included by path (`#[path = "support/servers.rs"]`) from each test, which uses some of them.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use examples::http_service::{Options, Service, serve};

/// The plain HTTP/1 client the tests use.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new [`HttpClient`].
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>()
}

/// The demo service served in this process on a free loopback port, stopped when dropped.
pub struct Served {
    /// The service (its chaos handle, flags and metrics).
    pub service: Service,
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Served {
    /// Serves the demo with the chaos `rules`, a copy of `configs/feature_flags.yaml` and, with `token`, the
    /// admin API (token id `ops`), all in `dir`; `adjust` changes the options first.
    pub async fn start(dir: &Path, rules: &str, token: Option<&str>, adjust: impl FnOnce(&mut Options)) -> Served {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::fs::write(dir.join("rules.yaml"), rules).unwrap();
        std::fs::copy(root.join("configs/feature_flags.yaml"), dir.join("flags.yaml")).unwrap();
        let mut options = Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            rules: dir.join("rules.yaml"),
            flags: dir.join("flags.yaml"),
            admin_audit_log: dir.join("audit.jsonl"),
            budget_checkpoint: dir.join("budget-checkpoint.json"),
            ..Options::default()
        };
        if let Some(token) = token {
            std::fs::write(dir.join("tokens"), format!("ops:{token}\n")).unwrap();
            options.admin_token_file = Some(dir.join("tokens"));
        }
        adjust(&mut options);
        let service = Service::start(&options).unwrap();
        let listener = tokio::net::TcpListener::bind(options.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, &service, async {
            let _ = stopped.await;
        }));
        Served { service, addr, stop: Some(stop) }
    }

    /// `http://<addr>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A `prometheus` process, killed (and waited for) on drop, with its log file for diagnostics.
pub struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts `prometheus` with `config`, its data and log under `dir`, on a free loopback port.
    pub fn start(dir: &Path, config: &Path) -> Prometheus {
        let port = free_port();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("prometheus starts");
        Prometheus { child, base: format!("http://127.0.0.1:{port}"), log }
    }

    /// What Prometheus logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port, found by binding port 0 (Prometheus binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether `binary --version` runs.
pub fn installed(binary: &str) -> bool {
    Command::new(binary).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// GET `url`: the status and the body (`None` when the connection fails, e.g. while Prometheus starts).
pub async fn get(client: &HttpClient, url: &str) -> Option<(u16, String)> {
    send(client, http::Method::GET, url, None, "").await
}

/// A request with an optional bearer token and a JSON body (empty: none): the status and the body.
pub async fn send(
    client: &HttpClient,
    method: http::Method,
    url: &str,
    token: Option<&str>,
    json: &str,
) -> Option<(u16, String)> {
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if !json.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(Full::new(Bytes::from(json.to_owned()))).unwrap();
    let response = client.request(request).await.ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// `query` percent-encoded for a URL's query string.
pub fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The instant vector `query` returns at Prometheus `base` (its `data.result`), or the error body.
pub async fn instant_query(client: &HttpClient, base: &str, query: &str) -> Result<Vec<serde_json::Value>, String> {
    let url = format!("{base}/api/v1/query?query={}", encode(query));
    let (status, body) = get(client, &url).await.ok_or("no answer")?;
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
    match json["data"]["result"].as_array() {
        Some(result) if status == 200 => Ok(result.clone()),
        _ => Err(format!("{status}: {body}")),
    }
}
