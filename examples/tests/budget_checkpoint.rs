//! The `http_service` binary keeps its budgets' month-to-date usage across restarts (`--budget-checkpoint`):
//! killed with SIGKILL under load, again and again, it never comes back with less usage than it showed one
//! save interval before the kill; stopped with SIGTERM, it comes back with all of it.
//!
//! The real binary runs in a scratch directory (its working directory too: nothing is written into the source
//! tree), over its own copies of the flag and rules files and the shipped budgets. Usage is read from
//! `GET /admin/budgets` (the `quote-api` budget's CPU and memory utilisation, month to date).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use examples::http_service::BUDGET_CHECKPOINT_INTERVAL;

const TOKEN: &str = "checkpoint-test-token-0123456789";

/// A scratch directory with the flag, rules and token files; the checkpoint goes in it too.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("budget-checkpoint-").tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("configs/feature_flags.yaml"), dir.path().join("flags.yaml")).unwrap();
    std::fs::write(dir.path().join("rules.yaml"), "experiment: calm\nrules: []\n").unwrap();
    std::fs::write(dir.path().join("tokens"), format!("ops:{TOKEN}\n")).unwrap();
    dir
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts the binary on a free port with the checkpoint `dir/checkpoint.json`; waits for its
    /// `listening on` line.
    fn start(bin: &Path, dir: &Path) -> Server {
        let budgets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/budgets");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).unwrap();
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--rules", "rules.yaml", "--flags", "flags.yaml"])
            .args(["--admin-token-file", "tokens", "--admin-audit-log", "audit.jsonl"])
            .arg("--budgets")
            .arg(&budgets)
            .args(["--budget-checkpoint", "checkpoint.json"])
            .current_dir(dir)
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
                    panic!("http_service did not start:\n{}", std::fs::read_to_string(dir.join("server.log")).unwrap())
                }
            }
        };
        // Keep draining its standard output, so it never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }

    /// The `quote-api` budget's month-to-date (CPU, memory) utilisation.
    fn usage(&self) -> (f64, f64) {
        let (status, body) = get(self.addr, "/admin/budgets", Some(TOKEN)).unwrap();
        assert_eq!(status, 200, "{body}");
        let json = &body[body.find('{').unwrap()..=body.rfind('}').unwrap()];
        let doc: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {body}"));
        let quote = doc["budgets"].as_array().unwrap().iter().find(|b| b["name"] == "quote-api").unwrap().clone();
        let ratio = |r: &str| quote["utilization"][r].as_f64().unwrap_or_else(|| panic!("{quote}"));
        (ratio("cpu"), ratio("memory"))
    }

    /// Drives `GET /quote/…` from two threads until the returned flag is set; connection errors (the server
    /// being killed) are ignored.
    fn load(&self) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let threads = (0..2)
            .map(|t| {
                let (stop, served, addr) = (stop.clone(), served.clone(), self.addr);
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((200, _)) = get(addr, &format!("/quote/S{t}{}", i % 5), None) {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        Load { stop, served, threads }
    }

    fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits (at most 20 s) for the process to exit.
    fn sigterm(mut self) -> ExitStatus {
        let kill = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(kill.success(), "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                self.child.kill().unwrap();
                panic!("http_service did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Load {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Stops the load; returns how many requests were answered 200.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        self.served.load(Ordering::Relaxed)
    }
}

/// One HTTP/1.1 GET on a fresh connection: the status and the raw body.
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

fn at_least(now: (f64, f64), floor: (f64, f64)) -> bool {
    now.0 >= floor.0 && now.1 >= floor.1
}

/// Five SIGKILLs under load: after each restart, usage is at least what was read two save intervals before
/// the kill (one interval is the bound; the second absorbs a slow fsync on a busy disk), and it grows from
/// round to round.
#[test]
fn month_to_date_usage_survives_repeated_sigkills_under_load() {
    let bin = common::example("http_service");
    let dir = scratch();
    let mut floor = (0.0, 0.0);
    for round in 0..5 {
        let server = Server::start(&bin, dir.path());
        let restarted = server.usage();
        assert!(
            at_least(restarted, floor),
            "round {round}: restarted with {restarted:?}, below {floor:?} read at least {:?} before the kill",
            2 * BUDGET_CHECKPOINT_INTERVAL
        );
        let load = server.load();
        std::thread::sleep(Duration::from_millis(300));
        let safe = server.usage();
        std::thread::sleep(2 * BUDGET_CHECKPOINT_INTERVAL + Duration::from_millis(200));
        let last = server.usage();
        assert!(last.0 > safe.0 && last.1 > safe.1, "round {round}: the load is charged: {safe:?} → {last:?}");
        server.sigkill();
        assert!(load.stop() > 0, "round {round}: no request served");
        assert!(safe.0 > floor.0, "round {round}: usage grows across restarts: {floor:?} → {safe:?}");
        floor = safe;
    }
    let server = Server::start(&bin, dir.path());
    let end = server.usage();
    assert!(at_least(end, floor), "after the last kill: {end:?} below {floor:?}");
    assert!(dir.path().join("checkpoint.json").is_file());
}

/// SIGTERM (what Kubernetes sends) saves the checkpoint: the usage after a restart is at least the usage read
/// just before the signal, and the process exits with status 0.
#[test]
fn sigterm_saves_the_checkpoint_and_exits_cleanly() {
    let bin = common::example("http_service");
    let dir = scratch();
    let server = Server::start(&bin, dir.path());
    let load = server.load();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(load.stop() > 0, "no request served");
    let before = server.usage();
    assert!(before.0 > 0.0 && before.1 > 0.0, "{before:?}");
    let status = server.sigterm();
    assert!(status.success(), "SIGTERM: {status} (killed by the signal instead of stopping gracefully?)");
    let server = Server::start(&bin, dir.path());
    let after = server.usage();
    assert!(at_least(after, before), "SIGTERM lost usage: {before:?} before, {after:?} after the restart");
}

#[test]
fn the_budget_checkpoint_option_parses_and_has_a_documented_default() {
    use examples::http_service::{DEFAULT_BUDGET_CHECKPOINT, Options};
    assert_eq!(Options::default().budget_checkpoint, Path::new(DEFAULT_BUDGET_CHECKPOINT));
    assert_eq!(DEFAULT_BUDGET_CHECKPOINT, "budget-checkpoint.json");
    let o = Options::parse(["--budget-checkpoint".to_owned(), "/var/lib/quotes/budgets.json".to_owned()]).unwrap();
    assert_eq!(o.budget_checkpoint, Path::new("/var/lib/quotes/budgets.json"));
    let err = Options::parse(["--budget-checkpoint".to_owned()]).unwrap_err().to_string();
    assert!(err.contains("a value is required for '--budget-checkpoint <FILE>'"), "{err}");
}

/// A corrupt checkpoint stops the start with the file and the reason, kept aside (never silently zeroed); an
/// unwritable one stops it too, at start rather than at the first request.
#[tokio::test]
async fn a_corrupt_or_unwritable_checkpoint_refuses_to_start_with_the_reason() {
    use examples::http_service::{Options, Service};
    let dir = scratch();
    let options = |checkpoint: PathBuf| Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        rules: dir.path().join("rules.yaml"),
        flags: dir.path().join("flags.yaml"),
        budgets: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/budgets")),
        budget_checkpoint: checkpoint,
        ..Options::default()
    };
    let corrupt = dir.path().join("checkpoint.json");
    std::fs::write(&corrupt, "{\"version\":1,\"month\":").unwrap();
    let err = Service::start(&options(corrupt.clone())).unwrap_err();
    assert!(
        err.contains("--budget-checkpoint")
            && err.contains(&corrupt.display().to_string())
            && err.contains("kept aside"),
        "{err}"
    );
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("checkpoint.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "kept aside once: {aside:?}");

    let unwritable = dir.path().join("no/such/dir/checkpoint.json");
    let err = Service::start(&options(unwritable.clone())).unwrap_err();
    assert!(err.contains("cannot write") && err.contains(&unwritable.display().to_string()), "{err}");
}
