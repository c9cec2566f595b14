//! `cost-meter run [OPTIONS] -- COMMAND [ARGS...]`: gate, estimate, run and meter a command; cache its outputs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use brownout_cost::budget::{
    AlertEvent, AlertLevel, AuditEntry, AuditEvent, AuditLog, BudgetMonitor, BudgetSet, Month, Override, TierGate,
    estimate,
};
use brownout_cost::cache::{CacheError, CacheKey, Cost, ResultCache};
use brownout_cost::child::{ChildOutcome, MeteredChild, Spawn, WORKER_VARS, Workers};
use brownout_cost::guardrail::AdhocFreeze;
use brownout_cost::{JobRecord, JsonLinesFile, Labels, RecordSink, Tier, push};
use clap::Args;

use crate::Failure;
use crate::budgets::{DEFAULT_DIR, DEFAULT_RECORDS, LabelArgs, load_budgets, load_records};

/// The audit log's default path, as the cost-governance playbook names it.
pub(crate) const DEFAULT_AUDIT: &str = "reports/backtest/heavy_job_denials.csv";
/// The variable holding the override token of `--force-heavy` (never on the command line: `ps` shows it).
pub(crate) const TOKEN_VAR: &str = "COST_METER_OVERRIDE_TOKEN";

/// Exit status: the ad-hoc job was refused, a budget covering it is critical (sysexits' EX_UNAVAILABLE).
pub(crate) const EXIT_FROZEN: u8 = 69;
/// Exit status: the heavy job was refused outside its window, no override (EX_TEMPFAIL: retry in the window).
pub(crate) const EXIT_OUTSIDE_WINDOW: u8 = 75;
/// Exit status: `--force-heavy` was refused: the token is not authorised, or the override could not be
/// audited (EX_NOPERM).
pub(crate) const EXIT_OVERRIDE_REFUSED: u8 = 77;
/// Exit status: the command could not be executed (as shells say).
pub(crate) const EXIT_CANNOT_EXECUTE: u8 = 126;
/// Exit status: the command was not found (as shells say).
pub(crate) const EXIT_NOT_FOUND: u8 = 127;

/// `cost-meter run --help`'s long description.
pub(crate) const LONG_ABOUT: &str = "\
Gate, estimate, run and meter a command and its whole process tree; optionally cache its outputs.

Before the command starts: the estimate from similar jobs in the records, the budgets covering its labels
with their levels; an ad-hoc job (not --scheduled) is refused while a covering budget is critical (and
freezes ad-hoc runs); a heavy job (--tier heavy) outside its budgets' windows is refused unless
--force-heavy comes with an authorised token in COST_METER_OVERRIDE_TOKEN (tokens authorised by
--override-tokens FILE). Every denial and override is appended to the audit log (--audit).

The command gets RAYON_NUM_THREADS, OMP_NUM_THREADS and BROWNOUT_MAX_WORKERS: every core while its budgets
are ok, half at warn, one at critical; a variable already set, or --workers N, wins.

Its CPU is the kernel's rusage of the child (with every descendant it waited for, and the orphans that
cost-meter reaps as the tree's subreaper); its memory the tree's RSS sampled every --sample-interval and
integrated; descendants still running when the command exits are reported, not waited for. The record goes to --records, the month-to-date to
--checkpoint, alerts to standard error. SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to the command
(to its process group when standard input is not a terminal; at a terminal, Ctrl-C reaches it directly).

With --cache DIR, a command whose key (command line, --key-env variables, --key-git commit and dirty
tree, --key-input contents, --key-version, labels) has a good entry is not run: its --outputs are restored,
a record with cache_hit: true and no cost is written. A miss runs it and, if it exits 0, stores the outputs.

Exit status: the command's own, or 128+N if signal N killed it; 1 refused input (a budget file, the
records, the tokens file, an output to cache missing); 2 usage error; 69 ad-hoc job refused (a budget is
critical); 75 heavy job refused outside its window; 77 --force-heavy refused (token not authorised, or the
override could not be audited); 126 command not executable; 127 command not found.";

/// `cost-meter run`'s options.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    label_args: LabelArgs,
    /// Labels as name=value pairs (`team=research,service=backtester,tier=heavy`); --team etc. add to them.
    #[arg(long = "labels", value_name = "K=V,...")]
    labels: Option<Labels>,
    /// The job's id in its record [default: SERVICE-UNIXTIME-PID].
    #[arg(long, value_name = "ID")]
    job_id: Option<String>,
    /// The budgets directory [default: configs/budgets; without it, no budget covers the job].
    #[arg(long, value_name = "DIR")]
    budgets: Option<PathBuf>,
    /// The records file: the estimate reads it, the job's record is appended to it.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_RECORDS)]
    records: PathBuf,
    /// The month-to-date checkpoint: levels come from it and the job is charged to it [default: levels from
    /// this month's records, nothing saved].
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// The audit log of denials and overrides (CSV).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_AUDIT)]
    audit: PathBuf,
    /// A scheduled job (not ad-hoc): not refused by a critical budget's freeze.
    #[arg(long)]
    scheduled: bool,
    /// Force a heavy job outside its window (token in COST_METER_OVERRIDE_TOKEN; audited).
    #[arg(long)]
    force_heavy: bool,
    /// Who forces it (the audit log's actor) [default: $USER].
    #[arg(long, value_name = "NAME", requires = "force_heavy")]
    actor: Option<String>,
    /// Why it is forced (the audit log's reason).
    #[arg(long, value_name = "TEXT", requires = "force_heavy")]
    reason: Option<String>,
    /// The authorised override tokens (one a line, `id:token` or a bare token; `#` comments).
    #[arg(long, value_name = "FILE")]
    override_tokens: Option<PathBuf>,
    /// Worker count for the command's pools (RAYON_NUM_THREADS, OMP_NUM_THREADS, BROWNOUT_MAX_WORKERS).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    workers: Option<u32>,
    /// How often the tree's memory is sampled (`250ms`, `1s`).
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_duration)]
    sample_interval: Duration,
    /// Print no estimate, budget or cost lines (errors and alerts still go to standard error).
    #[arg(long, short)]
    quiet: bool,
    /// Push the job's cost to this Prometheus Pushgateway (`http://host:9091`).
    #[arg(long, value_name = "URL")]
    pushgateway: Option<String>,
    /// The result cache's directory.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Put the git commit and a hash of the uncommitted changes of the working directory's repository in the key.
    #[arg(long, requires = "cache")]
    key_git: bool,
    /// Put this file's content hash in the key (repeatable).
    #[arg(long, value_name = "FILE", num_args = 1.., requires = "cache")]
    key_input: Vec<PathBuf>,
    /// Put this environment variable's value in the key (repeatable).
    #[arg(long, value_name = "VAR", num_args = 1.., requires = "cache")]
    key_env: Vec<String>,
    /// Put this version in the key: bump it when a schema or the code's meaning changes.
    #[arg(long, value_name = "V", requires = "cache")]
    key_version: Option<String>,
    /// The command's output files or directories, restored on a hit and stored on a miss (repeatable).
    #[arg(long, value_name = "PATH", num_args = 1.., requires = "cache")]
    outputs: Vec<PathBuf>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = brownout_foundation::duration::parse(text)?;
    if d < Duration::from_millis(1) {
        return Err(format!("`{text}` is below 1ms"));
    }
    Ok(d)
}

fn say(quiet: bool, line: impl AsRef<str>) {
    if !quiet {
        eprintln!("cost-meter: {}", line.as_ref());
    }
}

/// The job's labels: `--labels`, then `--team` etc. over them; team and service are required.
fn labels_of(args: &RunArgs) -> Result<Labels, Failure> {
    let mut labels = args.labels.clone().unwrap_or_default();
    let l = &args.label_args;
    if let Some(v) = &l.team {
        labels.team = v.as_str().into();
    }
    if let Some(v) = &l.service {
        labels.service = v.as_str().into();
    }
    if let Some(v) = &l.strategy {
        labels.strategy = v.as_str().into();
    }
    if let Some(v) = &l.env {
        labels.env = v.as_str().into();
    }
    if let Some(t) = l.tier {
        labels.tier = t;
    }
    if labels.team.is_empty() || labels.service.is_empty() {
        return Err(Failure::Usage("run needs a team and a service (--team/--service or --labels)".into()));
    }
    Ok(labels)
}

/// The budgets: the directory given, or `configs/budgets` if it exists, or none.
fn budgets_of(args: &RunArgs, quiet: bool) -> Result<Arc<BudgetSet>, Failure> {
    let dir = match &args.budgets {
        Some(d) => d.clone(),
        None if Path::new(DEFAULT_DIR).is_dir() => PathBuf::from(DEFAULT_DIR),
        None => {
            say(quiet, format!("no budgets (no {DEFAULT_DIR}/ here and no --budgets): the job is not gated"));
            return Ok(Arc::new(BudgetSet::new(Vec::new()).map_err(|e| Failure::Refused(e.to_string()))?));
        }
    };
    Ok(Arc::new(load_budgets(&dir)?))
}

/// The monitor that judges levels: restored from the checkpoint, or fed this month's records.
fn monitor_of(
    args: &RunArgs,
    budgets: &Arc<BudgetSet>,
    records: &[JobRecord],
    now: SystemTime,
) -> Result<BudgetMonitor, Failure> {
    if let Some(c) = &args.checkpoint {
        if let Some(dir) = c.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Failure::Refused(format!("{}: {e}", dir.display())))?;
        }
        return BudgetMonitor::open(Arc::clone(budgets), c, now).map_err(|e| Failure::Refused(e.to_string()));
    }
    let mut m = BudgetMonitor::new(Arc::clone(budgets), now);
    let month = Month::of(now);
    for r in records.iter().filter(|r| Month::of_unix(r.started_at_unix + r.wall_seconds.max(0.0)) == month) {
        let _ = m.record(r, now);
    }
    Ok(m)
}

fn authorised_tokens(path: Option<&Path>) -> Result<Vec<String>, Failure> {
    let Some(path) = path else { return Ok(Vec::new()) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Refused(format!("{}: cannot read the override tokens: {e}", path.display())))?;
    Ok(brownout_foundation::token_file::entries(&text).map(|e| e.token.to_owned()).collect())
}

/// The gates before launch: the ad-hoc freeze, then the heavy-tier window.
fn gate(
    args: &RunArgs,
    job: &str,
    labels: &Labels,
    freeze: &AdhocFreeze,
    budgets: &Arc<BudgetSet>,
) -> Result<(), Failure> {
    let now = SystemTime::now();
    if !args.scheduled
        && let Err(frozen) = freeze.check()
    {
        let log = AuditLog::new(&args.audit);
        let names: Vec<&str> = frozen.budgets().map(|(b, _)| b).collect();
        let entry = AuditEntry::new(AuditEvent::Denied, brownout_foundation::time::unix_seconds(now).floor() as i64)
            .budget(names.join(","))
            .job(job.to_owned())
            .tier(labels.tier.as_str().to_owned())
            .reason(format!("ad-hoc job refused: {frozen}"));
        if let Err(e) = log.append(&entry) {
            eprintln!("cost-meter: {}: cannot audit the denial: {e}", args.audit.display());
        }
        eprintln!("cost-meter: ad-hoc job `{job}` refused: {frozen} (pass --scheduled for a scheduled run)");
        return Err(Failure::Exit(EXIT_FROZEN));
    }
    if labels.tier != Tier::Heavy {
        return Ok(());
    }
    let mut tier_gate = TierGate::new(Arc::clone(budgets), AuditLog::new(&args.audit));
    for t in authorised_tokens(args.override_tokens.as_deref())? {
        tier_gate = tier_gate.authorise(t);
    }
    let over = args.force_heavy.then(|| {
        let actor = args.actor.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_default();
        let token = std::env::var(TOKEN_VAR).unwrap_or_default();
        Override::new(actor, token, args.reason.clone().unwrap_or_default())
    });
    match tier_gate.admit(job, labels, now, over.as_ref()) {
        Ok(brownout_cost::budget::Admission::Overridden { actor }) => {
            eprintln!(
                "cost-meter: heavy job `{job}` forced outside its window by `{actor}` (audited in {})",
                args.audit.display()
            );
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(denied) => {
            eprintln!("cost-meter: {denied} (audited in {})", args.audit.display());
            if args.force_heavy && std::env::var_os(TOKEN_VAR).is_none() {
                eprintln!("cost-meter: --force-heavy reads its token from {TOKEN_VAR}, which is not set");
            }
            Err(Failure::Exit(if args.force_heavy { EXIT_OVERRIDE_REFUSED } else { EXIT_OUTSIDE_WINDOW }))
        }
    }
}

/// The highest level among the budgets covering `labels`.
fn level_of(monitor: &BudgetMonitor, labels: &Labels) -> AlertLevel {
    monitor.budgets().covering(labels).map(|b| monitor.level(&b.name)).max().unwrap_or_default()
}

fn print_budgets(monitor: &BudgetMonitor, labels: &Labels, quiet: bool) {
    let lines: Vec<String> = monitor
        .budgets()
        .covering(labels)
        .map(|b| {
            let u = monitor.utilization(&b.name).unwrap_or_default();
            let used: Vec<String> = u.resources().map(|(r, x)| format!("{r} {:.1}%", x * 100.0)).collect();
            format!("{} ({}, {})", b.name, monitor.level(&b.name).as_str(), used.join(", "))
        })
        .collect();
    if lines.is_empty() {
        say(quiet, format!("no budget covers {labels}"));
    } else {
        say(quiet, format!("budgets: {}", lines.join("; ")));
    }
}

fn alert_line(e: &AlertEvent) -> String {
    let used: Vec<String> = e.utilization.resources().map(|(r, x)| format!("{r} {:.1}%", x * 100.0)).collect();
    format!(
        "cost-meter: alert: budget `{}` {} -> {} ({}; owner {})",
        e.budget,
        e.from.as_str(),
        e.to.as_str(),
        used.join(", "),
        e.owner
    )
}

/// Runs the command, forwarding signals; its outcome, or the exit status of a spawn failure.
fn launch(args: &RunArgs, workers: Workers, quiet: bool) -> Result<ChildOutcome, Failure> {
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    let mut set = Vec::new();
    for var in WORKER_VARS {
        let value = match args.workers {
            Some(n) => n.to_string(),
            None if std::env::var_os(var).is_some() => continue,
            None => workers.count.to_string(),
        };
        cmd.env(var, &value);
        set.push(format!("{var}={value}"));
    }
    if !set.is_empty() {
        say(quiet, format!("workers: {} (budgets {})", set.join(" "), workers.level.as_str()));
    }
    // At a terminal the command stays in the foreground group (it can read the terminal, Ctrl-C reaches it
    // directly); otherwise it leads its own group, and every forwarded signal reaches its whole tree.
    let at_terminal = std::io::stdin().is_terminal();
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    // Registered before the spawn: no signal is lost between the two.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        .map_err(|e| Failure::Refused(format!("cannot handle signals: {e}")))?;
    // cost-meter's only child is the command: it reaps the command's orphans too, and meters them.
    let how = Spawn::default().sample_every(args.sample_interval).own_group(!at_terminal).reap_orphans(true);
    let child = MeteredChild::spawn(&mut cmd, how).map_err(|e| {
        eprintln!("cost-meter: {}: {e}", args.command[0]);
        Failure::Exit(if e.kind() == std::io::ErrorKind::NotFound { EXIT_NOT_FOUND } else { EXIT_CANNOT_EXECUTE })
    })?;
    let handle = signals.handle();
    let signaller = child.signaller();
    let forwarder = std::thread::spawn(move || {
        for sig in signals.forever() {
            if at_terminal && (sig == SIGINT || sig == SIGQUIT) {
                continue; // the terminal sent it to the command too
            }
            let _ = signaller.signal(sig);
        }
    });
    let outcome = child.wait();
    handle.close();
    let _ = forwarder.join();
    outcome.map_err(|e| Failure::Refused(format!("waiting for {}: {e}", args.command[0])))
}

fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}

/// Writes the record, charges it to the budgets (printing alerts), and pushes it.
fn account(args: &RunArgs, record: &JobRecord, monitor: &mut BudgetMonitor, exit: Option<u8>) {
    match JsonLinesFile::open(&args.records) {
        Ok(sink) => sink.record(record),
        Err(e) => eprintln!("cost-meter: {}: cannot append the record: {e}", args.records.display()),
    }
    match monitor.record(record, SystemTime::now()) {
        Ok(events) => events.iter().for_each(|e| eprintln!("{}", alert_line(e))),
        Err(e) => eprintln!("cost-meter: {e}"),
    }
    if let Some(url) = &args.pushgateway {
        match push::push(url, record, exit) {
            Ok(()) => say(args.quiet, format!("pushed to {url}")),
            Err(e) => eprintln!("cost-meter: pushgateway {url}: {e}"),
        }
    }
}

fn key_of(args: &RunArgs, labels: &Labels) -> Result<CacheKey, Failure> {
    let mut key = CacheKey::builder().command(&args.command).part("labels", labels.to_string());
    for var in &args.key_env {
        key = key.env(var, std::env::var(var).ok().as_deref());
    }
    if args.key_git {
        key = key.git(Path::new(".")).map_err(|e| Failure::Refused(format!("--key-git: {e}")))?;
    }
    for input in &args.key_input {
        key = key.input_file(input).map_err(|e| Failure::Refused(format!("--key-input {e}")))?;
    }
    if let Some(v) = &args.key_version {
        key = key.version(v);
    }
    Ok(key.build())
}

pub(crate) fn run(args: RunArgs) -> Result<(), Failure> {
    let quiet = args.quiet;
    let labels = labels_of(&args)?;
    if args.cache.is_some() && args.outputs.is_empty() {
        return Err(Failure::Usage("--cache needs --outputs PATH... (what to restore on a hit)".into()));
    }
    let now = SystemTime::now();
    let job = args.job_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-{}",
            labels.service.as_str(),
            now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            std::process::id()
        )
    });
    let budgets = budgets_of(&args, quiet)?;
    let records = load_records(Some(&args.records), false).or_else(|e| match e {
        // A records file that does not exist yet is no history.
        Failure::Refused(_) if !args.records.exists() => Ok(Vec::new()),
        e => Err(e),
    })?;
    let mut monitor = monitor_of(&args, &budgets, &records, now)?;

    let Some(dir) = &args.cache else {
        let (_, code) = execute(&args, &job, &labels, &budgets, &records, &mut monitor)?;
        return if code == 0 { Ok(()) } else { Err(Failure::Exit(code)) };
    };
    // The cache first: a hit runs nothing, so neither the freeze nor the heavy-tier window applies.
    let cache = ResultCache::open(dir).map_err(|e| Failure::Refused(format!("{}: {e}", dir.display())))?;
    let key = key_of(&args, &labels)?;
    let short = &key.digest()[..12];
    let labels_text = labels.to_string();
    let files = |n: usize| format!("{n} file{}", if n == 1 { "" } else { "s" });
    let served = cache.get_or_compute(&key, &labels_text, &args.outputs, || {
        say(quiet, format!("cache miss {short}: running the command"));
        let (record, code) = execute(&args, &job, &labels, &budgets, &records, &mut monitor)?;
        if code != 0 {
            say(quiet, "cache: the command failed, nothing stored");
            return Err(Failure::Exit(code));
        }
        Ok(Cost::new(record.cpu_seconds, record.memory_gb_hours))
    });
    match served {
        Ok(s) if s.hit => {
            say(
                quiet,
                format!(
                    "cache hit {short}: restored {} ({}), saved {:.6} CPU-hours; the command did not run",
                    files(s.files),
                    human_bytes(s.bytes),
                    s.saved.cpu_seconds / 3600.0
                ),
            );
            let mut record = ChildOutcome::nothing(now).record(job, labels);
            record.cache_hit = true;
            account(&args, &record, &mut monitor, Some(0));
            Ok(())
        }
        Ok(s) => {
            if let Some(reason) = &s.corrupt {
                eprintln!("cost-meter: cache: corrupt entry not served (a miss): {reason}");
            }
            let again = if s.corrupt.is_some() { " (replacing the corrupt entry)" } else { "" };
            say(quiet, format!("cache stored {short}: {} ({}){again}", files(s.files), human_bytes(s.bytes)));
            Ok(())
        }
        Err(CacheError::Compute(failure)) => Err(failure),
        Err(CacheError::Io(e)) => {
            eprintln!("cost-meter: cache: outputs not stored: {e}");
            Err(Failure::Exit(1))
        }
        Err(_) => {
            eprintln!("cost-meter: cache: the result cache failed");
            Err(Failure::Exit(1))
        }
    }
}

/// Estimates, gates, runs and accounts the command: its record and exit status.
fn execute(
    args: &RunArgs,
    job: &str,
    labels: &Labels,
    budgets: &Arc<BudgetSet>,
    records: &[JobRecord],
    monitor: &mut BudgetMonitor,
) -> Result<(JobRecord, u8), Failure> {
    let quiet = args.quiet;
    match estimate(records, labels, budgets) {
        Some(e) => say(quiet, format!("estimate: {e}")),
        None => {
            say(quiet, format!("estimate: no finished job of team `{}` in {}", labels.team, args.records.display()))
        }
    }
    print_budgets(monitor, labels, quiet);
    gate(args, job, labels, &monitor.adhoc_freeze(), budgets)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = Workers::for_level(level_of(monitor, labels), cores);

    let outcome = launch(args, workers, quiet)?;
    let code = outcome.exit_code();
    if outcome.orphans_running > 0 {
        eprintln!(
            "cost-meter: {} process{} the command started still run{}: not metered, and left running",
            outcome.orphans_running,
            if outcome.orphans_running == 1 { "" } else { "es" },
            if outcome.orphans_running == 1 { "s" } else { "" },
        );
    }
    let record = outcome.record(job, labels.clone());
    say(
        quiet,
        format!(
            "job `{job}`: {:.2} CPU-seconds ({:.5} CPU-hours), {:.6} GB-hours (peak {}, {} samples), {:.2} s wall, exit {code}",
            record.cpu_seconds,
            record.cpu_hours(),
            record.memory_gb_hours,
            human_bytes(record.peak_bytes),
            outcome.samples,
            record.wall_seconds,
        ),
    );
    account(args, &record, monitor, Some(code));
    Ok((record, code))
}
