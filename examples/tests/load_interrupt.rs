//! The `load` example on Ctrl-C: run against a tiny HTTP server started here, interrupted with SIGINT while it
//! runs, it prints the summary of what was measured so far and exits with status 130 (128 + SIGINT).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Answers every HTTP/1.1 request on a keep-alive connection with `201`, counting them.
fn serve(stream: TcpStream, served: &AtomicU64) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        std::thread::sleep(Duration::from_millis(1));
        writer.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")?;
        served.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn ctrl_c_prints_the_summary_so_far_and_exits_130() {
    let bin = common::example("load");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || serve(stream, &counter));
        }
    });
    let scratch = tempfile::tempdir().unwrap();
    let child = Command::new(&bin)
        .args(["--url", &format!("http://{addr}/orders"), "--clients", "2", "--duration", "60s"])
        .args(["--slo", "p95<1s", "--out", "result.json"])
        .current_dir(scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.load(Ordering::Relaxed) < 50 {
        assert!(Instant::now() < deadline, "the load never reached the server");
        std::thread::sleep(Duration::from_millis(10));
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success(), "kill -INT");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = rx.recv_timeout(Duration::from_secs(20)).expect("load exits within 20 s of SIGINT").unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("load: interrupted"), "{stderr}");
    assert!(stdout.contains(&format!("target      http://{addr}/orders")), "{stdout}");
    assert!(stdout.contains("mode        closed loop, 2 clients"), "{stdout}");
    let requests: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("requests    "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count: {stdout}"));
    assert!(requests >= 40 && requests <= served.load(Ordering::Relaxed), "{requests} requests: {stdout}");
    assert!(stdout.contains("answers     201: "), "{stdout}");
    assert!(!stdout.contains("SLO"), "a partial run gets no verdict: {stdout}");
    assert!(!scratch.path().join("result.json").exists(), "a partial run is no baseline: --out is not written");
}
