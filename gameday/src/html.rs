//! The GameDay report page, written as text (no dependencies): one self-contained file — inline CSS, each
//! scenario's chart as inline SVG, no scripts, no reference to any other file or to the network.
//!
//! The header says how the run was made (target, seed, time scale, mode); a summary table gives one row
//! per scenario; then each scenario shows its hypothesis beside its result, and its chart. Rates are
//! fractions (0.25 = 25%); a non-finite number shows as "—".

use std::fmt::Write as _;

use crate::charts::escape;

/// The run, as the page shows it.
#[derive(Debug, Clone)]
pub struct Page {
    /// The run's title.
    pub title: String,
    /// When it ran (RFC 3339).
    pub timestamp: String,
    /// What it ran against.
    pub target: String,
    /// The run's seed (`None`: each scenario drew its own, shown in its row).
    pub seed: Option<u64>,
    /// The time scale of its phases, faults and SLAs.
    pub time_scale: f64,
    /// `sequential` or `random`.
    pub mode: String,
    /// The run was interrupted.
    pub interrupted: bool,
    /// How many scenarios were planned.
    pub planned: usize,
    /// The scenarios that ran, in order.
    pub rows: Vec<Row>,
}

/// One scenario: its summary row, its story and its chart.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// What it set out to show.
    pub hypothesis: String,
    /// `PASS`, `FAIL`, `INVALID` or `INTERRUPTED`.
    pub verdict: &'static str,
    /// The verdict is PASS.
    pub passed: bool,
    /// Its samplers' seed.
    pub seed: u64,
    /// The injected share of the dependency's calls.
    pub injected_rate: f64,
    /// The injected rate's band, for a scenario with faults.
    pub band: Option<[f64; 2]>,
    /// The worst critical route's error rate during the fault.
    pub user_error_rate: f64,
    /// Fallback answers during the fault.
    pub fallbacks: u64,
    /// Shed answers during the fault.
    pub shed: u64,
    /// The critical routes' p95 during the fault.
    pub p95_ms: f64,
    /// When a breaker opened, from the fault's start.
    pub breaker_open_s: Option<f64>,
    /// From the fault's end back to the normal path.
    pub recovery_s: Option<f64>,
    /// The recovery SLA, at the run's time scale.
    pub recovery_sla_s: f64,
    /// Every check that failed, in words.
    pub failures: Vec<String>,
    /// The chart's file beside report.html (named in the caption; the page does not load it).
    pub chart_file: String,
    /// The chart, inline (an `<svg>` element).
    pub chart_svg: String,
}

const STYLE: &str = "\
body { font-family: Helvetica, Arial, sans-serif; color: #1f2937; margin: 2em auto; max-width: 1100px; padding: 0 1em; }
h1 { margin-bottom: 0.3em; }
dl.meta { display: flex; flex-wrap: wrap; gap: 4px 28px; margin: 0 0 1.5em; color: #374151; font-size: 14px; }
dl.meta div { display: flex; gap: 6px; }
dl.meta dt { color: #6b7280; }
dl.meta dd { margin: 0; font-weight: bold; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid #e5e7eb; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; font-size: 13px; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.name { white-space: nowrap; }
a { color: #1d4ed8; text-decoration: none; }
.verdict { font-weight: bold; font-size: 12px; padding: 2px 7px; border-radius: 3px; color: #ffffff; white-space: nowrap; }
.pass { background: #1a7f37; }
.fail { background: #cf222e; }
.invalid { background: #b45309; }
.interrupted { background: #6b7280; }
.banner { background: #f3f4f6; border-left: 4px solid #6b7280; padding: 8px 12px; }
section { margin-top: 2.5em; border-top: 2px solid #e5e7eb; padding-top: 0.5em; }
section h2 { font-size: 20px; display: flex; align-items: center; gap: 12px; overflow-x: auto; }
section p.desc { color: #4b5563; margin-top: 0; }
.story { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; margin: 1em 0; }
.story > div { background: #f9fafb; border: 1px solid #e5e7eb; border-radius: 6px; padding: 10px 14px; }
.story h3 { margin: 0 0 6px; font-size: 13px; text-transform: uppercase; letter-spacing: 0.05em; color: #6b7280; }
.story p { margin: 0; line-height: 1.45; }
.story ul { margin: 6px 0 0; padding-left: 1.2em; line-height: 1.45; }
ul.failures { color: #cf222e; }
figure { margin: 0; }
figure svg { width: 100%; height: auto; border: 1px solid #e5e7eb; }
figcaption { color: #6b7280; font-size: 12px; }
@media (max-width: 800px) { .story { grid-template-columns: 1fr; } }
";

/// A percentage with one decimal.
fn pct(v: f64) -> String {
    if v.is_finite() { format!("{:.1}%", v * 100.0) } else { "—".to_owned() }
}

/// A number with a unit (never wrapped apart), or "—" when it is not finite.
fn num(v: f64, decimals: usize, unit: &str) -> String {
    if v.is_finite() { format!("{v:.decimals$}\u{a0}{unit}") } else { "—".to_owned() }
}

/// A verdict badge, coloured by verdict.
fn verdict(verdict: &str) -> String {
    let class = match verdict {
        "PASS" => "pass",
        "INVALID" => "invalid",
        "INTERRUPTED" => "interrupted",
        _ => "fail",
    };
    format!(r#"<span class="verdict {class}">{}</span>"#, escape(verdict))
}

/// The page of a run: its header, summary table, and each scenario's hypothesis, result and chart.
pub fn report(title: &str, run: &crate::runner::Run) -> String {
    let rows = run
        .outcomes
        .iter()
        .zip(&run.charts)
        .map(|(o, series)| {
            let r = &o.report;
            Row {
                scenario: r.scenario.name.clone(),
                description: r.scenario.description.clone(),
                hypothesis: r.hypothesis.clone(),
                verdict: r.validation.verdict.as_str(),
                passed: o.passed(),
                seed: r.seed,
                injected_rate: r.execution.injected_rate.unwrap_or(f64::NAN),
                band: r.scenario.injected_band,
                user_error_rate: r.metrics.during.stats.worst_error_rate,
                fallbacks: r.metrics.during.stats.fallbacks as u64,
                shed: r.metrics.during.stats.shed as u64,
                p95_ms: r.metrics.during.stats.p95_ms,
                breaker_open_s: r.execution.detection.breaker_open_seconds,
                recovery_s: r.validation.recovery_time_seconds,
                recovery_sla_s: r.scenario.sla_recovery_time_seconds,
                failures: r.validation.failures.clone(),
                chart_file: format!("{}.svg", r.scenario.name),
                chart_svg: crate::charts::svg(series),
            }
        })
        .collect();
    let t = &run.summary.test_run;
    page(&Page {
        title: title.to_owned(),
        timestamp: humantime::format_rfc3339_seconds(run.started).to_string(),
        target: run.target.clone(),
        seed: t.seed,
        time_scale: run.time_scale,
        mode: t.mode.to_owned(),
        interrupted: t.interrupted,
        planned: run.planned.len(),
        rows,
    })
}

/// The page, from its data (no run needed: tests build one by hand).
pub fn page(p: &Page) -> String {
    let (title, timestamp) = (escape(&p.title), escape(&p.timestamp));
    let rows = &p.rows;
    let passed = rows.iter().filter(|r| r.passed).count();
    let mut out = String::with_capacity(8192 + rows.iter().map(|r| r.chart_svg.len() + 4096).sum::<usize>());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} — {timestamp}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    let seed = p.seed.map_or("each scenario's own (below)".to_owned(), |s| s.to_string());
    let time_scale = if p.time_scale.is_finite() { format!("× {}", p.time_scale) } else { "—".to_owned() };
    let result = format!("{passed} of {} passed", rows.len());
    let _ = writeln!(out, "<dl class=\"meta\">");
    for (term, value) in [
        ("Run at", timestamp.clone()),
        ("Target", escape(&p.target)),
        ("Seed", escape(&seed)),
        ("Time scale", escape(&time_scale)),
        ("Mode", escape(&p.mode)),
        ("Result", escape(&result)),
    ] {
        let _ = writeln!(out, "<div><dt>{term}</dt><dd>{value}</dd></div>");
    }
    out.push_str("</dl>\n");
    if p.interrupted {
        let _ = writeln!(
            out,
            "<p class=\"banner\">{} The run was interrupted: {} of {} planned scenarios ran.</p>",
            verdict("INTERRUPTED"),
            rows.len(),
            p.planned
        );
    }
    if rows.is_empty() {
        out.push_str("<p>No scenarios were run.</p>\n</body>\n</html>\n");
        return out;
    }
    out.push_str(
        "<div class=\"scroll\">\n<table>\n<thead><tr><th>Scenario</th><th>Verdict</th>\
         <th class=\"num\">Injected<br>(share of dependency calls; planned band)</th>\
         <th class=\"num\">User errors<br>(worst route)</th><th class=\"num\">Fallbacks<br>/ shed</th>\
         <th class=\"num\">p95</th><th class=\"num\">Breaker open<br>after</th><th class=\"num\">Recovery<br>(SLA)</th>\
         </tr></thead>\n<tbody>\n",
    );
    for (i, row) in rows.iter().enumerate() {
        let band = row.band.map_or(String::new(), |[lo, hi]| format!("<br>({} – {})", pct(lo), pct(hi)));
        let breaker = row.breaker_open_s.map_or("—".to_owned(), |s| num(s, 2, "s"));
        let recovery = match row.recovery_s {
            Some(s) => num(s, 1, "s"),
            None => "not recovered".to_owned(),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"name\"><a href=\"#scenario-{i}\">{}</a></td><td>{}</td><td class=\"num\">{}{band}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}<br>({})</td></tr>",
            escape(&row.scenario),
            verdict(row.verdict),
            pct(row.injected_rate),
            pct(row.user_error_rate),
            row.fallbacks,
            row.shed,
            num(row.p95_ms, 1, "ms"),
            escape(&breaker),
            escape(&recovery),
            num(row.recovery_sla_s, 1, "s"),
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n");
    for (i, row) in rows.iter().enumerate() {
        section(&mut out, i, row);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// One scenario: its name and verdict, its hypothesis beside its result, its chart.
fn section(out: &mut String, i: usize, row: &Row) {
    let name = escape(&row.scenario);
    let _ = writeln!(
        out,
        "<section id=\"scenario-{i}\">\n<h2><span class=\"name\">{name}</span> {}</h2>",
        verdict(row.verdict)
    );
    if !row.description.is_empty() {
        let _ = writeln!(out, "<p class=\"desc\">{}</p>", escape(&row.description));
    }
    let band = row.band.map_or(String::new(), |[lo, hi]| format!(" (planned {} – {})", pct(lo), pct(hi)));
    let breaker = row.breaker_open_s.map_or("no breaker opened".to_owned(), |s| {
        format!("a breaker opened {} after the fault's start", num(s, 2, "s"))
    });
    let recovery = match row.recovery_s {
        Some(s) => format!(
            "back on the normal path {} after the fault's end (SLA {})",
            num(s, 1, "s"),
            num(row.recovery_sla_s, 1, "s")
        ),
        None => format!("not back on the normal path within the after phase (SLA {})", num(row.recovery_sla_s, 1, "s")),
    };
    let observed = [
        format!("injected {} of dependency calls{band}", pct(row.injected_rate)),
        format!(
            "users' errors {} on the worst critical route; p95 {}",
            pct(row.user_error_rate),
            num(row.p95_ms, 1, "ms")
        ),
        format!("{} fallback answers, {} shed", row.fallbacks, row.shed),
        breaker,
        recovery,
        format!("seed {}", row.seed),
    ];
    let _ = writeln!(
        out,
        "<div class=\"story\">\n<div class=\"hypothesis\"><h3>Hypothesis</h3><p>{}</p></div>\n\
         <div class=\"result\"><h3>Result {}</h3><ul>{}</ul>",
        escape(&row.hypothesis),
        verdict(row.verdict),
        observed.iter().map(|o| format!("<li>{}</li>", escape(o))).collect::<String>()
    );
    if !row.failures.is_empty() {
        let items: String = row.failures.iter().map(|f| format!("<li>{}</li>", escape(f))).collect();
        let _ = writeln!(out, "<ul class=\"failures\">{items}</ul>");
    }
    out.push_str("</div>\n</div>\n");
    let _ = writeln!(
        out,
        "<figure>\n{}<figcaption>The chart is also saved beside this page as {}.</figcaption>\n</figure>\n</section>",
        row.chart_svg,
        escape(&row.chart_file)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::tests::{check_markup, sample};

    const VOID: &[&str] = &["meta", "br"];

    fn row(scenario: &str, verdict: &'static str) -> Row {
        let passed = verdict == "PASS";
        Row {
            scenario: scenario.to_owned(),
            description: "the quote provider answers 429 to a quarter of calls".to_owned(),
            hypothesis: "While `provider` suffers 429s (20-30% of calls), users of the critical routes see at most \
                         1.0% errors thanks to the fallback, and the service is back on its normal path within \
                         3.0 s of the fault's end."
                .to_owned(),
            verdict,
            passed,
            seed: 7,
            injected_rate: 0.249,
            band: Some([0.2, 0.3]),
            user_error_rate: 0.012,
            fallbacks: 1234,
            shed: 56,
            p95_ms: 48.25,
            breaker_open_s: Some(1.5),
            recovery_s: if passed { Some(2.0) } else { None },
            recovery_sla_s: 5.0,
            failures: if passed { vec![] } else { vec!["p95 48 ms > 40 ms & <rising>".to_owned()] },
            chart_file: format!("{scenario}.svg"),
            chart_svg: crate::charts::svg(&sample(scenario)),
        }
    }

    fn sample_page(rows: Vec<Row>) -> Page {
        Page {
            title: "GameDay <prod>".to_owned(),
            timestamp: "2024-05-01T10:00:00Z".to_owned(),
            target: "the demo service on 127.0.0.1:3000".to_owned(),
            seed: Some(7),
            time_scale: 0.05,
            mode: "sequential".to_owned(),
            interrupted: false,
            planned: rows.len(),
            rows,
        }
    }

    /// The problems of a page that would load anything: every `src=`/`href=` must be a fragment (`#…`),
    /// and `http` appears only in the SVG namespace.
    fn external_references(html: &str) -> Vec<String> {
        let lower = html.to_ascii_lowercase();
        let mut found = Vec::new();
        for attr in ["src=", "href=", "url(", "@import"] {
            for (i, _) in lower.match_indices(attr) {
                let value = lower[i + attr.len()..].trim_start_matches(['"', '\'', ' ']);
                if !(attr.ends_with('=') && value.starts_with('#')) {
                    found.push(html[i..(i + 60).min(html.len())].to_owned());
                }
            }
        }
        for (i, _) in lower.match_indices("http") {
            if !lower[..i].ends_with("xmlns=\"") {
                found.push(html[i..(i + 60).min(html.len())].to_owned());
            }
        }
        found
    }

    #[test]
    fn report_lists_every_row_and_chart() {
        let rows = vec![row("quote-429", "PASS"), row(r#"a<b&"c""#, "FAIL"), row("slow db", "INVALID")];
        let html = page(&sample_page(rows));
        check_markup(&html, VOID).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<h1>GameDay &lt;prod&gt;</h1>") && html.contains("2024-05-01T10:00:00Z"));
        assert!(html.contains("<dd>1 of 3 passed</dd>"));
        assert!(html.contains("<dt>Seed</dt><dd>7</dd>") && html.contains("<dt>Time scale</dt><dd>× 0.05</dd>"));
        assert!(html.contains("<dd>the demo service on 127.0.0.1:3000</dd>"));
        assert_eq!(html.matches("<tr><td").count(), 3);
        assert!(html.contains(">quote-429</a>") && html.contains(">slow db</a>"));
        assert!(html.contains(">a&lt;b&amp;&quot;c&quot;</a>") && !html.contains("a<b"));
        // The charts are inline, and named in their captions (the files are written beside the page).
        assert_eq!(html.matches("<svg ").count(), 3);
        assert!(!html.contains("<img"));
        assert!(html.contains("saved beside this page as quote-429.svg"));
        assert_eq!(external_references(&html), Vec::<String>::new());
        // The badge in the table, the heading and the result of each row.
        assert_eq!(html.matches("verdict pass").count(), 3);
        assert_eq!(html.matches("verdict fail").count(), 3);
        assert_eq!(html.matches("verdict invalid").count(), 3);
        assert_eq!(html.matches("<h3>Hypothesis</h3>").count(), 3);
        assert!(html.contains("<li>p95 48 ms &gt; 40 ms &amp; &lt;rising&gt;</li>"));
        assert!(html.contains("24.9%<br>(20.0% – 30.0%)") && html.contains("not recovered"));
        assert!(html.contains("injected 24.9% of dependency calls (planned 20.0% – 30.0%)"));
        // Names are never broken mid-word.
        assert!(html.contains(".name { white-space: nowrap; }") && !html.contains("overflow-wrap: anywhere"));
        assert!(html.contains(r#"<td class="name">"#) && html.contains(r#"<span class="name">quote-429</span>"#));
    }

    #[test]
    fn every_verdict_has_its_colour() {
        for (v, class) in [("PASS", "pass"), ("FAIL", "fail"), ("INVALID", "invalid"), ("INTERRUPTED", "interrupted")] {
            assert!(verdict(v).contains(&format!("verdict {class}")));
            assert!(STYLE.contains(&format!(".{class} {{ background:")), "{class} has a colour");
        }
        let mut p = sample_page(vec![row("a", "INTERRUPTED")]);
        p.interrupted = true;
        p.planned = 3;
        p.seed = None;
        let html = page(&p);
        check_markup(&html, VOID).unwrap();
        assert!(html.contains("1 of 3 planned scenarios ran") && html.contains("each scenario&#39;s own"));
    }

    #[test]
    fn odd_input_still_renders() {
        let html = page(&sample_page(vec![]));
        check_markup(&html, VOID).unwrap();
        assert!(html.contains("No scenarios were run."));

        let mut odd = row(&"y".repeat(1000), "FAIL");
        odd.injected_rate = f64::NAN;
        odd.p95_ms = f64::INFINITY;
        odd.breaker_open_s = None;
        odd.chart_file = "100%#?.svg".to_owned();
        let mut p = sample_page(vec![odd]);
        p.time_scale = f64::NAN;
        let html = page(&p);
        check_markup(&html, VOID).unwrap();
        assert!(!html.contains("NaN") && !html.contains("inf"));
        assert_eq!(external_references(&html), Vec::<String>::new());
    }

    /// A page with every verdict, names long and short, and realistic charts.
    fn showcase() -> Page {
        sample_page(vec![
            row("exchange_downtime", "PASS"),
            row("cpu_saturation_under_the_order_burst_with_a_long_name", "FAIL"),
            row("memory_pressure", "INVALID"),
            row("quote provider <429> & co", "INTERRUPTED"),
        ])
    }

    /// The browser to render with: `BROWNOUT_CHROMIUM`, or `chromium` (Debian's package), `chromium-browser`
    /// or `google-chrome` on the `PATH`. `None` when `BROWNOUT_SKIP_BROWSER=1`. Without one: a panic that says
    /// how to install one when `BROWNOUT_REQUIRE_BROWSER=1` (`.ci/run` sets it, after installing Chromium),
    /// else `None` with a notice, so `cargo test --workspace` on a machine without a browser still passes.
    fn browser() -> Option<std::path::PathBuf> {
        if std::env::var("BROWNOUT_SKIP_BROWSER").is_ok_and(|v| v == "1") {
            eprintln!("BROWNOUT_SKIP_BROWSER=1: report.html is not rendered in a browser");
            return None;
        }
        if let Some(path) = std::env::var_os("BROWNOUT_CHROMIUM") {
            return Some(path.into());
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            if let Some(found) = std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file()) {
                return Some(found);
            }
        }
        let advice = "install it (`apt-get install -y chromium` on Debian) or point BROWNOUT_CHROMIUM at one";
        if std::env::var("BROWNOUT_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("no Chromium to render report.html with: {advice}");
        }
        eprintln!("no Chromium found: report.html is not rendered in a browser ({advice}; .ci/run does)");
        None
    }

    /// The width and height in a PNG's header, if `bytes` is a PNG.
    fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
        let ihdr = bytes.strip_prefix(b"\x89PNG\r\n\x1a\n")?.get(4..16)?;
        (&ihdr[..4] == b"IHDR").then(|| {
            let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            (be(&ihdr[4..8]), be(&ihdr[8..12]))
        })
    }

    /// Renders a report.html in headless Chromium and checks the screenshot. `BROWNOUT_KEEP_SCREENSHOT=FILE`
    /// copies the screenshot there, to look at.
    #[test]
    fn renders_in_a_real_browser() {
        let Some(chromium) = browser() else { return };
        let dir = tempfile::tempdir().unwrap();
        let html = page(&showcase());
        check_markup(&html, VOID).unwrap();
        assert_eq!(external_references(&html), Vec::<String>::new(), "report.html loads nothing else");
        let file = dir.path().join("report.html");
        std::fs::write(&file, &html).unwrap();
        let png = dir.path().join("report.png");
        let mut child = std::process::Command::new(&chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1200,2400")
            .arg(format!("file://{}", file.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", chromium.display()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not finish the screenshot within 120 s", chromium.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
        }
        assert!(status.success(), "{} failed ({status}): {stderr}", chromium.display());
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot ({e}); chromium said: {stderr}"));
        if let Some(keep) = std::env::var_os("BROWNOUT_KEEP_SCREENSHOT") {
            std::fs::write(&keep, &bytes).unwrap();
            std::fs::write(std::path::Path::new(&keep).with_extension("html"), &html).unwrap();
        }
        assert_eq!(png_size(&bytes), Some((1200, 2400)), "a PNG of the window's size");
        // A blank page compresses to a few kilobytes; tables, text and charts do not.
        assert!(bytes.len() > 60_000, "the screenshot is nearly empty: {} bytes", bytes.len());
    }

    #[test]
    fn png_headers_are_read() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend([0, 0, 4, 176, 0, 0, 9, 96]);
        assert_eq!(png_size(&png), Some((1200, 2400)));
        assert_eq!(png_size(b"GIF89a"), None);
    }

    #[test]
    #[ignore = "writes a file to look at"]
    fn write_sample_report() {
        let path = std::env::temp_dir().join("gameday_sample_report.html");
        std::fs::write(&path, page(&showcase())).unwrap();
        println!("wrote {}", path.display());
    }
}
