//! The budget commands: `validate`, `report`, `rules`, `estimate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use brownout_cost::budget::{
    AlertLevel, BudgetSet, Forecast, Ledger, Month, Usage, Utilization, checkpoint, estimate, promtool_test_yaml,
    rules_yaml,
};
use brownout_cost::{JobRecord, Labels, Tier, read_records};
use clap::Args;
use serde_json::json;

use crate::{Failure, Sources};

/// The budgets directory when none is given.
pub(crate) const DEFAULT_DIR: &str = "configs/budgets";
/// The records file when none is given.
pub(crate) const DEFAULT_RECORDS: &str = "cost_records.jsonl";

/// `cost-meter report`'s options.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    sources: Sources,
    /// Read month-to-date usage and levels from this checkpoint (read only; never moved or rewritten).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// The month to report [default: the checkpoint's month, or this month].
    #[arg(long, value_name = "YYYY-MM")]
    month: Option<Month>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `cost-meter rules`' options.
#[derive(Debug, Args)]
pub(crate) struct RulesArgs {
    /// The budgets directory.
    #[arg(value_name = "DIR", conflicts_with = "budgets")]
    dir: Option<PathBuf>,
    /// The budgets directory (the same as DIR).
    #[arg(long, visible_alias = "dir", value_name = "DIR")]
    budgets: Option<PathBuf>,
    /// Write the rules to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<String>,
    /// Also write a promtool unit test of this budget's rules (with --test-out and --out).
    #[arg(long, value_name = "BUDGET")]
    test: Option<String>,
    /// Where to write the promtool test (with --test).
    #[arg(long, value_name = "FILE")]
    test_out: Option<String>,
}

/// The labels of a job, as the commands that estimate or run one take them.
#[derive(Debug, Args)]
pub(crate) struct LabelArgs {
    /// The team (label `team`).
    #[arg(long)]
    pub(crate) team: Option<String>,
    /// The service (label `service`).
    #[arg(long)]
    pub(crate) service: Option<String>,
    /// The strategy (label `strategy`).
    #[arg(long)]
    pub(crate) strategy: Option<String>,
    /// The workload tier: interactive, batch, nightly or heavy.
    #[arg(long)]
    pub(crate) tier: Option<Tier>,
    /// The environment (label `env`).
    #[arg(long)]
    pub(crate) env: Option<String>,
}

/// `cost-meter estimate`'s options.
#[derive(Debug, Args)]
pub(crate) struct EstimateArgs {
    #[command(flatten)]
    labels: LabelArgs,
    #[command(flatten)]
    sources: Sources,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// `DIR`, or the default budgets directory.
pub(crate) fn dir_or_default(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

pub(crate) fn load_budgets(dir: &Path) -> Result<BudgetSet, Failure> {
    BudgetSet::load_dir(dir).map_err(|e| {
        let n = e.errors().len();
        Failure::Refused(format!("{e}\n{n} error{} in {}", if n == 1 { "" } else { "s" }, dir.display()))
    })
}

pub(crate) fn validate(dir: &Path) -> Result<(), Failure> {
    let budgets = load_budgets(dir)?;
    for b in budgets.iter() {
        let file = b.file.as_deref().map(|f| f.display().to_string()).unwrap_or_default();
        println!("{file}: budget `{}` valid", b.name);
    }
    println!("{}: {} budget{}, valid", dir.display(), budgets.len(), if budgets.len() == 1 { "" } else { "s" });
    Ok(())
}

/// Reads the records file; a missing default file is no records. Bad lines are reported on standard error.
pub(crate) fn load_records(explicit: Option<&Path>, required: bool) -> Result<Vec<JobRecord>, Failure> {
    let path = explicit.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(DEFAULT_RECORDS));
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() && !required => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(Failure::Refused(format!("{}: cannot read the records: {e}", path.display()))),
    };
    let (good, bad) = read_records(std::io::BufReader::new(file))
        .map_err(|e| Failure::Refused(format!("{}: cannot read the records: {e}", path.display())))?;
    for b in &bad {
        eprintln!("cost-meter: {}: line {}: skipped: {}", path.display(), b.line, b.reason);
    }
    Ok(good)
}

fn finished_month(r: &JobRecord) -> Month {
    Month::of_unix(r.started_at_unix + r.wall_seconds.max(0.0))
}

fn ratio(x: Option<f64>) -> String {
    x.map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_else(|| "-".into())
}

pub(crate) fn report(args: &ReportArgs) -> Result<(), Failure> {
    let now = SystemTime::now();
    let budgets = Arc::new(load_budgets(&dir_or_default(args.sources.budgets.clone()))?);
    let checkpoint = match &args.checkpoint {
        None => None,
        // Read only: a corrupt checkpoint is reported and left in place (only its writer moves it aside).
        Some(p) => match checkpoint::read(p) {
            Ok(Some(c)) => Some(c),
            Ok(None) => return Err(Failure::Refused(format!("{}: no checkpoint there", p.display()))),
            Err(e) => return Err(Failure::Refused(e.to_string())),
        },
    };
    // without a checkpoint the records are the only source: a missing file is an error then
    let records = load_records(args.sources.records.as_deref(), checkpoint.is_none())?;
    let month = match args.month {
        Some(m) => m,
        None => checkpoint.as_ref().map(|c| c.month).unwrap_or_else(|| Month::of(now)),
    };
    let in_month: Vec<&JobRecord> = records.iter().filter(|r| finished_month(r) == month).collect();
    let mut ledger = Ledger::new(month);
    for r in &in_month {
        ledger.charge(&budgets, r);
    }
    let from_checkpoint = checkpoint.as_ref().filter(|c| c.month == month);
    let mut rows = Vec::new();
    for b in budgets.iter() {
        let (usage, source) = match from_checkpoint {
            Some(c) => (c.budgets.get(&b.name).map(|s| s.usage).unwrap_or_default(), "checkpoint"),
            None => (ledger.usage(&b.name), "records"),
        };
        let u = Utilization::of(b, usage);
        let level = from_checkpoint
            .and_then(|c| c.budgets.get(&b.name).map(|s| s.level))
            .unwrap_or_else(|| AlertLevel::Ok.next(u.max(), b.thresholds, b.hysteresis));
        let forecast = Forecast::new(b, month, usage, now);
        let mut by_labels: BTreeMap<Vec<String>, (Usage, usize)> = BTreeMap::new();
        for r in in_month.iter().filter(|r| b.covers(&r.labels)) {
            let key = Labels::NAMES.iter().map(|n| r.labels.get(n).unwrap_or_default().to_owned()).collect();
            let e = by_labels.entry(key).or_default();
            e.0 += Usage::of(r);
            e.1 += 1;
        }
        rows.push((b, usage, source, u, level, forecast, by_labels));
    }
    if args.json {
        let budgets_json: Vec<_> = rows
            .iter()
            .map(|(b, usage, source, u, level, f, by)| {
                json!({
                    "budget": b.name,
                    "owner": b.owner,
                    "monthly_cpu_hours": b.monthly_cpu_hours,
                    "monthly_memory_gb_hours": b.monthly_memory_gb_hours,
                    "source": source,
                    "usage": usage,
                    "utilization": { "cpu": u.cpu, "memory": u.memory },
                    "level": level.as_str(),
                    "forecast": {
                        "elapsed": f.elapsed,
                        "projected": f.projected,
                        "projected_utilization": { "cpu": f.projected_utilization.cpu, "memory": f.projected_utilization.memory },
                        "exhausted_at": f.exhausted_at_unix.map(brownout_foundation::time::rfc3339),
                    },
                    "by_labels": by.iter().map(|(k, (usage, jobs))| {
                        let labels: serde_json::Map<String, serde_json::Value> =
                            Labels::NAMES.iter().zip(k).map(|(n, v)| ((*n).to_owned(), json!(v))).collect();
                        json!({ "labels": labels, "jobs": jobs, "usage": usage })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        let doc = json!({ "month": month.to_string(), "records": in_month.len(), "budgets": budgets_json });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!("month {month} ({} records in the month)", in_month.len());
    println!(
        "{:<24} {:>12} {:>8} {:>14} {:>8} {:<9} {:>10} source",
        "budget", "cpu-hours", "cpu", "gb-hours", "memory", "level", "month-end"
    );
    for (b, usage, source, u, level, f, by) in &rows {
        println!(
            "{:<24} {:>12.2} {:>8} {:>14.2} {:>8} {:<9} {:>10} {source}",
            b.name,
            usage.cpu_hours,
            ratio(u.cpu),
            usage.memory_gb_hours,
            ratio(u.memory),
            level.as_str(),
            ratio(Some(f.projected_utilization.max())),
        );
        for (k, (usage, jobs)) in by {
            let labels: Vec<String> =
                Labels::NAMES.iter().zip(k).filter(|(_, v)| !v.is_empty()).map(|(n, v)| format!("{n}={v}")).collect();
            let jobs = format!("{jobs} job{}", if *jobs == 1 { "" } else { "s" });
            println!(
                "  {:<22} {:>12.2} {:>8} {:>14.2} {:>8} {jobs:<9} {:>10} {}",
                "",
                usage.cpu_hours,
                "",
                usage.memory_gb_hours,
                "",
                "",
                labels.join(" ")
            );
        }
    }
    Ok(())
}

/// Checks every argument first (the budgets, `--test` with `--test-out` and `--out`, the budget named), then
/// writes: a refused argument leaves no file behind.
pub(crate) fn rules(args: &RulesArgs) -> Result<(), Failure> {
    let dir = &dir_or_default(args.dir.clone().or(args.budgets.clone()));
    let budgets = load_budgets(dir)?;
    let out = args.out.as_ref();
    let test = match (args.test.as_ref(), args.test_out.as_ref()) {
        (None, None) => None,
        (Some(name), Some(test_out)) => {
            let out = out.ok_or_else(|| Failure::Usage("--test needs --out (the rules file it tests)".into()))?;
            if std::path::absolute(out).ok() == std::path::absolute(test_out).ok() {
                return Err(Failure::Usage(format!("--out and --test-out are the same file `{out}`")));
            }
            let budget = budgets
                .get(name)
                .ok_or_else(|| Failure::Refused(format!("{}: --test: no budget named `{name}`", dir.display())))?;
            // promtool resolves rule files relative to the test file's directory
            let (o, t) = (Path::new(out), Path::new(test_out));
            let rules_file = match (o.parent(), t.parent()) {
                (Some(a), Some(b)) if a == b => o.file_name().map(|n| n.to_string_lossy().into_owned()),
                _ => std::path::absolute(o).ok().map(|p| p.display().to_string()),
            }
            .unwrap_or_else(|| o.display().to_string());
            Some((test_out, promtool_test_yaml(budget, &rules_file)))
        }
        _ => return Err(Failure::Usage("--test and --test-out go together".into())),
    };
    for path in out.into_iter().chain(test.as_ref().map(|(t, _)| *t)) {
        let parent = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(Failure::Refused(format!("{path}: cannot write: no directory `{}`", parent.display())));
        }
    }
    // Every argument is good: now write.
    let text = rules_yaml(&budgets);
    let write = |path: &str, text: &str| {
        std::fs::write(path, text).map_err(|e| Failure::Refused(format!("{path}: cannot write: {e}")))
    };
    match out {
        Some(out) => write(out, &text)?,
        None => print!("{text}"),
    }
    match test {
        Some((test_out, test_text)) => write(test_out, &test_text),
        None => Ok(()),
    }
}

/// The labels of `args`; `--team` and `--service` are required.
pub(crate) fn labels_of(args: &LabelArgs, command: &str) -> Result<Labels, Failure> {
    let (Some(team), Some(service)) = (&args.team, &args.service) else {
        return Err(Failure::Usage(format!("{command} needs --team and --service")));
    };
    if team.is_empty() || service.is_empty() {
        return Err(Failure::Usage("--team and --service cannot be empty".into()));
    }
    let get = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(Labels::new(team.as_str(), service.as_str())
        .env(get(&args.env))
        .strategy(get(&args.strategy))
        .tier(args.tier.unwrap_or_default()))
}

pub(crate) fn estimate_cmd(args: &EstimateArgs) -> Result<(), Failure> {
    let labels = labels_of(&args.labels, "estimate")?;
    let budgets = load_budgets(&dir_or_default(args.sources.budgets.clone()))?;
    let records = load_records(args.sources.records.as_deref(), true)?;
    let Some(e) = estimate(&records, &labels, &budgets) else {
        return Err(Failure::Refused(format!(
            "no finished job of team `{}` in the records: nothing to estimate from",
            labels.team
        )));
    };
    if args.json {
        let shares: Vec<_> =
            e.shares.iter().map(|s| json!({ "budget": s.budget, "cpu": s.cpu, "memory": s.memory })).collect();
        let doc = json!({
            "matched_on": e.matched_on,
            "similar": e.similar,
            "median": e.median,
            "mean": e.mean,
            "p90": e.p90,
            "shares": shares,
            "summary": e.to_string(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("{e}");
    }
    Ok(())
}
