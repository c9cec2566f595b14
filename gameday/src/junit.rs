//! The run as JUnit XML (`--junit FILE`): one test suite, one test case per planned scenario, for CI systems
//! that read test reports. A failed scenario is a `<failure>`, an invalid one (its fault fell short) an
//! `<error>`, one the run did not reach (interrupted) `<skipped>`.

use std::fmt::Write as _;

use crate::charts::escape;
use crate::report::Verdict;
use crate::runner::Run;

/// The JUnit XML of `run`.
pub fn xml(run: &Run) -> String {
    let test_run = &run.summary.test_run;
    let planned = test_run.total_scenarios;
    let ran = run.outcomes.len();
    let count = |v: Verdict| run.outcomes.iter().filter(|o| o.verdict() == v).count();
    let failures = count(Verdict::Fail);
    let errors = count(Verdict::Invalid);
    let skipped = count(Verdict::Interrupted) + planned.saturating_sub(ran);
    let time = test_run.duration_seconds;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"gameday\" tests=\"{planned}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"gameday\" tests=\"{planned}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\" timestamp=\"{}\">",
        escape(&test_run.timestamp)
    );
    let _ = writeln!(
        out,
        "    <properties><property name=\"target\" value=\"{}\"/><property name=\"time_scale\" value=\"{}\"/><property name=\"seed\" value=\"{}\"/></properties>",
        escape(&test_run.target),
        test_run.time_scale,
        test_run.seed.map_or("random".to_owned(), |s| s.to_string())
    );
    for o in &run.outcomes {
        let r = &o.report;
        let seconds = o.end.saturating_sub(o.start).as_secs_f64();
        let _ = write!(
            out,
            "    <testcase classname=\"gameday\" name=\"{}\" time=\"{seconds:.3}\"",
            escape(&r.scenario.name)
        );
        let message = escape(&r.validation.failures.join("; "));
        let body = escape(&r.validation.failures.join("\n"));
        match r.validation.verdict {
            Verdict::Pass => out.push_str("/>\n"),
            Verdict::Fail => {
                let _ = write!(
                    out,
                    ">\n      <failure message=\"{message}\" type=\"FAIL\">{body}</failure>\n    </testcase>\n"
                );
            }
            Verdict::Invalid => {
                let _ = write!(
                    out,
                    ">\n      <error message=\"{message}\" type=\"INVALID\">{body}</error>\n    </testcase>\n"
                );
            }
            Verdict::Interrupted => {
                let _ = write!(out, ">\n      <skipped message=\"interrupted\"/>\n    </testcase>\n");
            }
        }
    }
    let ran_names: Vec<&str> = run.outcomes.iter().map(|o| o.report.scenario.name.as_str()).collect();
    for name in run.planned.iter().filter(|n| !ran_names.contains(&n.as_str())) {
        let _ = writeln!(
            out,
            "    <testcase classname=\"gameday\" name=\"{}\" time=\"0\">\n      <skipped message=\"not run: the run was interrupted\"/>\n    </testcase>",
            escape(name)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
