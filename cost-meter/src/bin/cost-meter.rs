//! `cost-meter`: check budget files, report usage, generate Prometheus rules, estimate a job before it runs.
//!
//! ```text
//! cost-meter validate [DIR]                  check the budget files (default configs/budgets/)
//! cost-meter report [--budgets DIR] [--records FILE] [--checkpoint FILE] [--month YYYY-MM] [--json]
//!                                            usage per budget and per label set, month to date
//! cost-meter rules [DIR] [--out FILE] [--test BUDGET --test-out FILE]
//!                                            Prometheus recording and alerting rules (and a promtool test)
//! cost-meter estimate --team T --service S [--strategy X] [--tier T] [--env E]
//!                     [--budgets DIR] [--records FILE] [--json]
//!                                            the pre-run estimate from similar jobs in the records
//! ```
//!
//! `--records` defaults to `cost_records.jsonl` (JSON lines, one finished job each). Errors go to standard
//! error naming the file, the field and the reason; a refused input exits with status 1, a usage error
//! with status 2.
//!
//! Only `rules` writes files, and only once every argument has been checked: a refused argument leaves no
//! `--out` or `--test-out` file behind. `report --checkpoint FILE` only reads: a checkpoint that does not
//! parse is reported (file and reason) with status 1 and left where it is, untouched; the service that keeps
//! it moves it aside when it next starts. The report does not fall back to the records then, since that
//! would show a month-to-date figure the checkpoint contradicts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use cost_meter::budget::{
    AlertLevel, BudgetSet, Forecast, Ledger, Month, Usage, Utilization, checkpoint, estimate, promtool_test_yaml,
    rules_yaml,
};
use cost_meter::{JobRecord, Labels, Tier, read_records};
use serde_json::json;

const USAGE: &str = "usage: cost-meter (validate [DIR] | report [--budgets DIR] [--records FILE] [--checkpoint FILE] \
[--month YYYY-MM] [--json] | rules [DIR] [--out FILE] [--test BUDGET --test-out FILE] | estimate --team T --service S \
[--strategy X] [--tier T] [--env E] [--budgets DIR] [--records FILE] [--json])";
const DEFAULT_DIR: &str = "configs/budgets";
const DEFAULT_RECORDS: &str = "cost_records.jsonl";

enum Failure {
    Usage(String),
    Refused(String),
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("cost-meter: {msg}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Refused(msg)) => {
            eprintln!("cost-meter: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Options and positional words of a command line.
#[derive(Default)]
struct Args {
    words: Vec<String>,
    options: BTreeMap<&'static str, String>,
    json: bool,
}

const VALUED: [&str; 13] = [
    "--budgets",
    "--records",
    "--checkpoint",
    "--month",
    "--out",
    "--test",
    "--test-out",
    "--team",
    "--service",
    "--strategy",
    "--tier",
    "--env",
    "--dir",
];

fn parse(args: Vec<String>) -> Result<Option<Args>, Failure> {
    let mut parsed = Args::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--json" => parsed.json = true,
            a if a.starts_with("--") => {
                let (name, inline) = match a.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (a, None),
                };
                let key = VALUED
                    .iter()
                    .find(|k| **k == name)
                    .ok_or_else(|| Failure::Usage(format!("unknown option `{name}`")))?;
                let value = match inline {
                    Some(v) => v,
                    None => it.next().ok_or_else(|| Failure::Usage(format!("{name} needs a value")))?,
                };
                parsed.options.insert(key, value);
            }
            _ => parsed.words.push(arg),
        }
    }
    Ok(Some(parsed))
}

fn run(args: Vec<String>) -> Result<(), Failure> {
    let Some(args) = parse(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let words: Vec<&str> = args.words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["validate"] => validate(&dir_option(&args, None)),
        ["validate", dir] => validate(&dir_option(&args, Some(dir))),
        ["report"] => report(&args),
        ["rules"] => rules(&args, &dir_option(&args, None)),
        ["rules", dir] => rules(&args, &dir_option(&args, Some(dir))),
        ["estimate"] => estimate_cmd(&args),
        [] => Err(Failure::Usage("no command".into())),
        other => Err(Failure::Usage(format!("cannot understand `{}`", other.join(" ")))),
    }
}

fn dir_option(args: &Args, positional: Option<&str>) -> PathBuf {
    positional
        .map(PathBuf::from)
        .or_else(|| args.options.get("--budgets").or(args.options.get("--dir")).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

fn load_budgets(dir: &Path) -> Result<BudgetSet, Failure> {
    BudgetSet::load_dir(dir).map_err(|e| {
        let n = e.errors().len();
        Failure::Refused(format!("{e}\n{n} error{} in {}", if n == 1 { "" } else { "s" }, dir.display()))
    })
}

fn validate(dir: &Path) -> Result<(), Failure> {
    let budgets = load_budgets(dir)?;
    for b in budgets.iter() {
        let file = b.file.as_deref().map(|f| f.display().to_string()).unwrap_or_default();
        println!("{file}: budget `{}` valid", b.name);
    }
    println!("{}: {} budget{}, valid", dir.display(), budgets.len(), if budgets.len() == 1 { "" } else { "s" });
    Ok(())
}

/// Reads the records file; a missing default file is no records. Bad lines are reported on standard error.
fn load_records(args: &Args, required: bool) -> Result<Vec<JobRecord>, Failure> {
    let explicit = args.options.get("--records");
    let path = PathBuf::from(explicit.map(String::as_str).unwrap_or(DEFAULT_RECORDS));
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

fn report(args: &Args) -> Result<(), Failure> {
    let now = SystemTime::now();
    let budgets = Arc::new(load_budgets(&dir_option(args, None))?);
    let checkpoint = match args.options.get("--checkpoint") {
        None => None,
        // Read only: a corrupt checkpoint is reported and left in place (only its writer moves it aside).
        Some(p) => match checkpoint::read(Path::new(p)) {
            Ok(Some(c)) => Some(c),
            Ok(None) => return Err(Failure::Refused(format!("{p}: no checkpoint there"))),
            Err(e) => return Err(Failure::Refused(e.to_string())),
        },
    };
    // without a checkpoint the records are the only source: a missing file is an error then
    let records = load_records(args, checkpoint.is_none())?;
    let month = match args.options.get("--month") {
        Some(m) => m.parse::<Month>().map_err(|e| Failure::Usage(format!("--month: {e}")))?,
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
                        "exhausted_at": f.exhausted_at_unix.map(cost_meter::budget::rfc3339),
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
fn rules(args: &Args, dir: &Path) -> Result<(), Failure> {
    let budgets = load_budgets(dir)?;
    let out = args.options.get("--out");
    let test = match (args.options.get("--test"), args.options.get("--test-out")) {
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

fn estimate_cmd(args: &Args) -> Result<(), Failure> {
    let get = |k: &str| args.options.get(k).cloned().unwrap_or_default();
    let (team, service) = (get("--team"), get("--service"));
    if team.is_empty() || service.is_empty() {
        return Err(Failure::Usage("estimate needs --team and --service".into()));
    }
    let tier = match args.options.get("--tier") {
        Some(t) => t.parse::<Tier>().map_err(|e| Failure::Usage(format!("--tier: {e}")))?,
        None => Tier::default(),
    };
    let labels = Labels::new(team, service).env(get("--env")).strategy(get("--strategy")).tier(tier);
    let budgets = load_budgets(&dir_option(args, None))?;
    let records = load_records(args, true)?;
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
