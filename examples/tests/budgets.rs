//! http_service charges its requests to the budgets of `--budgets`: `GET /admin/budgets` shows the demo's
//! budget (`configs/budgets/quote-api.yaml`) using CPU and memory once requests have been served.

use std::path::Path;

use bytes::Bytes;
use examples::http_service::{Options, Service, serve};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

const TOKEN: &str = "budgets-test-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_charged_to_the_demo_budget() {
    let dir = std::env::temp_dir().join(format!("http-service-budgets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("configs/feature_flags.yaml"), dir.join("flags.yaml")).unwrap();
    std::fs::write(dir.join("rules.yaml"), "experiment: calm\nrules: []\n").unwrap();
    std::fs::write(dir.join("tokens"), format!("ops:{TOKEN}\n")).unwrap();
    let options = Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        rules: dir.join("rules.yaml"),
        flags: dir.join("flags.yaml"),
        admin_token_file: Some(dir.join("tokens")),
        admin_audit_log: dir.join("audit.jsonl"),
        budgets: Some(repo.join("configs/budgets")),
        budget_checkpoint: dir.join("budget-checkpoint.json"),
        ..Options::default()
    };
    let service = Service::start(&options).unwrap();
    let listener = tokio::net::TcpListener::bind(options.listen).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, &service, async {
        let _ = stopped.await;
    }));

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let budgets = || async {
        let req = http::Request::get(format!("{base}/admin/budgets"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Empty::new())
            .unwrap();
        let response = client.request(req).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()
    };
    let before = budgets().await;
    assert!(before.to_string().contains("quote-api"), "{before}");

    for i in 0..50 {
        let response = client.get(format!("{base}/quote/S{}", i % 5).parse().unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
    }
    let after = budgets().await;
    let usage = |v: &serde_json::Value| {
        let list = v.get("budgets").and_then(|b| b.as_array()).cloned().unwrap_or_default();
        let quote = list.into_iter().find(|b| b["name"] == "quote-api").unwrap_or_else(|| panic!("{v}"));
        quote["utilization"]["cpu"].as_f64().unwrap_or_else(|| panic!("{quote}"))
    };
    assert!(usage(&after) > usage(&before), "CPU charged to quote-api: {before} → {after}");
    std::fs::remove_dir_all(&dir).unwrap();
}
