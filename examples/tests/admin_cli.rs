//! The `degrade` CLI against the `http_service` server's admin API on a free loopback port: `set`, `unset`,
//! `get` and `list` over `--url`, the token from `--token-file` and from `DEGRADE_TOKEN`, and clear errors
//! for a wrong token, a bad value, `--token` on the command line and a service that is not there. Also: the
//! server without `--admin-token-file` answers 404 at `/admin`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use examples::http_service::{Options, Service, serve};

const TOKEN: &str = "ops-token-0123456789abcdef-xyz";

struct Server {
    service: Service,
    url: String,
    dir: PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(name: &str, admin: bool) -> Server {
    let dir = std::env::temp_dir().join(format!("admin-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let flags = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/feature_flags.yaml");
    std::fs::copy(&flags, dir.join("flags.yaml")).unwrap();
    std::fs::write(dir.join("rules.yaml"), "experiment: calm\nrules: []\n").unwrap();
    std::fs::write(dir.join("tokens"), format!("# operators\nops:{TOKEN}\n")).unwrap();
    let options = Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        rules: dir.join("rules.yaml"),
        flags: dir.join("flags.yaml"),
        admin_token_file: admin.then(|| dir.join("tokens")),
        admin_audit_log: dir.join("audit.jsonl"),
        ..Options::default()
    };
    let service = Service::start(&options).unwrap();
    let listener = tokio::net::TcpListener::bind(options.listen).await.unwrap();
    let url = format!("http://{}/admin", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, &service, async {
        let _ = stopped.await;
    }));
    Server { service, url, dir, _stop: stop }
}

/// Runs `degrade` on a blocking thread (the server runs on this test's runtime).
async fn run(args: Vec<String>, env_token: Option<&str>) -> Output {
    let env_token = env_token.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(common::degrade());
        cmd.args(&args).env_remove("DEGRADE_TOKEN");
        if let Some(t) = env_token {
            cmd.env("DEGRADE_TOKEN", t);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_lists_and_unsets_flags_of_a_running_service() {
    let s = start("happy", true).await;
    let token_file = s.dir.join("tokens").display().to_string();

    let out = run(args(&["--url", &s.url, "--token-file", &token_file, "set", "quotes.source", "cached"]), None).await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(text(&out).0.trim(), "quotes.source = cached (override)");
    assert_eq!(s.service.flags.get("quotes.source").unwrap().0, "cached", "the running service changed");

    let out = run(args(&["--url", &s.url, "list"]), Some(TOKEN)).await;
    assert!(out.status.success(), "{:?}", text(&out));
    let list = text(&out).0;
    let row = list.lines().find(|l| l.starts_with("quotes.source ")).unwrap();
    assert!(row.contains("cached") && row.ends_with("override"), "{row}");
    assert!(list.contains("api.shed_percent"));

    let out = run(args(&["--url", &s.url, "list", "--json"]), Some(TOKEN)).await;
    assert!(out.status.success(), "{:?}", text(&out));
    let doc: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    let quotes = doc["flags"].as_array().unwrap().iter().find(|f| f["name"] == "quotes.source").unwrap().clone();
    assert_eq!((&quotes["value"], &quotes["source"]), (&"cached".into(), &"override".into()), "{quotes}");

    let out = run(args(&["--url", &s.url, "get", "quotes.source"]), Some(TOKEN)).await;
    assert_eq!(text(&out).0.trim(), "cached");

    let out = run(args(&["--url", &s.url, "unset", "quotes.source"]), Some(TOKEN)).await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(s.service.flags.get("quotes.source").unwrap().0, "live");

    let audit = std::fs::read_to_string(s.dir.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 2, "{audit}");
    assert!(audit.contains(r#""token_id":"ops""#) && !audit.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_clearly_what_went_wrong_and_changes_nothing() {
    let s = start("errors", true).await;
    let before = s.service.flags.list();

    let out = run(args(&["--url", &s.url, "set", "quotes.source", "cached"]), Some("wrong-token-0123456789abc")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("401"), "{:?}", text(&out));
    assert!(!text(&out).1.contains("wrong-token"), "the token is never echoed");

    let out = run(args(&["--url", &s.url, "set", "api.shed_percent", "-5"]), Some(TOKEN)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("400: value:"), "{:?}", text(&out));

    let out = run(args(&["--url", &s.url, "set", "no.such.flag", "1"]), Some(TOKEN)).await;
    assert!(text(&out).1.contains("404") && text(&out).1.contains("no.such.flag"), "{:?}", text(&out));

    let out = run(args(&["--url", &s.url, "set", "../chaos/disarm", "1"]), Some(TOKEN)).await;
    assert!(text(&out).1.contains("is not a flag name"), "{:?}", text(&out));

    let out = run(args(&["--url", &s.url, "--token", TOKEN, "list"]), None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--token is refused"), "{:?}", text(&out));

    // `validate` checks a file: refused with --url, as a usage error, before anything is sent.
    let out = run(args(&["--url", &s.url, "validate"]), Some(TOKEN)).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("does not go with --url"), "{:?}", text(&out));

    let out = run(args(&["--url", &s.url, "list"]), None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("DEGRADE_TOKEN"), "{:?}", text(&out));

    assert_eq!(s.service.flags.list(), before);

    // Nothing listens on this port any more.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let out = run(args(&["--url", &format!("http://{closed}/admin"), "list"]), Some(TOKEN)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("cannot connect"), "{:?}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_file_admin_is_404() {
    let s = start("off", false).await;
    let out = run(args(&["--url", &s.url, "list"]), Some(TOKEN)).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("404"), "{:?}", text(&out));
}
