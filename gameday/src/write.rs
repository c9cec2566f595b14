//! Writes a run's files: each scenario's JSON report and chart, the summary, `report.html`, the post-drill
//! report and the run's chaos events.

use std::path::Path;

use crate::html;
use crate::plan::Plan;
use crate::runner::{Options, Run};

/// Writes `text` to `path`; the error names the file.
pub(crate) fn file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn json(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

/// Every file of the run, into `dir`.
pub(crate) fn all(dir: &Path, plan: &Plan, run: &Run, options: &Options) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (o, series) in run.outcomes.iter().zip(&run.charts) {
        let name = &o.report.scenario.name;
        file(&dir.join(format!("{name}_report.json")), &json(&o.report)?)?;
        file(&dir.join(format!("{name}.svg")), &crate::charts::svg(series))?;
    }
    file(&dir.join("chaos_summary.json"), &json(&run.summary)?)?;
    file(&dir.join("report.html"), &html::report(&options.title, run))?;
    file(&dir.join("drill_report.md"), &crate::markdown::report(&options.title, plan, run, &options.events))?;
    let mut lines = String::new();
    for event in options.events.events() {
        lines.push_str(&serde_json::to_string(&event).map_err(|e| e.to_string())?);
        lines.push('\n');
    }
    file(&dir.join("chaos_events.jsonl"), &lines)?;
    Ok(())
}
