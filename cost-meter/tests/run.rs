//! `cost-meter run` with real child processes (python3 scripts burning CPU and holding memory): the kernel's
//! CPU figure, the tree's memory GB-hours, the heavy-tier gate and its audit lines, the ad-hoc freeze, worker
//! defaults, the estimate, signals and exit statuses. Every figure is asserted with a tolerance measured
//! against the script's own account, never against a sleep.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use brownout_cost::budget::{AuditEvent, read_audit};
use brownout_cost::{CpuMode, JobRecord, MemoryMode, read_records};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cost-meter"));
    c.stdin(Stdio::null());
    c
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.current_dir(dir).arg("run").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    for var in ["RAYON_NUM_THREADS", "OMP_NUM_THREADS", "BROWNOUT_MAX_WORKERS", "COST_METER_OVERRIDE_TOKEN"] {
        if !env.iter().any(|(k, _)| *k == var) {
            c.env_remove(var);
        }
    }
    c.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn records(dir: &Path) -> Vec<JobRecord> {
    let file = std::fs::File::open(dir.join("cost_records.jsonl")).unwrap();
    let (good, bad) = read_records(BufReader::new(file)).unwrap();
    assert!(bad.is_empty());
    good
}

fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Burns CPU in itself and in a grandchild it waits for, then writes the kernel's account of both
/// (`os.times()`: user + system of itself, and of its waited-for children) to `kernel.txt`. Python's exit after
/// that (about 20 ms) is outside the script's account: the burn is long enough (about 1.5 s) to keep it under 2%.
const BURN: &str = r#"
import os, subprocess, sys
def burn(n):
    x = 0
    for i in range(n):
        x += i * i
    return x
burn(int(sys.argv[1]))
subprocess.run([sys.executable, "-c", f"x=0\nfor i in range({sys.argv[1]}): x += i*i"], check=True)
t = os.times()
open("kernel.txt", "w").write(f"{t.user + t.system} {t.children_user + t.children_system}")
"#;

#[test]
fn cpu_is_the_kernels_figure_for_the_tree_within_5_percent() {
    let dir = tempfile::tempdir().unwrap();
    let burn = script(dir.path(), "burn.py", BURN);
    let out = run_in(
        dir.path(),
        &["--team", "research", "--service", "burn", "--", "python3", burn.to_str().unwrap(), "12000000"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("kernel.txt")).unwrap();
    let (own, grandchild) = text.split_once(' ').unwrap();
    let (own, grandchild): (f64, f64) = (own.parse().unwrap(), grandchild.parse().unwrap());
    let kernel = own + grandchild;
    let r = &records(dir.path())[0];
    assert_eq!(r.cpu_mode, CpuMode::ChildRusage);
    assert!(kernel > 0.3, "the script burned too little to compare: {kernel} s");
    let error = (r.cpu_seconds - kernel).abs() / kernel;
    assert!(error < 0.05, "metered {} CPU-s, the kernel says {kernel} (error {:.1}%)", r.cpu_seconds, error * 100.0);
    // the grandchild is in: the figure is well above what the child alone burned (about half)
    assert!(grandchild > 0.3 * kernel && r.cpu_seconds > own + 0.8 * grandchild, "{own} + {grandchild}");
}

/// Holds `MB` megabytes (written, so resident) in a grandchild for about 1.5 s, and writes its profile: the
/// baseline RSS of the tree before, the bytes added while holding, and how long they were held.
const HOLD: &str = r#"
import os, subprocess, sys, time
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * page
code = f'''
import os, time
page = os.sysconf("SC_PAGE_SIZE")
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page
base = rss()
t0 = time.monotonic()
b = b"\\x01" * ({sys.argv[1]} * 1000 * 1000)
added = rss() - base
time.sleep(1.5)
t1 = time.monotonic()
del b
open("profile.txt", "w").write(f"{{base}} {{added}} {{t0}} {{t1}}")
'''
parent = rss()
subprocess.run([sys.executable, "-c", code], check=True)
open("parent.txt", "w").write(str(parent))
"#;

#[test]
fn memory_gb_hours_are_within_10_percent_of_the_scripted_profile() {
    let dir = tempfile::tempdir().unwrap();
    let hold = script(dir.path(), "hold.py", HOLD);
    let out = run_in(
        dir.path(),
        &[
            "--team",
            "research",
            "--service",
            "hold",
            "--sample-interval",
            "20ms",
            "--",
            "python3",
            hold.to_str().unwrap(),
            "300",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let profile = std::fs::read_to_string(dir.path().join("profile.txt")).unwrap();
    let f: Vec<f64> = profile.split_whitespace().map(|x| x.parse().unwrap()).collect();
    let (child_base, added, held) = (f[0], f[1], f[3] - f[2]);
    let parent: f64 = std::fs::read_to_string(dir.path().join("parent.txt")).unwrap().parse().unwrap();
    let r = &records(dir.path())[0];
    assert_eq!(r.memory_mode, MemoryMode::TreeRss);
    assert!(added > 250e6, "the script held only {added} bytes");
    // The profile: the parent's RSS for the whole run, the grandchild's baseline for the time it lived (at most
    // the whole run), and the bytes it added for as long as it held them.
    let expected_low = parent * r.wall_seconds + added * held;
    let expected_high = expected_low + child_base * r.wall_seconds;
    let got = r.memory_byte_seconds;
    assert!(
        got > 0.9 * expected_low && got < 1.1 * expected_high,
        "metered {got:.3e} byte-s, the profile says {expected_low:.3e}..{expected_high:.3e}"
    );
    assert!((r.memory_gb_hours - got / 1e9 / 3600.0).abs() < 1e-12);
    assert!(r.peak_bytes as f64 >= 0.9 * added, "peak {} below the {added} held", r.peak_bytes);
}

fn utc_minute_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 60 % 1440
}

fn hhmm(minute: u64) -> String {
    format!("{:02}:{:02}", minute % 1440 / 60, minute % 60)
}

/// A budgets directory whose heavy window runs from `from` to `to` minutes after now (UTC, wrapping at midnight).
fn window_budgets(dir: &Path, from: u64, to: u64) -> PathBuf {
    let budgets = dir.join("budgets");
    std::fs::create_dir_all(&budgets).unwrap();
    let now = utc_minute_now();
    std::fs::write(
        budgets.join("research.yaml"),
        format!(
            "name: research-cluster\nowner: research@example.com\nmonthly_cpu_hours: 1800\nmatch: {{ team: research }}\n\
             heavy_windows: [\"{}-{}\"]\n",
            hhmm(now + from),
            hhmm(now + to)
        ),
    )
    .unwrap();
    budgets
}

/// A budgets directory whose heavy window opens in two hours: now is outside it.
fn closed_window_budgets(dir: &Path) -> PathBuf {
    window_budgets(dir, 120, 180)
}

#[test]
fn a_heavy_job_outside_its_window_is_denied_and_a_forced_one_runs_both_audited() {
    let dir = tempfile::tempdir().unwrap();
    let budgets = closed_window_budgets(dir.path());
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# the research leads\nalice: 0123456789abcdef0123\n").unwrap();
    let audit = dir.path().join("reports/backtest/heavy_job_denials.csv");
    let base = ["--team", "research", "--service", "backtester", "--tier", "heavy", "--budgets"];
    let base: Vec<&str> = [&base[..], &[budgets.to_str().unwrap(), "--job-id", "bt-7"]].concat();
    let marker = ["--", "sh", "-c", "echo ran > ran.txt"];

    // denied: exit 75, nothing ran, one audit line in the playbook's default path
    let out = run_in(dir.path(), &[&base[..], &marker[..]].concat(), &[]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("heavy job `bt-7` refused"), "{}", stderr(&out));
    assert!(!dir.path().join("ran.txt").exists(), "a denied job ran");
    let read = read_audit(&std::fs::read_to_string(&audit).unwrap());
    assert_eq!(read.entries.len(), 1);
    assert_eq!((read.entries[0].event, read.entries[0].job.as_str()), (AuditEvent::Denied, "bt-7"));

    // forced with a token that is not authorised: exit 77, nothing ran, a denial naming the actor
    let forced = [&base[..], &["--force-heavy", "--actor", "mallory", "--reason", "just because"]].concat();
    let forced: Vec<&str> = [&forced[..], &["--override-tokens", tokens.to_str().unwrap()], &marker[..]].concat();
    let out = run_in(dir.path(), &forced, &[("COST_METER_OVERRIDE_TOKEN", "guess")]);
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(!dir.path().join("ran.txt").exists(), "a refused override ran");

    // forced with an authorised token: runs, and the override is audited with its actor and reason
    let forced: Vec<String> = forced.iter().map(|s| s.replace("mallory", "alice")).collect();
    let forced: Vec<&str> = forced.iter().map(String::as_str).collect();
    let out = run_in(dir.path(), &forced, &[("COST_METER_OVERRIDE_TOKEN", "0123456789abcdef0123")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("ran.txt").exists(), "the forced job did not run");
    let text = std::fs::read_to_string(&audit).unwrap();
    let read = read_audit(&text);
    assert!(read.bad_lines.is_empty(), "{text}");
    let events: Vec<_> = read.entries.iter().map(|e| (e.event, e.actor.as_str())).collect();
    assert_eq!(events, [(AuditEvent::Denied, ""), (AuditEvent::Denied, "mallory"), (AuditEvent::Override, "alice")]);
    assert_eq!(read.entries[2].reason, "just because");
    assert!(!text.contains("0123456789abcdef0123") && !text.contains("guess"), "a token reached the audit log");
    assert_eq!(records(dir.path()).len(), 1, "only the job that ran has a record");
}

/// A heavy job inside its window runs without an audit line, and leaves no audit directory behind.
#[test]
fn a_heavy_job_inside_its_window_runs_and_writes_no_audit() {
    let dir = tempfile::tempdir().unwrap();
    // Open from an hour ago to an hour from now.
    let budgets = window_budgets(dir.path(), 1440 - 60, 60);
    let args = ["--team", "research", "--service", "backtester", "--tier", "heavy", "--budgets"];
    let args: Vec<&str> = [&args[..], &[budgets.to_str().unwrap(), "--", "sh", "-c", "echo ran > ran.txt"]].concat();
    let out = run_in(dir.path(), &args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("ran.txt").exists(), "the job inside its window did not run");
    assert!(!dir.path().join("reports").exists(), "an admitted job left an audit directory");
}

const ENV: &str = "import os; open('env.txt','w').write(' '.join(os.environ.get(v,'-') for v in \
                   ['RAYON_NUM_THREADS','OMP_NUM_THREADS','BROWNOUT_MAX_WORKERS']))";

/// A budgets directory with a small research budget, and a record of this month using `cpu_hours` of it.
fn used_budget(dir: &Path, cpu_hours: f64) -> PathBuf {
    let budgets = dir.join("budgets");
    std::fs::create_dir_all(&budgets).unwrap();
    std::fs::write(
        budgets.join("research.yaml"),
        "name: research-cluster\nowner: research@example.com\nmonthly_cpu_hours: 100\n\
         alert_thresholds: { warn: 0.7, critical: 0.9 }\nmatch: { team: research }\n\
         guardrails: { freeze_adhoc_at_critical: true }\n",
    )
    .unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let line = format!(
        "{{\"job_id\":\"old\",\"labels\":{{\"env\":\"\",\"team\":\"research\",\"service\":\"fit\",\"strategy\":\"\",\
         \"tier\":\"batch\"}},\"started_at_unix\":{},\"wall_seconds\":1.0,\"cpu_seconds\":{},\"cpu_mode\":\"child_rusage\",\
         \"memory_byte_seconds\":0.0,\"memory_gb_hours\":0.0,\"peak_bytes\":0,\"reserved_bytes\":0,\"memory_mode\":\"tree_rss\"}}\n",
        now - 10.0,
        cpu_hours * 3600.0
    );
    std::fs::write(dir.join("cost_records.jsonl"), line).unwrap();
    budgets
}

fn env_seen(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("env.txt")).unwrap()
}

#[test]
fn workers_follow_the_budget_level_and_the_user_wins() {
    let cores = std::thread::available_parallelism().unwrap().get();
    for (used, want) in [(10.0, cores), (75.0, (cores / 2).max(1))] {
        let dir = tempfile::tempdir().unwrap();
        let budgets = used_budget(dir.path(), used);
        let args = ["--team", "research", "--service", "fit", "--budgets", budgets.to_str().unwrap()];
        let out = run_in(dir.path(), &[&args[..], &["--", "python3", "-c", ENV]].concat(), &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(env_seen(dir.path()), format!("{want} {want} {want}"), "at {used}% used");
        // the user's own setting wins, and --workers sets all three
        let out = run_in(dir.path(), &[&args[..], &["--", "python3", "-c", ENV]].concat(), &[("OMP_NUM_THREADS", "7")]);
        assert!(out.status.success());
        assert_eq!(env_seen(dir.path()), format!("{want} 7 {want}"));
        let out = run_in(dir.path(), &[&args[..], &["--workers", "3", "--", "python3", "-c", ENV]].concat(), &[]);
        assert!(out.status.success());
        assert_eq!(env_seen(dir.path()), "3 3 3");
    }
}

#[test]
fn at_critical_an_adhoc_job_is_refused_and_a_scheduled_one_gets_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    let budgets = used_budget(dir.path(), 95.0);
    let args = ["--team", "research", "--service", "fit", "--job-id", "fit-1", "--budgets", budgets.to_str().unwrap()];
    let out = run_in(dir.path(), &[&args[..], &["--", "python3", "-c", ENV]].concat(), &[]);
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(stderr(&out).contains("budget `research-cluster` is critical"), "{}", stderr(&out));
    assert!(!dir.path().join("env.txt").exists(), "a refused job ran");
    let audit = std::fs::read_to_string(dir.path().join("reports/backtest/heavy_job_denials.csv")).unwrap();
    let entries = read_audit(&audit).entries;
    assert_eq!((entries.len(), entries[0].event, entries[0].job.as_str()), (1, AuditEvent::Denied, "fit-1"));
    let out = run_in(dir.path(), &[&args[..], &["--scheduled", "--", "python3", "-c", ENV]].concat(), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env_seen(dir.path()), "1 1 1");
}

#[test]
fn the_estimate_and_the_budgets_are_said_before_launch() {
    let dir = tempfile::tempdir().unwrap();
    let budgets = used_budget(dir.path(), 12.0);
    let args = ["--labels", "team=research,service=fit", "--budgets", budgets.to_str().unwrap()];
    let out = run_in(dir.path(), &[&args[..], &["--", "true"]].concat(), &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("estimate: this job will use ~12 CPU-hours"), "{err}");
    assert!(err.contains("12% of research-cluster's monthly CPU-hours"), "{err}");
    assert!(err.contains("budgets: research-cluster (ok, cpu 12.0%)"), "{err}");
    let est = err.find("estimate:").unwrap();
    let cost = err.find("CPU-seconds").unwrap();
    assert!(est < cost, "the estimate comes before the job's cost: {err}");
}

#[test]
fn exit_statuses_are_passed_on() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--team", "research", "--service", "x", "--"];
    let cases: [(&[&str], i32); 4] = [
        (&["sh", "-c", "exit 3"], 3),
        (&["sh", "-c", "kill -KILL $$"], 137),
        (&["no-such-command-xyz"], 127),
        (&["true"], 0),
    ];
    for (command, code) in cases {
        let out = run_in(dir.path(), &[&args[..], command].concat(), &[]);
        assert_eq!(out.status.code(), Some(code), "{command:?}: {}", stderr(&out));
    }
    // the jobs that ran have records, with their exit in neither case lost
    assert_eq!(records(dir.path()).len(), 3);
}

/// Starts `cost-meter run -- python3 -c SCRIPT`, waits for the script's `ready` line, sends `signal` to
/// cost-meter (not to the script), and returns cost-meter's exit code and the script's output.
fn signal_run(script: &str, signal: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .current_dir(dir.path())
        .args(["run", "--quiet", "--team", "research", "--service", "sig", "--", "python3", "-u", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let killed = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    (status.code(), rest.join("\n"))
}

#[test]
fn signals_reach_the_child_and_its_status_is_passed_on() {
    let handled = "import signal, sys\n\
                   def on(sig, _): print('got', sig); sys.exit(42)\n\
                   signal.signal(signal.SIGTERM, on); signal.signal(signal.SIGINT, on)\n\
                   print('ready')\nwhile True: signal.pause()";
    assert_eq!(signal_run(handled, "TERM"), (Some(42), "got 15".into()));
    assert_eq!(signal_run(handled, "INT"), (Some(42), "got 2".into()));
    // not handled: the child dies of it, and cost-meter says so as a shell would (128 + 15)
    let plain = "import signal\nprint('ready')\nwhile True: signal.pause()";
    assert_eq!(signal_run(plain, "TERM"), (Some(143), String::new()));
}

#[test]
fn the_job_is_charged_to_the_month_to_date_checkpoint_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let budgets = dir.path().join("budgets");
    std::fs::create_dir_all(&budgets).unwrap();
    // 0.0001 CPU-hours is 0.36 CPU-seconds: the burn below (about 0.5 s) takes it past critical
    std::fs::write(budgets.join("tiny.yaml"), "name: tiny\nowner: o@example.com\nmonthly_cpu_hours: 0.0001\n").unwrap();
    let checkpoint = dir.path().join("state/month.json");
    let burn = "x = 0\nfor i in range(4000000): x += i * i";
    let args = [
        "--team",
        "research",
        "--service",
        "burn",
        "--scheduled",
        "--budgets",
        budgets.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--",
        "python3",
        "-c",
        burn,
    ];
    let out = run_in(dir.path(), &args, &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("alert: budget `tiny` ok -> critical"), "{err}");
    let r = &records(dir.path())[0];
    let saved = brownout_cost::budget::checkpoint::read(&checkpoint).unwrap().expect("a checkpoint");
    let usage = saved.budgets["tiny"].usage;
    assert!((usage.cpu_hours - r.cpu_hours()).abs() < 1e-12, "{usage:?} vs {}", r.cpu_hours());
    // the second run starts from the checkpoint: critical already, so no new alert, and one worker
    let out = run_in(dir.path(), &args, &[]);
    assert!(out.status.success());
    assert!(!stderr(&out).contains("alert:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("budgets: tiny (critical"), "{}", stderr(&out));
    let saved = brownout_cost::budget::checkpoint::read(&checkpoint).unwrap().unwrap();
    let total: f64 = records(dir.path()).iter().map(JobRecord::cpu_hours).sum();
    assert!((saved.budgets["tiny"].usage.cpu_hours - total).abs() < 1e-12);
}

/// Starts an orphan (a grandchild whose parent exits at once, as a daemonising helper does) that burns CPU
/// and writes its own account; the child waits until the orphan has been reaped, then exits.
const ORPHAN: &str = r#"
import os, time
mid = os.fork()
if mid == 0:
    orphan = os.fork()
    if orphan == 0:
        x = 0
        for i in range(6000000):
            x += i * i
        t = os.times()
        open("orphan.txt", "w").write(str(t.user + t.system))
        os._exit(0)
    open("orphan.pid", "w").write(str(orphan))
    os._exit(0)
os.waitpid(mid, 0)
orphan = int(open("orphan.pid").read())
while True:
    try:
        os.kill(orphan, 0)  # still there (running, or a zombie not yet reaped)
    except ProcessLookupError:
        break
    time.sleep(0.01)
"#;

#[test]
fn an_orphaned_descendant_is_reaped_and_metered() {
    let dir = tempfile::tempdir().unwrap();
    let script = script(dir.path(), "orphan.py", ORPHAN);
    let out = run_in(
        dir.path(),
        &["--team", "research", "--service", "orphan", "--", "python3", script.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let orphan: f64 = std::fs::read_to_string(dir.path().join("orphan.txt")).unwrap().parse().unwrap();
    let r = &records(dir.path())[0];
    assert!(orphan > 0.3, "the orphan burned too little to tell: {orphan}");
    assert!(r.cpu_seconds > 0.95 * orphan, "metered {} CPU-s, the orphan alone burned {orphan}", r.cpu_seconds);
    assert!(!stderr(&out).contains("still run"), "{}", stderr(&out));
}

#[test]
fn a_descendant_left_running_is_reported_and_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let command = "sleep 3 >/dev/null 2>&1 & echo $! > bg.pid";
    let out = run_in(dir.path(), &["--team", "research", "--service", "bg", "--", "sh", "-c", command], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 process the command started still runs"), "{}", stderr(&out));
    let bg = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap();
    assert!(Path::new(&format!("/proc/{}", bg.trim())).exists(), "cost-meter waited for the background job");
    let _ = Command::new("kill").arg(bg.trim()).status();
}
