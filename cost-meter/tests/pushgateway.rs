//! `cost-meter run --pushgateway`: a real Pushgateway (Debian's `prometheus-pushgateway`) receives the job's
//! cost, and a real Prometheus scraping it (with `honor_labels: true`) sees the same figure as the record.
//!
//! Ignored in plain `cargo test` (it needs the binaries); `.ci/run` installs both packages and runs it:
//! `cargo test -p brownout-cost --test pushgateway -- --ignored`.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use brownout_cost::read_records;

/// How long the daemons may take to start, and Prometheus to scrape and answer.
const DEADLINE: Duration = Duration::from_secs(90);

/// A daemon killed (and waited for) on drop, with its log file.
struct Daemon {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(dir: &Path, name: &str, program: &str, args: &[String], port: u16) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} starts: {e}"));
        Daemon { child, base: format!("127.0.0.1:{port}"), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `path` until it answers 200 with a body `ok` accepts, or the deadline passes.
    fn wait_for(&self, path: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some((200, body)) = get(&self.base, path)
                && ok(&body)
            {
                return body;
            }
            assert!(start.elapsed() < DEADLINE, "{path} never answered as expected; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200)); // a poll interval, not an assertion
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A plain HTTP/1.0 GET: the status and the body, or `None` if nothing answers.
fn get(authority: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(authority).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of the one sample of `metric` whose label set contains `labels` in an exposition text.
fn sample(text: &str, metric: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(labels))
        .find_map(|l| l.rsplit_once(' ')?.1.parse().ok())
}

#[test]
#[ignore = "needs Debian's prometheus-pushgateway and prometheus; .ci/run installs them and runs it"]
fn a_run_pushes_its_cost_and_prometheus_scrapes_the_same_figure() {
    let dir = tempfile::tempdir().unwrap();
    let push_port = free_port();
    let gateway = Daemon::start(
        dir.path(),
        "pushgateway",
        "prometheus-pushgateway",
        &[format!("--web.listen-address=127.0.0.1:{push_port}")],
        push_port,
    );
    gateway.wait_for("/-/ready", |_| true);

    let burn = "x = 0\nfor i in range(3000000): x += i * i";
    let out = Command::new(env!("CARGO_BIN_EXE_cost-meter"))
        .current_dir(dir.path())
        .args(["run", "--team", "research", "--service", "backtester", "--strategy", "momo"])
        .args(["--pushgateway", &format!("http://127.0.0.1:{push_port}"), "--", "python3", "-c", burn])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("pushed to"), "{stderr}");
    let file = std::fs::File::open(dir.path().join("cost_records.jsonl")).unwrap();
    let record = read_records(BufReader::new(file)).unwrap().0.remove(0);

    // the Pushgateway holds the figures under the job's labels (never its id)
    let labels = r#"job="cost_meter_run",service="backtester",strategy="momo",team="research",tier="interactive""#;
    let metrics = gateway.wait_for("/metrics", |m| m.contains("cost_meter_run_cpu_seconds{"));
    assert_eq!(sample(&metrics, "cost_meter_run_cpu_seconds", labels), Some(record.cpu_seconds), "{metrics}");
    assert_eq!(sample(&metrics, "cost_meter_run_memory_byte_seconds", labels), Some(record.memory_byte_seconds));
    assert_eq!(sample(&metrics, "cost_meter_run_exit_code", labels), Some(0.0));
    assert!(!metrics.contains(&*record.job_id.to_string()), "the job id became a label");

    // a real Prometheus scrapes the Pushgateway and answers the same CPU figure
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: pushgateway\n    \
             honor_labels: true\n    static_configs: [{{ targets: ['127.0.0.1:{push_port}'] }}]\n"
        ),
    )
    .unwrap();
    let prometheus = Daemon::start(
        dir.path(),
        "prometheus",
        "prometheus",
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        prom_port,
    );
    let query = percent_encode(r#"cost_meter_run_cpu_seconds{job="cost_meter_run",team="research",strategy="momo"}"#);
    let answer = prometheus.wait_for(&format!("/api/v1/query?query={query}"), |b| b.contains("\"value\":["));
    let doc: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let result = &doc["data"]["result"][0];
    assert_eq!(result["metric"]["service"], "backtester");
    let value: f64 = result["value"][1].as_str().unwrap().parse().unwrap();
    assert!((value - record.cpu_seconds).abs() < 1e-9, "Prometheus says {value}, the record {}", record.cpu_seconds);
}
