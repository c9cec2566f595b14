//! The `gameday` binary's command line, run as a user runs it: `--help` and `--version`, the errors and exit
//! statuses of bad arguments, Ctrl-C and SIGTERM in the middle of a fault (exit 130, the fault disarmed, the
//! reports so far written and marked interrupted), and its progress on a terminal (a pseudo-terminal made by
//! `script`): a status line redrawn in place that no other line is glued to.
//!
//! Every run has a scratch directory as its working directory and output directory: nothing is written into
//! the source tree. The runs that start the built-in demo use a small plan written by the test (one scenario,
//! a 1 s steady state) at time scale 1.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One run of the demo at a time: each drives it at the plan's rate, and two at once on a shared two-core
/// machine would measure the machine more than the service.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A plan for the built-in demo: one scenario whose fault (a 503 on every quote provider call, served from
/// the cache) lasts 10 minutes unless `--duration` says otherwise.
const PLAN: &str = r#"
load:
  rps: 40
  workers: 16
  keys: 8
  routes:
    - { name: quote, path: "/quote/SYM{key}", critical: true }
slo:
  user_error_rate: 0.5
  p95: 2s
  recovery_p95_factor: 10.0
  recovery_p95: 2s
  abort: { error_rate: 0.9, p95: 10s, window: 1s, min_requests: 10 }
phases:
  before: 1s
  after: 1s
  window: 250ms
scenarios:
  - name: exchange_downtime
    description: the quote provider answers 503 on every call
    duration: 10m
    injected_band: [0.90, 1.00]
    recovery_sla: 2s
    chaos:
      experiment: exchange_downtime
      rules:
        - name: down
          sample: { mode: exact, rate: 1.0 }
          fault: { error: { status: 503, body: "exchange down" } }
"#;

/// A scratch directory holding the test's plan (`plan.yaml`).
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("gameday-cli-").tempdir().unwrap();
    std::fs::write(dir.path().join("plan.yaml"), PLAN).unwrap();
    dir
}

/// `gameday ARGS` in `dir`, to its end.
fn gameday_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::example("gameday")).args(args).current_dir(dir).env_remove("RUST_LOG").output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_option_and_exits_0() {
    let dir = scratch();
    let out = gameday_in(dir.path(), &["--help"]);
    let help = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{help}{}", text(&out.stderr));
    for option in [
        "--scenarios",
        "--mode",
        "--parallel",
        "--duration",
        "--time-scale",
        "--output-dir",
        "--verbose",
        "--seed",
        "--junit",
        "--target",
        "--admin-url",
        "--admin-token-file",
        "--calls-metric",
        "--plan",
        "--version",
    ] {
        assert!(help.contains(option), "--help does not list {option}:\n{help}");
    }
    assert!(help.contains("sequential") && help.contains("random"), "the modes: {help}");
}

#[test]
fn version_prints_the_version() {
    let dir = scratch();
    let out = gameday_in(dir.path(), &["--version"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("gameday {}", env!("CARGO_PKG_VERSION")));
}

/// Each bad command line exits 2 (the run could not be made) with a message naming what is wrong.
#[test]
fn bad_arguments_exit_2_naming_the_argument() {
    let dir = scratch();
    let plan = dir.path().join("plan.yaml");
    let plan = plan.to_str().unwrap();
    let out_dir = dir.path().join("out");
    let out_dir = out_dir.to_str().unwrap();
    let missing = dir.path().join("no-such-plan.yaml");
    let missing = missing.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--bogus"], &["--bogus"]),
        (&["--time-scale", "fast"], &["--time-scale", "fast"]),
        (&["--time-scale", "0"], &["--time-scale", "(0, 10]"]),
        (&["--time-scale", "11"], &["--time-scale"]),
        (&["--mode", "bogus"], &["--mode", "bogus", "sequential"]),
        (&["--duration", "soon"], &["--duration"]),
        (&["--seed", "many"], &["--seed", "many"]),
        (&["--plan", missing], &[missing, "cannot read"]),
        (
            &["--plan", plan, "--output-dir", out_dir, "--scenarios", "nope"],
            &["--scenarios", "nope", "exchange_downtime"],
        ),
        (&["--target", "http://127.0.0.1:1"], &["--admin-url"]),
        (&["--admin-url", "http://127.0.0.1:1/admin"], &["--target"]),
        (
            &[
                "--plan",
                plan,
                "--output-dir",
                out_dir,
                "--target",
                "http://127.0.0.1:1",
                "--admin-url",
                "http://127.0.0.1:1/admin",
            ],
            &["--admin-token-file"],
        ),
        (
            &["--target", "http://127.0.0.1:1", "--admin-url", "http://127.0.0.1:1/admin", "--without-fallback"],
            &["--without-fallback"],
        ),
    ];
    for (args, named) in cases {
        let out = gameday_in(dir.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}{}", text(&out.stdout));
        for name in *named {
            assert!(stderr.contains(name), "{args:?}: the message does not name `{name}`:\n{stderr}");
        }
    }
    // Nothing was written where the binary ran but the test's own plan (and the output directory asked for).
    let written: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "plan.yaml" && n != "out")
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

/// A run of the demo with its standard output read line by line (on a thread, into a channel).
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    fn start(dir: &Path, extra: &[&str]) -> Running {
        let mut child = Command::new(common::example("gameday"))
            .args(["--plan", "plan.yaml", "--output-dir", "out", "--time-scale", "1", "--seed", "7"])
            .args(extra)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Standard error is drained too (progress and logs), so the binary never blocks on a full pipe, and
        // kept for the failure messages.
        let pipe = child.stderr.take().unwrap();
        let stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
        let keep = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                keep.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
            }
        });
        Running { child, lines, seen: Vec::new(), stderr }
    }

    /// Standard output and error so far, for a failure message.
    fn output(&self) -> String {
        let stderr = self.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        format!("standard output:\n{}\nstandard error:\n{}", self.seen.join("\n"), stderr.join("\n"))
    }

    /// Waits (at most `within`) for a standard output line holding every one of `parts`.
    fn wait_for(&mut self, parts: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if parts.iter().all(|p| line.contains(p)) {
                        return line;
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("no line with {parts:?} within {within:?} ({e}); {}", self.output())
                }
            }
        }
    }

    fn signal(&self, signal: &str) {
        let kill = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(kill.success(), "kill {signal}");
    }

    /// Waits (at most `within`) for the exit; the rest of standard output.
    fn exit(&mut self, within: Duration) -> (Option<i32>, Vec<String>) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("gameday did not exit within {within:?}; {}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader thread ends at the pipe's end.
        let rest: Vec<String> = self.lines.iter().collect();
        (status.code(), rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `event_type` of a `CHAOS_EVENT:` line.
fn event_type(line: &str) -> Option<String> {
    let json = line.strip_prefix("CHAOS_EVENT: ")?;
    let event: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {line}"));
    event["event_type"].as_str().map(str::to_owned)
}

/// A signal in the middle of a fault: exit 130 soon after, the fault disarmed (its `chaos_disarmed` event),
/// the reports written and marked interrupted.
fn interrupted_by(signal: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = scratch();
    let mut running = Running::start(dir.path(), &[]);
    // The demo starts, the steady state is checked (1 s), the scenario's before phase (1 s), then the fault.
    running.wait_for(&["CHAOS_EVENT:", r#""event_type":"chaos_armed""#], Duration::from_secs(120));
    running.signal(signal);
    let (code, rest) = running.exit(Duration::from_secs(20));
    let stdout = format!("{}\n{}", running.seen.join("\n"), rest.join("\n"));
    assert_eq!(code, Some(130), "{signal}: {stdout}");
    let events: Vec<String> = rest.iter().filter_map(|l| event_type(l)).collect();
    assert!(events.iter().any(|e| e == "chaos_disarmed"), "{signal}: no chaos_disarmed after the signal: {stdout}");
    assert!(stdout.contains("INTERRUPTED"), "{signal}: {stdout}");

    let out = dir.path().join("out");
    let read = |name: &str| -> Value {
        let path = out.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    };
    let summary = read("chaos_summary.json");
    assert_eq!(summary["test_run"]["interrupted"], true, "{summary}");
    assert_eq!(summary["test_run"]["scenarios_run"], serde_json::json!(["exchange_downtime"]), "{summary}");
    let report = read("exchange_downtime_report.json");
    assert_eq!(report["validation"]["verdict"], "INTERRUPTED", "{report}");
    assert_eq!(report["execution"]["fault_end"], "interrupted", "{report}");
    assert!(out.join("report.html").is_file() && out.join("drill_report.md").is_file());
    let lines = std::fs::read_to_string(out.join("chaos_events.jsonl")).unwrap();
    assert!(lines.contains(r#""event_type":"chaos_disarmed""#), "{lines}");
}

#[test]
fn ctrl_c_disarms_writes_the_reports_marked_interrupted_and_exits_130() {
    interrupted_by("-INT");
}

#[test]
fn sigterm_disarms_writes_the_reports_marked_interrupted_and_exits_130() {
    interrupted_by("-TERM");
}

/// What a terminal shows after `bytes`: `\r` returns to column 0 and later characters overwrite earlier
/// ones, `\n` starts a new line; colour sequences take no room. Trailing blanks are trimmed.
fn screen(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = Vec::new();
    let mut line: Vec<char> = Vec::new();
    let mut col = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                // CSI: ESC [ parameters final-letter.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' => col = 0,
            '\n' => {
                lines.push(line.iter().collect::<String>().trim_end().to_owned());
                line.clear();
                col = 0;
            }
            c => {
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines.push(line.iter().collect::<String>().trim_end().to_owned());
    lines
}

#[test]
fn the_screen_model_overwrites_after_a_carriage_return() {
    assert_eq!(screen(b"status 1\r        \rCHAOS_EVENT: x\r\nnext"), ["CHAOS_EVENT: x", "next"]);
    assert_eq!(screen(b"status\x1b[2mlog\n"), ["statuslog", ""]);
}

/// On a terminal the status line is redrawn in place (`\r`), and every other line — `CHAOS_EVENT:` lines on
/// standard output, the service's log lines on standard error — starts at column 0, never glued after it.
#[test]
fn on_a_terminal_the_status_line_is_redrawn_in_place_and_never_broken() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = scratch();
    let command = format!(
        "{} --plan plan.yaml --output-dir out --time-scale 1 --duration 2s --seed 7",
        common::example("gameday").to_str().unwrap()
    );
    // `script` runs the command on a new pseudo-terminal (standard output and error both), and copies what
    // it writes there to its own standard output.
    let out = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(dir.path())
        // Log lines too, through the runner's log writer.
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let raw = text(&out.stdout);
    assert!(out.status.code().is_some_and(|c| c == 0 || c == 1), "{:?}: {raw}{}", out.status, text(&out.stderr));
    assert!(dir.path().join("out/chaos_summary.json").is_file(), "{raw}");

    // Redrawn in place: the status line is blanked and drawn again on the same row, many times.
    let redraws = raw.matches("\r[1/1] exchange_downtime · ").count();
    assert!(redraws >= 3, "{redraws} redraws: {raw:?}");
    let phases = ["before", "fault armed", "after"];
    for phase in phases {
        assert!(raw.contains(&format!("[1/1] exchange_downtime · {phase} · ")), "no `{phase}` status: {raw:?}");
    }

    let shown = screen(out.stdout.as_slice());
    let events: Vec<&String> = shown.iter().filter(|l| l.contains("CHAOS_EVENT:")).collect();
    assert!(events.len() >= 2, "{shown:#?}");
    for line in &events {
        // The runner's own lines, or the demo service's (logged through tracing: a timestamp first).
        let runner = line.starts_with("CHAOS_EVENT: {");
        let service = line.starts_with("20") && line.contains(" INFO chaos_event: CHAOS_EVENT: {");
        assert!(runner || service, "a CHAOS_EVENT line not at column 0: {line:?}");
    }
    assert!(events.iter().any(|l| l.starts_with("CHAOS_EVENT: {")), "the runner's own events: {shown:#?}");
    // Every status line was cleared before another line was written, and at the end: none is left on screen,
    // alone or glued to another line.
    for line in &shown {
        assert!(!line.contains(" s left"), "a status line left on screen: {line:?}\n{shown:#?}");
    }
    assert!(shown.iter().any(|l| l.contains("INFO")), "no log line went through the log writer: {shown:#?}");
}
