//! The post-drill report (`drill_report.md`), after the drills playbook's template: summary, environment,
//! then per scenario its blast radius, hypothesis against what was observed, the timeline of events, the
//! degradations seen, recovery; and the action items for the team to fill in.

use std::fmt::Write as _;

use crate::events::EventLog;
use crate::plan::Plan;
use crate::report::Verdict;
use crate::runner::Run;

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn opt_s(x: Option<f64>) -> String {
    x.map_or("—".to_owned(), |s| format!("{s:.2} s"))
}

/// The report's Markdown.
pub fn report(title: &str, plan: &Plan, run: &Run, events: &EventLog) -> String {
    let t = &run.summary.test_run;
    let r = &run.summary.results;
    let mut out = String::new();
    let _ = writeln!(out, "# {title}: post-drill report\n");
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "- **Date/Time**: {} (UTC)", humantime::format_rfc3339_seconds(run.started));
    let _ = writeln!(
        out,
        "- **Scenarios**: {} of {} passed ({} planned){}",
        r.passed_scenarios,
        run.outcomes.len(),
        t.total_scenarios,
        if t.interrupted { ", **interrupted**" } else { "" }
    );
    let _ = writeln!(out, "- **Average time to recover**: {}", opt_s(r.average_recovery_time_seconds));
    for o in &run.outcomes {
        let v = &o.report.validation;
        let _ = writeln!(
            out,
            "  - `{}`: **{}**{}",
            o.report.scenario.name,
            v.verdict.as_str(),
            if v.failures.is_empty() { String::new() } else { format!(" — {}", v.failures.join("; ")) }
        );
    }
    let _ = writeln!(out, "\n## Environment\n");
    let _ = writeln!(out, "- **Target**: {}", t.target);
    let _ = writeln!(out, "- **Mode**: {}{}", t.mode, if t.parallel { ", parallel" } else { "" });
    let _ = writeln!(
        out,
        "- **Time scale**: {} (phases, fault durations and recovery SLAs multiplied by it)",
        t.time_scale
    );
    let _ = writeln!(
        out,
        "- **Seed**: {}",
        t.seed.map_or("drawn per scenario (in each report)".to_owned(), |s| s.to_string())
    );
    let routes: Vec<String> = plan
        .load
        .routes
        .iter()
        .map(|r| format!("{} `{} {}`{}", r.name, r.method, r.path, if r.critical { " (critical)" } else { "" }))
        .collect();
    let _ = writeln!(
        out,
        "- **Load**: {} requests/s, at most {} in flight: {}",
        plan.load.rps,
        plan.load.workers,
        routes.join(", ")
    );
    let _ = writeln!(
        out,
        "- **SLO**: critical error rate ≤ {}, p95 ≤ {} ms; abort above {} errors or p95 {} ms",
        pct(plan.slo.user_error_rate),
        plan.slo.p95.as_millis(),
        pct(plan.slo.abort.error_rate),
        plan.slo.abort.p95.as_millis()
    );
    for o in &run.outcomes {
        let rep = &o.report;
        let s = &rep.scenario;
        let e = &rep.execution;
        let m = &rep.metrics;
        let _ = writeln!(out, "\n## Scenario `{}`: {}\n", s.name, rep.validation.verdict.as_str());
        let _ = writeln!(out, "- **When**: {} → {}", e.start_time, e.end_time);
        let _ = writeln!(
            out,
            "- **Duration of the fault**: {:.1} s (planned {:.0} s before scaling)",
            s.duration_seconds, s.planned_duration_seconds
        );
        let radius = plan
            .scenarios
            .iter()
            .find(|p| p.name == s.name)
            .map(|p| {
                let rules: Vec<String> = p.chaos.rules.iter().map(|r| format!("`{}`", r.name)).collect();
                format!(
                    "fault switch `{}`, rules {}, blast radius {}",
                    s.target,
                    rules.join(", "),
                    p.chaos
                        .blast_radius
                        .map_or("100% of matching calls".to_owned(), |b| format!("{} of matching calls", pct(b)))
                )
            })
            .unwrap_or_default();
        let _ = writeln!(out, "- **Blast radius**: {radius}");
        let _ = writeln!(out, "\n### Hypothesis\n\n{}\n", rep.hypothesis);
        let _ = writeln!(out, "### Observed\n");
        let _ = writeln!(out, "| | before | during | after |\n|---|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| requests | {} | {} | {} |",
            m.requests_before_chaos, m.requests_during_chaos, m.requests_after_chaos
        );
        let _ = writeln!(
            out,
            "| critical error rate (worst route) | {} | {} | {} |",
            pct(m.before.stats.worst_error_rate),
            pct(m.during.stats.worst_error_rate),
            pct(m.after.stats.worst_error_rate)
        );
        let _ = writeln!(
            out,
            "| critical p95 | {:.1} ms | {:.1} ms | {:.1} ms |",
            m.before.stats.p95_ms, m.during.stats.p95_ms, m.after.stats.p95_ms
        );
        let _ = writeln!(
            out,
            "| fallback answers | {} | {} | {} |",
            m.before.stats.fallbacks, m.during.stats.fallbacks, m.after.stats.fallbacks
        );
        let _ = writeln!(out, "| shed | {} | {} | {} |", m.before.stats.shed, m.during.stats.shed, m.after.stats.shed);
        let injected = match (e.injected_rate, e.dependency_calls) {
            (Some(rate), Some(calls)) => {
                format!("{} faults in {calls} dependency calls ({})", e.injected_faults, pct(rate))
            }
            _ => format!("{} faults", e.injected_faults),
        };
        let _ = writeln!(
            out,
            "\n- **Injected**: {injected}{}",
            s.injected_band.map_or(String::new(), |[lo, hi]| format!(", planned band {}–{}", pct(lo), pct(hi)))
        );
        let _ = writeln!(
            out,
            "- **Fault ended**: {}",
            match e.fault_end {
                crate::report::FaultEnd::Planned => "as planned".to_owned(),
                crate::report::FaultEnd::Abort =>
                    format!("aborted by the SLO guard after {}", opt_s(e.aborted_after_seconds)),
                crate::report::FaultEnd::Interrupted => "interrupted".to_owned(),
            }
        );
        let _ = writeln!(out, "\n### Timeline\n");
        let timeline = events.of(&s.name);
        if timeline.is_empty() {
            let _ = writeln!(out, "No events recorded.");
        }
        for ev in timeline {
            let _ = writeln!(
                out,
                "- {} `{}` {}: {}",
                ev.timestamp,
                serde_json::to_value(ev.event_type)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                ev.component_id,
                ev.error_message
            );
        }
        let _ = writeln!(out, "\n### Degradations seen\n");
        let d = &e.detection;
        if let Some(at) = d.pressure_in_place_seconds {
            let _ =
                writeln!(out, "- the pressure in place {at:.2} s after the fault's start (flags are timed from here)");
        }
        if d.breaker_open_seconds.is_none() && d.flags_on_seconds.is_empty() && d.first_fallback_seconds.is_none() {
            let _ = writeln!(out, "None.");
        }
        if let Some(at) = d.first_fallback_seconds {
            let _ = writeln!(out, "- first fallback answer {at:.2} s after the fault's start");
        }
        if let Some(at) = d.breaker_open_seconds {
            let _ = writeln!(
                out,
                "- a breaker opened {at:.2} s after the fault's start; closed {} after its end",
                opt_s(d.after_fault_end.breaker_closed_seconds)
            );
        }
        for (flag, on) in &d.flags_on_seconds {
            let off = d.after_fault_end.flags_off_seconds.get(flag).copied().flatten();
            let _ = writeln!(out, "- `{flag}` on {on:.2} s after the fault's start, off {} after its end", opt_s(off));
        }
        let _ = writeln!(out, "\n### Recovery\n");
        let v = &rep.validation;
        let _ = writeln!(
            out,
            "- **Time to recover**: {} (SLA {:.2} s): {}",
            opt_s(v.recovery_time_seconds),
            s.sla_recovery_time_seconds,
            if v.sla_met { "met" } else { "**missed**" }
        );
        if !v.failures.is_empty() {
            let _ = writeln!(out, "\n### What failed\n");
            for f in &v.failures {
                let _ = writeln!(out, "1. {f}");
            }
        }
    }
    let _ = writeln!(out, "\n## Action items\n");
    let _ = writeln!(out, "| Priority | Action item | Owner | Due date |\n|---|---|---|---|");
    let mut any = false;
    for o in run.outcomes.iter().filter(|o| o.verdict() != Verdict::Pass) {
        for f in &o.report.validation.failures {
            any = true;
            let _ = writeln!(out, "| P? | `{}`: {} | | |", o.report.scenario.name, f.replace('|', "\\|"));
        }
    }
    if !any {
        let _ = writeln!(out, "| | | | |");
    }
    out
}
