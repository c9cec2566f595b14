//! The `cost-meter` binary: its command line (clap: help, version, suggestions, usage errors, completions),
//! exit codes, errors naming file, field and reason, and its outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cost_meter(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cost-meter")).args(args).current_dir(cwd).output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cost-meter-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_shipped_budgets_are_valid() {
    let out = cost_meter(&["validate"], &workspace());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("budget `research-cluster` valid"), "{stdout}");
}

#[test]
fn validate_reports_every_error_with_file_field_and_reason() {
    let dir = temp("bad");
    std::fs::write(
        dir.join("a.yaml"),
        "name: a\nowner: o\nmonthly_cpu_hours: 10\nalert_thresholds: { warn: 0.95, critical: 0.9 }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.yaml"),
        "name: b\nowner: o\nmonthly_cpu_hours: 10\nheavy_windows: [\"22:00\"]\ncolor: red\n",
    )
    .unwrap();
    std::fs::write(dir.join("c.yaml"), "name: e\nowner: o\nmonthly_memory_gb_hours: 5\n").unwrap();
    std::fs::write(dir.join("e.yml"), "name: e\nowner: o\nmonthly_cpu_hours: 1\n").unwrap();
    std::fs::write(dir.join("f.yaml"), "name: a\nowner: o\n").unwrap(); // invalid, and a's name again
    std::fs::write(dir.join("d.yaml"), "name: d\nowner: o\nmonthly_cpu_hours: 0\nmatch: { colour: blue }\n").unwrap();
    let out = cost_meter(&["validate", dir.to_str().unwrap()], &dir);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for want in [
        "a.yaml: alert_thresholds.warn: must be below critical (0.9), got 0.95",
        "b.yaml: color: unknown field",
        "e.yml: name: `e` is used by another budget (also in ",
        "d.yaml: monthly_cpu_hours: must be a positive finite number, got 0",
        "d.yaml: match.colour: `colour` is not a label",
        "f.yaml: needs monthly_cpu_hours",
        "f.yaml: name: `a` is used by another budget (also in ",
        "7 errors in",
    ] {
        assert!(stderr.contains(want), "missing `{want}` in:\n{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

const RECORD: &str = r#"{"job_id":"JOB","labels":{"env":"prod","team":"research","service":"backtester","strategy":"momo","tier":"heavy"},"started_at_unix":1794700000.0,"wall_seconds":60.0,"cpu_seconds":CPU,"cpu_mode":"thread_cpu","memory_byte_seconds":0.0,"memory_gb_hours":GB,"peak_bytes":0,"reserved_bytes":0,"memory_mode":"allocator"}"#;

fn records(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for (i, (cpu, gb)) in [(36_000.0, 2.0), (43_200.0, 3.0), (50_400.0, 4.0)].iter().enumerate() {
        text.push_str(
            &RECORD.replace("JOB", &format!("bt-{i}")).replace("CPU", &cpu.to_string()).replace("GB", &gb.to_string()),
        );
        text.push('\n');
    }
    text.push_str("{\"job_id\": \"torn"); // a crash mid-write
    let path = dir.join("records.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn report_sums_the_month_per_budget_and_label_set() {
    let dir = temp("report");
    let recs = records(&dir);
    let budgets = workspace().join("configs/budgets");
    let args =
        ["report", "--budgets", budgets.to_str().unwrap(), "--records", recs.to_str().unwrap(), "--month", "2026-11"];
    let out = cost_meter(&[&args[..], &["--json"]].concat(), &dir);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("line 4: skipped"), "the torn line is reported: {stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["month"], "2026-11");
    assert_eq!(doc["records"], 3);
    let research = doc["budgets"].as_array().unwrap().iter().find(|b| b["budget"] == "research-cluster").unwrap();
    assert_eq!(research["usage"]["cpu_hours"], 36.0);
    assert_eq!(research["usage"]["memory_gb_hours"], 9.0);
    assert_eq!(research["utilization"]["cpu"], 0.02);
    assert_eq!(research["level"], "ok");
    assert_eq!(research["by_labels"][0]["jobs"], 3);
    assert_eq!(research["by_labels"][0]["labels"]["strategy"], "momo");
    let ci = doc["budgets"].as_array().unwrap().iter().find(|b| b["budget"] == "ci-benchmarks").unwrap();
    assert_eq!(ci["usage"]["cpu_hours"], 0.0);
    let out = cost_meter(&args, &dir);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(stdout.contains("research-cluster") && stdout.contains("2.0%") && stdout.contains("3 jobs"), "{stdout}");
    // without a checkpoint, a missing records file is an error
    let out = cost_meter(&["report", "--budgets", budgets.to_str().unwrap()], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("cost_records.jsonl: cannot read the records"));
    let out = cost_meter(&["report", "--budgets", budgets.to_str().unwrap(), "--records", "nope.jsonl"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("nope.jsonl: cannot read the records"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn estimate_uses_similar_jobs_and_the_budget_share() {
    let dir = temp("estimate");
    let recs = records(&dir);
    let budgets = workspace().join("configs/budgets");
    let out = cost_meter(
        &[
            "estimate",
            "--budgets",
            budgets.to_str().unwrap(),
            "--records",
            recs.to_str().unwrap(),
            "--team",
            "research",
            "--service",
            "backtester",
            "--strategy",
            "momo",
            "--tier",
            "heavy",
            "--env",
            "prod",
        ],
        &dir,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("~12 CPU-hours"), "{stdout}");
    assert!(stdout.contains("of research-cluster's monthly CPU-hours"), "{stdout}");
    assert!(stdout.contains("of nightly-backtests's monthly CPU-hours"), "{stdout}");
    let out = cost_meter(&["estimate", "--team", "x"], &dir);
    assert_eq!(out.status.code(), Some(2), "usage error");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rules_are_generated_for_every_budget() {
    let dir = temp("rules");
    let out = cost_meter(&["rules", "configs/budgets"], &workspace());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for b in ["research-cluster", "ci-benchmarks", "nightly-backtests"] {
        assert!(stdout.contains(&format!("name: \"budget-{b}\"")), "{b}");
    }
    assert!(stdout.contains("cost_meter_cpu_nanoseconds_total{env=\\\"prod\\\",team=\\\"research\\\"}"), "{stdout}");
    let rules = dir.join("rules.yaml");
    let test = dir.join("test.yaml");
    let out = cost_meter(
        &[
            "rules",
            "--out",
            rules.to_str().unwrap(),
            "--test",
            "research-cluster",
            "--test-out",
            test.to_str().unwrap(),
        ],
        &workspace(),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(std::fs::read_to_string(&test).unwrap().contains("rule_files:\n  - \"rules.yaml\""));
    let out = cost_meter(&["frobnicate"], &dir);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every argument is checked before anything is written: a refused one leaves no file behind. The runs happen
/// in a scratch directory, so a regression writes there, never into the source tree.
#[test]
fn rules_refuse_bad_arguments_before_writing_anything() {
    let dir = temp("rules-refused");
    let budgets = workspace().join("configs/budgets");
    let budgets = budgets.to_str().unwrap();
    let cases: [(&[&str], i32, &str); 5] = [
        (&["--test", "nope", "--out", "x", "--test-out", "y"], 1, "--test: no budget named `nope`"),
        (&["--test", "research-cluster", "--out", "x"], 2, "--test and --test-out go together"),
        (&["--out", "x", "--test-out", "y"], 2, "--test and --test-out go together"),
        (&["--out", "x", "--test", "research-cluster", "--test-out", "x"], 2, "same file"),
        (&["--out", "x", "--test", "research-cluster", "--test-out", "no/such/dir/y"], 1, "no directory"),
    ];
    for (args, code, says) in cases {
        let out = cost_meter(&[&["rules", budgets][..], args].concat(), &dir);
        let stderr = text(&out).1;
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: `{says}` not in {stderr}");
        for file in ["x", "y"] {
            assert!(!dir.join(file).exists(), "{args:?} wrote {file} before refusing");
        }
    }
    // The same arguments, fixed, write both.
    let out = cost_meter(&["rules", budgets, "--out", "x", "--test", "research-cluster", "--test-out", "y"], &dir);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(dir.join("x").exists() && dir.join("y").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `report` only reads: a corrupt checkpoint is reported with its file and reason, exit 1, and left in place
/// byte for byte (its writer, not a reader, moves it aside).
#[test]
fn report_leaves_a_corrupt_checkpoint_where_it_is() {
    let dir = temp("report-corrupt");
    let recs = records(&dir);
    let checkpoint = dir.join("checkpoint.json");
    let torn = "{\"version\":1,\"month\":\"2026-11\",\"budg";
    std::fs::write(&checkpoint, torn).unwrap();
    let before: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    let budgets = workspace().join("configs/budgets");
    let out = cost_meter(
        &[
            "report",
            "--budgets",
            budgets.to_str().unwrap(),
            "--records",
            recs.to_str().unwrap(),
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
        &dir,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("{}: not a valid checkpoint (", checkpoint.display()))
            && stderr.contains("left as it is"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&checkpoint).unwrap(), torn, "the checkpoint was changed");
    let after: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(after, before, "no file moved aside or written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_lists_every_option_and_version_prints_it() {
    let dir = temp("help");
    let out = cost_meter(&["run", "--help"], &dir);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    for option in [
        "--team",
        "--service",
        "--strategy",
        "--tier",
        "--env",
        "--labels",
        "--job-id",
        "--budgets",
        "--records",
        "--checkpoint",
        "--audit",
        "--scheduled",
        "--force-heavy",
        "--actor",
        "--reason",
        "--override-tokens",
        "--workers",
        "--sample-interval",
        "--quiet",
        "--pushgateway",
        "--cache",
        "--key-git",
        "--key-input",
        "--key-env",
        "--key-version",
        "--outputs",
        "Exit status",
    ] {
        assert!(stdout.contains(option), "`{option}` missing from run --help:\n{stdout}");
    }
    let out = cost_meter(&["--help"], &dir);
    let (stdout, _) = text(&out);
    for command in ["validate", "report", "rules", "estimate", "run", "cache", "completions"] {
        assert!(stdout.contains(command), "`{command}` missing from --help:\n{stdout}");
    }
    let out = cost_meter(&["--version"], &dir);
    assert_eq!(text(&out).0.trim(), format!("cost-meter {}", env!("CARGO_PKG_VERSION")));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2_on_stderr_with_suggestions() {
    let dir = temp("usage");
    let cases: [(&[&str], &str); 10] = [
        (&["valdate"], "a similar subcommand exists: 'validate'"),
        (&["report", "--recrods", "x"], "a similar argument exists: '--records'"),
        // options the command does not take
        (&["validate", "--month", "2026-13", "--team", "nobody"], "unexpected argument '--month'"),
        (&["report", "--month", "2026-13"], "`2026-13` is not a month"),
        (&["estimate", "--team", "x", "--tier", "huge", "--service", "y"], "unknown tier `huge`"),
        (&["run", "--team", "x", "--service", "y"], "COMMAND"),
        (&["run", "--labels", "team=x,colour=blue", "--", "true"], "`colour` is not a label"),
        (&["run", "--team", "x", "--service", "y", "--key-git", "--", "true"], "--cache"),
        (&["run", "--team", "x", "--service", "y", "--cache", "c", "--", "true"], "--cache needs --outputs"),
        (&["run", "--team", "x", "--service", "y", "--sample-interval", "0s", "--", "true"], "below 1ms"),
    ];
    for (args, says) in cases {
        let out = cost_meter(args, &dir);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed on stdout: {stdout}");
        assert!(stderr.contains(says), "{args:?}: `{says}` not in {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_cover_the_commands_and_options() {
    let dir = temp("completions");
    for shell in ["bash", "zsh", "fish"] {
        let out = cost_meter(&["completions", shell], &dir);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{shell}: {stderr}");
        for word in ["cost-meter", "validate", "estimate", "key-input", "max-size"] {
            assert!(stdout.contains(word), "{shell}: `{word}` not in the script");
        }
    }
    let out = cost_meter(&["completions", "tcsh"], &dir);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
