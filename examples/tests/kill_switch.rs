//! The kill switch of a real `http_service` (its admin API, its rules file under the real file watcher) wins
//! over every edit of the rules file, while requests flow; only an explicit arm brings the edited rules in.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use examples::http_service::{Options, Service, serve};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const TOKEN: &str = "kill-switch-test-token-0123456789abcdef";

fn outage(n: usize) -> String {
    format!(
        "experiment: outage-{n}\nrules:\n  - name: quotes-down\n    sample: {{ mode: exact, rate: 1.0 }}\n    fault: {{ error: {{ status: 503 }} }}\n"
    )
}

struct Running {
    service: Service,
    base: String,
    client: Client<HttpConnector, Full<bytes::Bytes>>,
    rules: PathBuf,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Running {
    async fn start() -> Running {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.yaml");
        std::fs::write(&rules, outage(0)).unwrap();
        let flags = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/feature_flags.yaml");
        std::fs::copy(&flags, dir.path().join("flags.yaml")).unwrap();
        std::fs::write(dir.path().join("tokens"), format!("ops:{TOKEN}\n")).unwrap();
        let options = Options {
            listen: "127.0.0.1:0".parse().unwrap(),
            rules: rules.clone(),
            flags: dir.path().join("flags.yaml"),
            admin_token_file: Some(dir.path().join("tokens")),
            admin_audit_log: dir.path().join("audit.jsonl"),
            budgets: Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/budgets")),
            budget_checkpoint: dir.path().join("budget-checkpoint.json"),
            ..Options::default()
        };
        let service = Service::start(&options).unwrap();
        let listener = tokio::net::TcpListener::bind(options.listen).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, &service, async {
            let _ = stopped.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Running { service, base, client, rules, _dir: dir, _stop: stop }
    }

    async fn call(&self, method: &str, path: &str) -> (u16, String) {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::default())
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn chaos(&self) -> serde_json::Value {
        let (status, body) = self.call("GET", "/admin/chaos").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// Writes `text` over `path` the way the `n`th editor would: in place, by rename, or truncate then write.
fn edit(path: &std::path::Path, n: usize, text: &str) {
    match n % 3 {
        0 => std::fs::write(path, text).unwrap(),
        1 => {
            let tmp = path.with_extension(format!("tmp{n}"));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        _ => {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().write(true).truncate(true).open(path).unwrap();
            file.flush().unwrap();
            file.write_all(text.as_bytes()).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disarmed_service_stays_disarmed_through_a_thousand_edits_until_armed() {
    let running = Running::start().await;
    assert_eq!(running.call("GET", "/quote/NEW").await.0, 503, "the outage is armed at start");
    let (status, body) = running.call("POST", "/admin/chaos/disarm").await;
    assert_eq!((status, body.contains(r#""armed":false"#)), (200, true), "{body}");

    // Requests flow, and a watcher of our own checks the switch, while the file is edited 1,000 times.
    let done = Arc::new(AtomicBool::new(false));
    let rearmed = Arc::new(AtomicU64::new(0));
    let watch = {
        let (chaos, done, rearmed) = (running.service.chaos.clone(), done.clone(), rearmed.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if chaos.is_armed() {
                    rearmed.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let traffic = {
        let (base, client, done) = (running.base.clone(), running.client.clone(), done.clone());
        tokio::spawn(async move {
            // Symbols never fetched before: no cache can hide a fault, so any injected 503 shows.
            let (mut sent, mut failed) = (0u64, 0u64);
            while !done.load(Ordering::Relaxed) {
                let uri: http::Uri = format!("{base}/quote/T{sent}").parse().unwrap();
                sent += 1;
                if client.get(uri).await.unwrap().status() != http::StatusCode::OK {
                    failed += 1;
                }
            }
            (sent, failed)
        })
    };
    let rules = running.rules.clone();
    tokio::task::spawn_blocking(move || {
        for n in 1..=1000 {
            edit(&rules, n, &outage(n));
            if n % 50 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    })
    .await
    .unwrap();
    // The watcher settles for 100 ms and rescans every second: 2 s covers the last edit.
    tokio::time::sleep(Duration::from_secs(2)).await;
    done.store(true, Ordering::Relaxed);
    watch.join().unwrap();
    let (sent, failed) = traffic.await.unwrap();
    eprintln!("{sent} requests during the edits");
    assert!(sent > 0);
    assert_eq!(failed, 0, "no request got an injected fault while disarmed");
    assert_eq!(rearmed.load(Ordering::Relaxed), 0, "the set was never armed, not even for a moment");

    let view = running.chaos().await;
    assert_eq!(view["armed"], false, "{view}");
    assert_eq!(view["latched"], "kill switch", "{view}");
    assert_eq!(view["config"]["experiment"], "outage-1000", "the last edit is loaded, held disarmed: {view}");
    let metrics = running.call("GET", "/metrics").await.1;
    assert!(metrics.lines().any(|l| l == "chaos_armed 0"), "chaos_armed in:\n{metrics}");
    assert!(running.service.rules_status().reloaded >= 1);

    // An explicit arm brings the edited rules in.
    let (status, body) = running.call("POST", "/admin/chaos/arm").await;
    assert_eq!(status, 200, "{body}");
    let view = running.chaos().await;
    assert_eq!((view["armed"].clone(), view["latched"].clone()), (true.into(), serde_json::Value::Null));
    assert_eq!(running.call("GET", "/quote/AFTER").await.0, 503, "the edited rules are in force");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_saves_of_the_same_content_never_reload() {
    let running = Running::start().await;
    let before = running.service.chaos.snapshot();
    for _ in 0..100 {
        let _ = std::fs::read(&running.rules).unwrap();
    }
    edit(&running.rules, 0, &outage(0));
    edit(&running.rules, 1, &outage(0));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(running.service.rules_status().reloaded, 0, "{:?}", running.service.rules_status());
    assert_eq!(running.service.chaos.snapshot().seed, before.seed, "the set was not recompiled");
}
