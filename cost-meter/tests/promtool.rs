//! The generated Prometheus rules against the real `promtool` (Debian's `prometheus` package). Ignored in plain
//! `cargo test`; `.ci/run` installs promtool and runs them with `--ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

use brownout_cost::budget::{Budget, BudgetSet, promtool_test_yaml, rules_yaml};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cost-meter-promtool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shipped budgets, plus one that budgets memory only and selects a label value that needs escaping.
fn budgets() -> BudgetSet {
    let shipped = BudgetSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/budgets")).unwrap();
    let memory = Budget::parse(
        "name: memory-only\nowner: o\nmonthly_memory_gb_hours: 50\nmatch: { strategy: 'odd \"name\"', tier: heavy }\n\
         alert_thresholds: { warn: 0.75, critical: 0.95 }\n",
        None,
    )
    .unwrap();
    BudgetSet::new(shipped.iter().cloned().chain([memory]).collect()).unwrap()
}

fn promtool(args: &[&str], cwd: &Path) -> String {
    let out = Command::new("promtool").args(args).current_dir(cwd).output().expect("promtool is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
#[ignore = "needs promtool (Debian package prometheus); run by .ci/run"]
fn promtool_accepts_the_generated_rules() {
    let dir = temp("check");
    let yaml = rules_yaml(&budgets());
    std::fs::write(dir.join("rules.yaml"), &yaml).unwrap();
    let text = promtool(&["check", "rules", "rules.yaml"], &dir);
    // Every rule generated is one promtool found (the count follows the shipped budgets).
    let generated = yaml.matches("- record:").count() + yaml.matches("- alert:").count();
    assert!(generated >= 13 * 4, "at least 13 rules per budget: {generated}");
    assert!(text.contains(&format!("SUCCESS: {generated} rules found")), "{generated} rules generated:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs promtool (Debian package prometheus); run by .ci/run"]
fn warn_and_critical_fire_at_70_and_90_percent_under_promtool_test() {
    let dir = temp("test");
    let budgets = budgets();
    std::fs::write(dir.join("rules.yaml"), rules_yaml(&budgets)).unwrap();
    for budget in budgets.iter() {
        let file = format!("{}.test.yaml", budget.name);
        std::fs::write(dir.join(&file), promtool_test_yaml(budget, "rules.yaml")).unwrap();
        let text = promtool(&["test", "rules", &file], &dir);
        assert!(text.contains("SUCCESS"), "{text}");
    }
    // The test is not vacuous: expecting the critical alert while only warn fires fails.
    let research = budgets.get("research-cluster").unwrap();
    let wrong = promtool_test_yaml(research, "rules.yaml").replacen(
        "exp_alerts: []",
        "exp_alerts: [{ exp_labels: { severity: \"critical\", budget: \"research-cluster\" } }]",
        4,
    );
    std::fs::write(dir.join("wrong.yaml"), wrong).unwrap();
    let out = Command::new("promtool").args(["test", "rules", "wrong.yaml"]).current_dir(&dir).output().unwrap();
    assert!(!out.status.success(), "a wrong expectation must fail");
    let _ = std::fs::remove_dir_all(&dir);
}
