//! The GameDay's remote target against two real `http_service` replicas on loopback, each with its admin API:
//! the load goes to replica 1 only, the faults are armed through the admin API of both, and every end of a
//! fault (planned, the SLO guard's abort) disarms both; a replica that refuses the token fails the run before
//! any replica is armed.
//!
//! Each replica runs in its own scratch directory (its working directory too: nothing is written into the
//! source tree) over its own copies of the flag file, an empty rule set and a token file. What the replicas
//! did is read from them: `GET /admin/chaos` while the run goes on, and each one's admin audit log.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brownout_gameday::{Options, Plan, Remote, Run, run};
use serde_json::Value;

const TOKEN: &str = "gameday-remote-test-token-0123456789";
const OTHER_TOKEN: &str = "another-replica-token-9876543210-abcdef";

/// One run at a time: each drives a replica with load, and two at once on a shared two-core machine would
/// measure the machine more than the service.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every request is a symbol never quoted before (`{seq}`): the cache has nothing for it, so a provider that
/// answers 503 leaves the user with an error (what trips the SLO guard), while a slow provider only slows
/// the answer. Real durations (the test runs at time scale 1), kept short.
const PLAN: &str = r#"
load:
  rps: 40
  workers: 16
  request_timeout: 5s
  routes:
    - { name: quote, path: "/quote/NEW{seq}", critical: true }
slo:
  user_error_rate: 0.5
  p95: 2s
  recovery_p95_factor: 10.0
  recovery_p95: 2s
  abort: { error_rate: 0.2, p95: 4s, window: 1s, min_requests: 10 }
phases:
  before: 1s
  after: 1s
  window: 250ms
scenarios:
  - name: slow_provider
    description: every quote provider call takes 20 ms more
    duration: 3s
    injected_band: [0.90, 1.00]
    recovery_sla: 5s
    chaos:
      experiment: slow_provider
      rules:
        - name: slow
          sample: { mode: exact, rate: 1.0 }
          fault: { latency: { fixed: 20ms } }
  - name: slow_some
    description: a third of the quote provider calls take 20 ms more (within production's blast radius)
    duration: 3s
    injected_band: [0.20, 0.40]
    recovery_sla: 5s
    chaos:
      experiment: slow_some
      rules:
        - name: slow
          sample: { mode: exact, rate: 0.3 }
          fault: { latency: { fixed: 20ms } }
  - name: exchange_down
    description: the quote provider answers 503, and no quote is cached
    duration: 60s
    injected_band: [0.90, 1.00]
    recovery_sla: 5s
    chaos:
      experiment: exchange_down
      rules:
        - name: down
          sample: { mode: exact, rate: 1.0 }
          fault: { error: { status: 503, body: "exchange down" } }
"#;

/// A replica: the real `http_service` binary in its own scratch directory, with the admin API.
struct Replica {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Replica {
    /// Starts `bin` on a free port, its admin API accepting `token`; waits for its `listening on` line.
    fn start(bin: &Path, token: &str) -> Replica {
        Replica::start_in(bin, token, None)
    }

    /// [`start`](Self::start) with `BROWNOUT_ENV` set to `env`.
    fn start_in(bin: &Path, token: &str, env: Option<&str>) -> Replica {
        let dir = tempfile::Builder::new().prefix("gameday-remote-").tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        std::fs::copy(repo.join("configs/feature_flags.yaml"), dir.path().join("flags.yaml")).unwrap();
        // Held disarmed from the start: `armed: true` later can only come from the runner.
        std::fs::write(dir.path().join("rules.yaml"), "experiment: calm\narmed: false\nrules: []\n").unwrap();
        std::fs::write(dir.path().join("tokens"), format!("ops:{token}\n")).unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = Command::new(bin);
        match env {
            Some(env) => command.env("BROWNOUT_ENV", env),
            None => command.env_remove("BROWNOUT_ENV"),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--rules", "rules.yaml", "--flags", "flags.yaml"])
            .args(["--admin-token-file", "tokens", "--admin-audit-log", "audit.jsonl"])
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("listening on http://") {
                        break addr.parse().unwrap();
                    }
                }
                _ => {
                    let _ = child.wait();
                    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                    panic!("http_service did not start:\n{log}")
                }
            }
        };
        // Keep draining its standard output, so it never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Replica { child, addr, dir }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn admin_url(&self) -> String {
        format!("http://{}/admin", self.addr)
    }

    /// `GET /admin/chaos`.
    fn chaos(&self) -> Value {
        let (status, body) = get(self.addr, "/admin/chaos", Some(TOKEN)).unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// The admin audit log's `action`s on chaos, in order.
    fn audit(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter_map(|v| v["action"].as_str().map(str::to_owned))
            .filter(|a| a.starts_with("chaos."))
            .collect()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 GET on a fresh connection: the status and the body (the server answers with a length).
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Reads `GET /admin/chaos` of each replica every 25 ms until stopped, and keeps, per replica, the
/// experiments it was seen armed with.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(addrs: Vec<SocketAddr>) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(vec![Vec::new(); addrs.len()]));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for (i, addr) in addrs.iter().enumerate() {
                    let Ok((200, body)) = get(*addr, "/admin/chaos", Some(TOKEN)) else { continue };
                    let Ok(view) = serde_json::from_str::<Value>(&body) else { continue };
                    if view["armed"] == true {
                        let experiment = view["config"]["experiment"].as_str().unwrap_or_default().to_owned();
                        let mut seen = v.lock().unwrap();
                        if !seen[i].contains(&experiment) {
                            seen[i].push(experiment);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        Watcher { stop, seen, thread: Some(thread) }
    }

    /// Stops; per replica, the experiments seen armed.
    fn stop(mut self) -> Vec<Vec<String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.seen.lock().unwrap().clone()
    }
}

fn plan(dir: &Path) -> Plan {
    let path = dir.join("plan.yaml");
    std::fs::write(&path, PLAN).unwrap();
    Plan::load(&path).unwrap()
}

fn options(out: &Path, scenarios: &[&str]) -> Options {
    Options::default()
        .output_dir(out.to_path_buf())
        .time_scale(1.0)
        .scenarios(scenarios.iter().map(|s| (*s).to_owned()).collect())
        .seed(7)
}

fn report(run: &Run, scenario: &str) -> Value {
    let path = run.dir.as_ref().unwrap().join(format!("{scenario}_report.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Both replicas armed by each scenario (seen armed while it ran, and in their audit logs), both disarmed at
/// each fault's end, including the SLO guard's abort; the injected rate divides by the calls counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_armed_on_every_replica_and_an_abort_disarms_every_replica() {
    let _one = ONE_AT_A_TIME.lock().await;
    let bin = tokio::task::spawn_blocking(|| common::example("http_service")).await.unwrap();
    let replicas = [Replica::start(&bin, TOKEN), Replica::start(&bin, TOKEN)];
    let scratch = tempfile::Builder::new().prefix("gameday-remote-run-").tempdir().unwrap();
    let token = scratch.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    for r in &replicas {
        assert_eq!(r.chaos()["armed"], false, "a replica starts disarmed");
    }

    let admins: Vec<String> = replicas.iter().map(Replica::admin_url).collect();
    let remote = Remote::new(&replicas[0].url(), &admins, &token).unwrap().calls_metric("demo_provider_calls_total");
    let watcher = Watcher::start(replicas.iter().map(|r| r.addr).collect());
    let out = scratch.path().join("out");
    let result =
        run(&plan(scratch.path()), Arc::new(remote), &options(&out, &["slow_provider", "exchange_down"])).await;
    let seen = watcher.stop();
    let result = result.unwrap_or_else(|e| panic!("the run could not be made: {e}"));

    // Armed on both: seen armed over the admin API while the fault ran, and audited by each replica.
    for (i, r) in replicas.iter().enumerate() {
        assert!(seen[i].iter().any(|e| e == "slow_provider"), "replica {} never seen armed: {seen:?}", i + 1);
        let audit = r.audit();
        let arms = audit.iter().filter(|a| *a == "chaos.arm").count();
        let disarms = audit.iter().filter(|a| *a == "chaos.disarm").count();
        assert_eq!(arms, 2, "replica {}: one arm per scenario: {audit:?}", i + 1);
        assert!(disarms >= 2, "replica {}: one disarm per scenario at least: {audit:?}", i + 1);
        assert_eq!(audit.last().map(String::as_str), Some("chaos.disarm"), "replica {}: {audit:?}", i + 1);
        // ... and disarmed at the end, replica 2 too, though no load reached it.
        let view = r.chaos();
        assert_eq!(view["armed"], false, "replica {} left armed: {view}", i + 1);
        assert_eq!(view["config"]["experiment"], "exchange_down", "replica {}: {view}", i + 1);
    }

    // The planned end: the injected rate is the sum of the replicas' rule counters over the calls counter.
    let slow = report(&result, "slow_provider");
    let e = &slow["execution"];
    assert_eq!(e["fault_end"], "planned", "{e}");
    let calls = e["dependency_calls"].as_u64().unwrap_or_else(|| panic!("no calls counted: {e}"));
    let injected = e["injected_faults"].as_u64().unwrap();
    assert!(calls > 0 && injected > 0, "{e}");
    let rate = e["injected_rate"].as_f64().unwrap();
    assert!((rate - injected as f64 / calls as f64).abs() < 1e-9, "{e}");
    assert!(rate > 0.5 && rate <= 1.0, "a latency on every call: {e}");
    assert_eq!(slow["seed"], 7);

    // The abort: the guard tripped on the users' errors, and the runner disarmed both replicas.
    let down = report(&result, "exchange_down");
    let (e, v) = (&down["execution"], &down["validation"]);
    assert_eq!(e["fault_end"], "abort", "{down}");
    assert_eq!(v["aborted"], true, "{v}");
    assert!(v["abort_reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
    assert!(e["aborted_after_seconds"].as_f64().is_some_and(|s| s < 30.0), "{e}");
    assert_eq!(v["verdict"], "FAIL", "{v}");
    assert!(!result.passed() && !result.interrupted());
}

/// A replica that refuses the token fails the run before any load, with an error naming it and the token;
/// no replica was changed at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_refuses_the_token_fails_the_run_before_any_change() {
    let _one = ONE_AT_A_TIME.lock().await;
    let bin = tokio::task::spawn_blocking(|| common::example("http_service")).await.unwrap();
    let replicas = [Replica::start(&bin, TOKEN), Replica::start(&bin, OTHER_TOKEN)];
    let scratch = tempfile::Builder::new().prefix("gameday-remote-run-").tempdir().unwrap();
    let token = scratch.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();

    let admins: Vec<String> = replicas.iter().map(Replica::admin_url).collect();
    let remote = Remote::new(&replicas[0].url(), &admins, &token).unwrap().calls_metric("demo_provider_calls_total");
    let out = scratch.path().join("out");
    let err = run(&plan(scratch.path()), Arc::new(remote), &options(&out, &["slow_provider"])).await.unwrap_err();
    assert!(err.contains("--admin-url") && err.contains("401") && err.contains("token"), "{err}");
    assert!(err.contains(&replicas[1].admin_url()), "the error names the replica: {err}");
    assert!(!err.contains(&replicas[0].admin_url()), "only the refusing replica is named: {err}");
    assert_eq!(brownout_gameday::exit_status(&Err(err)), 2);

    assert_eq!(replicas[0].chaos()["armed"], false);
    assert_eq!(replicas[0].audit(), Vec::<String>::new(), "replica 1 was changed");
    // Replica 2 refused everything: still disarmed, as it started (read with its own token).
    let (status, body) = get(replicas[1].addr, "/admin/chaos", Some(OTHER_TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["armed"], false, "{body}");
    assert!(!out.join("chaos_summary.json").exists(), "no report of a run not made");
}

/// A replica that accepts the rules but refuses to arm them (it runs in `prod`, and the rules do not say
/// `allow_prod`; within production's blast radius, so it loads them) fails the scenario: the replica armed before it is disarmed, and none is left armed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_refuses_to_arm_leaves_no_replica_armed() {
    let _one = ONE_AT_A_TIME.lock().await;
    let bin = tokio::task::spawn_blocking(|| common::example("http_service")).await.unwrap();
    let replicas = [Replica::start(&bin, TOKEN), Replica::start_in(&bin, TOKEN, Some("prod"))];
    let scratch = tempfile::Builder::new().prefix("gameday-remote-run-").tempdir().unwrap();
    let token = scratch.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();

    let admins: Vec<String> = replicas.iter().map(Replica::admin_url).collect();
    let remote = Remote::new(&replicas[0].url(), &admins, &token).unwrap();
    let out = scratch.path().join("out");
    let err = run(&plan(scratch.path()), Arc::new(remote), &options(&out, &["slow_some"])).await.unwrap_err();
    assert!(err.contains("slow_some") && err.contains("allow_prod"), "{err}");
    assert!(err.contains(&format!("{}/chaos/arm", replicas[1].admin_url())), "the error names the replica: {err}");

    for (i, r) in replicas.iter().enumerate() {
        let view = r.chaos();
        assert_eq!(view["armed"], false, "replica {} left armed: {view}", i + 1);
        assert_eq!(view["config"]["experiment"], "slow_some", "replica {} got the rules: {view}", i + 1);
    }
    let audit = replicas[0].audit();
    // Armed, then disarmed (by the target, and again by the runner's clean-up after the failed scenario).
    assert_eq!(audit[..2], ["chaos.replace", "chaos.arm"], "replica 1: {audit:?}");
    assert!(audit.len() > 2 && audit[2..].iter().all(|a| a == "chaos.disarm"), "replica 1: {audit:?}");
    let audit = replicas[1].audit();
    assert_eq!(audit.first().map(String::as_str), Some("chaos.replace"), "replica 2: {audit:?}");
    assert!(!audit.contains(&"chaos.arm".to_owned()), "replica 2 armed in prod: {audit:?}");
}
