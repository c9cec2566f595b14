//! The GameDay report page, written as text (no dependencies): a summary table and each scenario's chart.
//!
//! The page is self-contained (inline CSS, no scripts); the charts are SVG files beside it, referenced by
//! relative `<img src>`. Rates are fractions (0.25 = 25%); a non-finite number shows as "—".

use std::fmt::Write as _;

use crate::charts::escape;

/// One row of the summary table.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub passed: bool,
    pub injected_rate: f64,
    /// The injected rate's band, for a scenario with faults.
    pub band: Option<[f64; 2]>,
    /// `PASS`, `FAIL` or `INVALID`.
    pub verdict: &'static str,
    pub user_error_rate: f64,
    pub fallbacks: u64,
    pub p95_ms: f64,
    pub breaker_open_s: Option<f64>,
    pub recovery_s: Option<f64>,
    pub recovery_sla_s: f64,
    pub failures: Vec<String>,
    pub chart_file: String,
}

const STYLE: &str = "\
body { font-family: Helvetica, Arial, sans-serif; color: #1f2937; margin: 2em auto; max-width: 960px; padding: 0 1em; }
h1 { margin-bottom: 0.2em; }
.meta { color: #6b7280; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { word-break: break-word; }
.verdict { font-weight: bold; padding: 1px 6px; border-radius: 3px; color: #ffffff; }
.pass { background: #1a7f37; }
.fail { background: #cf222e; }
ul.failures { margin: 0; padding-left: 1.2em; color: #cf222e; }
section { margin-top: 2em; }
section h2 { font-size: 18px; word-break: break-word; }
img { max-width: 100%; height: auto; border: 1px solid #e5e7eb; }
";

/// A percentage with one decimal.
fn pct(v: f64) -> String {
    if v.is_finite() { format!("{:.1}%", v * 100.0) } else { "—".to_owned() }
}

/// A number with a unit, or "—" when it is not finite.
fn num(v: f64, decimals: usize, unit: &str) -> String {
    if v.is_finite() { format!("{v:.decimals$} {unit}") } else { "—".to_owned() }
}

/// Makes a file name safe as a relative URL: `%`, `#`, `?`, whitespace and controls are percent-encoded
/// (the rest is left as is, then HTML-escaped by the caller).
fn url_path(file: &str) -> String {
    let mut out = String::with_capacity(file.len());
    for c in file.chars() {
        if matches!(c, '%' | '#' | '?') || c.is_whitespace() || c.is_control() {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn verdict(verdict: &str) -> String {
    let class = if verdict == "PASS" { "pass" } else { "fail" };
    format!(r#"<span class="verdict {class}">{verdict}</span>"#)
}

/// A self-contained report.html: a title with the run's timestamp, the summary table (PASS/FAIL colored,
/// failures listed), and each scenario's chart embedded with `<img src="{chart_file}">` (the SVGs sit
/// beside report.html).
pub fn report(title: &str, run: &crate::runner::Run) -> String {
    let rows: Vec<Row> = run
        .outcomes
        .iter()
        .map(|o| {
            let r = &o.report;
            Row {
                scenario: r.scenario.name.clone(),
                passed: o.passed(),
                injected_rate: r.execution.injected_rate.unwrap_or(f64::NAN),
                band: r.scenario.injected_band,
                verdict: r.validation.verdict.as_str(),
                user_error_rate: r.metrics.during.stats.worst_error_rate,
                fallbacks: r.metrics.during.stats.fallbacks as u64,
                p95_ms: r.metrics.during.stats.p95_ms,
                breaker_open_s: r.execution.detection.breaker_open_seconds,
                recovery_s: r.validation.recovery_time_seconds,
                recovery_sla_s: r.scenario.sla_recovery_time_seconds,
                failures: r.validation.failures.clone(),
                chart_file: format!("{}.svg", r.scenario.name),
            }
        })
        .collect();
    page(title, &humantime::format_rfc3339_seconds(run.started).to_string(), &rows)
}

fn page(title: &str, timestamp: &str, rows: &[Row]) -> String {
    let (title, timestamp) = (escape(title), escape(timestamp));
    let passed = rows.iter().filter(|r| r.passed).count();
    let mut out = String::with_capacity(4096 + rows.len() * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} — {timestamp}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <h1>{title}</h1>\n<p class=\"meta\">Run at {timestamp} · {passed} of {} scenarios passed</p>\n",
        rows.len()
    );
    if rows.is_empty() {
        out.push_str("<p>No scenarios were run.</p>\n</body>\n</html>\n");
        return out;
    }
    out.push_str(
        "<table>\n<thead><tr><th>Scenario</th><th>Verdict</th><th>Injected</th><th>Band</th><th>User errors</th>\
         <th>Fallbacks</th><th>p95</th><th>Breaker open</th><th>Recovery</th><th>Failures</th></tr></thead>\n<tbody>\n",
    );
    for (i, row) in rows.iter().enumerate() {
        let band = row.band.map_or("—".to_owned(), |[lo, hi]| format!("{} – {}", pct(lo), pct(hi)));
        let breaker = row.breaker_open_s.map_or("—".to_owned(), |s| num(s, 2, "s"));
        let recovery = match row.recovery_s {
            Some(s) => num(s, 1, "s"),
            None => "not recovered".to_owned(),
        };
        let failures = if row.failures.is_empty() {
            "—".to_owned()
        } else {
            let items: String = row.failures.iter().map(|f| format!("<li>{}</li>", escape(f))).collect();
            format!("<ul class=\"failures\">{items}</ul>")
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"name\"><a href=\"#chart-{i}\">{}</a></td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{band}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{} (SLA {})</td><td>{failures}</td></tr>",
            escape(&row.scenario),
            verdict(row.verdict),
            pct(row.injected_rate),
            pct(row.user_error_rate),
            row.fallbacks,
            num(row.p95_ms, 1, "ms"),
            breaker,
            recovery,
            num(row.recovery_sla_s, 1, "s"),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    for (i, row) in rows.iter().enumerate() {
        let name = escape(&row.scenario);
        let _ = writeln!(
            out,
            "<section id=\"chart-{i}\">\n<h2>{name} {}</h2>\n\
             <img src=\"{}\" alt=\"Throughput, error rate and p95 latency of {name}\" width=\"900\" height=\"520\">\n\
             </section>",
            verdict(row.verdict),
            escape(&url_path(&row.chart_file)),
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::tests::check_markup;

    const VOID: &[&str] = &["meta", "img", "br"];

    fn row(scenario: &str, passed: bool, chart_file: &str) -> Row {
        Row {
            scenario: scenario.to_owned(),
            passed,
            injected_rate: 0.249,
            band: Some([0.2, 0.3]),
            verdict: if passed { "PASS" } else { "FAIL" },
            user_error_rate: 0.012,
            fallbacks: 1234,
            p95_ms: 48.25,
            breaker_open_s: Some(1.5),
            recovery_s: if passed { Some(2.0) } else { None },
            recovery_sla_s: 5.0,
            failures: if passed { vec![] } else { vec!["p95 48 ms > 40 ms & <rising>".to_owned()] },
            chart_file: chart_file.to_owned(),
        }
    }

    #[test]
    fn report_lists_every_row_and_chart() {
        let rows = [
            row("quote-429", true, "quote-429.svg"),
            row(r#"a<b&"c""#, false, "a_b_c.svg"),
            row("slow db", true, "slow db.svg"),
        ];
        let html = page("GameDay <prod>", "2024-05-01T10:00:00Z", &rows);
        check_markup(&html, VOID).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<h1>GameDay &lt;prod&gt;</h1>") && html.contains("2024-05-01T10:00:00Z"));
        assert!(html.contains("2 of 3 scenarios passed"));
        assert_eq!(html.matches("<tr><td").count(), 3);
        assert!(html.contains(">quote-429</a>") && html.contains(">slow db</a>"));
        assert!(html.contains(">a&lt;b&amp;&quot;c&quot;</a>") && !html.contains("a<b"));
        assert!(html.contains(r#"<img src="quote-429.svg""#));
        assert!(html.contains(r#"<img src="a_b_c.svg""#));
        assert!(html.contains(r#"<img src="slow%20db.svg""#));
        assert_eq!(html.matches("verdict pass").count(), 4, "table and heading of each passing row");
        assert_eq!(html.matches("verdict fail").count(), 2);
        assert!(html.contains("<li>p95 48 ms &gt; 40 ms &amp; &lt;rising&gt;</li>"));
        assert!(html.contains("24.9%") && html.contains("20.0% – 30.0%") && html.contains("not recovered"));
    }

    #[test]
    #[ignore = "writes files to look at"]
    fn write_sample_report() {
        let dir = std::env::temp_dir().join("gameday_sample");
        std::fs::create_dir_all(&dir).unwrap();
        let rows = [row("quote-429", true, "quote-429.svg"), row("slow <db> & co", false, "slow-db.svg")];
        for row in &rows {
            let chart = crate::charts::svg(&crate::charts::tests::sample(&row.scenario));
            std::fs::write(dir.join(&row.chart_file), chart).unwrap();
        }
        std::fs::write(dir.join("report.html"), page("GameDay", "2024-05-01T10:00:00Z", &rows)).unwrap();
        println!("wrote {}", dir.join("report.html").display());
    }

    #[test]
    fn odd_input_still_renders() {
        let html = page("", "", &[]);
        check_markup(&html, VOID).unwrap();
        assert!(html.contains("No scenarios were run."));

        let mut odd = row(&"y".repeat(1000), false, "100%#?.svg");
        odd.injected_rate = f64::NAN;
        odd.p95_ms = f64::INFINITY;
        odd.breaker_open_s = None;
        let html = page("t", "now", &[odd]);
        check_markup(&html, VOID).unwrap();
        assert!(html.contains(r#"src="100%25%23%3F.svg""#));
        assert!(!html.contains("NaN") && !html.contains("inf"));
    }
}
