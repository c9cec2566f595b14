//! SVG charts of one GameDay scenario, written as text (no dependencies).
//!
//! [`svg`] draws three stacked panels over a shared time axis: throughput, error rate (user-visible and
//! injected) and p95 latency, with the fault window shaded in each. Rates are fractions (0.25 = 25%).
//! Non-finite values are skipped (the line breaks there), values outside a panel are clamped to its edge,
//! and an empty series still yields a valid, labelled chart.

// Until main.rs renders charts, nothing outside the tests calls this module.

use std::fmt::Write as _;

/// One time bucket of a scenario run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t_s: f64,
    pub throughput_rps: f64,
    pub user_error_rate: f64,
    pub injected_rate: f64,
    pub p95_ms: f64,
}

/// The series of one scenario and where its fault window lies (seconds from the scenario's start).
#[derive(Debug, Clone)]
pub struct Series {
    pub scenario: String,
    pub points: Vec<Point>,
    pub fault_start_s: f64,
    pub fault_end_s: f64,
}

/// Size of the chart, in pixels.
pub const WIDTH: f64 = 900.0;
pub const HEIGHT: f64 = 520.0;
/// The plot area: all panels share these left and right edges.
const LEFT: f64 = 64.0;
const RIGHT: f64 = WIDTH - 16.0;
const TOP: f64 = 58.0;
const BOTTOM: f64 = 474.0;
const GAP: f64 = 26.0;
/// Longer scenario names are cut (with an ellipsis) in the drawn title; `<title>` keeps the full name.
const TITLE_MAX_CHARS: usize = 80;

const THROUGHPUT: &str = "#1f77b4";
const USER_ERRORS: &str = "#d62728";
const INJECTED: &str = "#ff7f0e";
const P95: &str = "#9467bd";
const FAULT_FILL: &str = "#fbbf24";
const GRID: &str = "#e5e7eb";
const INK: &str = "#374151";

/// Escapes text for XML and HTML (content and quoted attributes) and drops the control characters XML
/// forbids.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A linear map from data onto pixels; the result is clamped to the pixel range and always finite.
#[derive(Debug, Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    fn map(&self, v: f64) -> f64 {
        let f = (v - self.d0) / (self.d1 - self.d0);
        let f = if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
        self.r0 + f * (self.r1 - self.r0)
    }
}

/// A "nice" tick step (1, 2 or 5 × 10^k) giving about `target` steps over `span`.
fn nice_step(span: f64, target: f64) -> Option<f64> {
    let raw = span / target;
    if !(raw.is_finite() && raw > 0.0) {
        return None;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let step = mag
        * if norm <= 1.0 {
            1.0
        } else if norm <= 2.0 {
            2.0
        } else if norm <= 5.0 {
            5.0
        } else {
            10.0
        };
    (step.is_finite() && step > 0.0).then_some(step)
}

/// Tick values within [d0, d1] and their step.
fn ticks(d0: f64, d1: f64, target: f64) -> (Vec<f64>, f64) {
    let Some(step) = nice_step(d1 - d0, target) else { return (Vec::new(), 1.0) };
    let first = (d0 / step).ceil() * step;
    let ticks = (0..=(target as usize) * 3)
        .map(|i| first + i as f64 * step)
        .take_while(|v| v.is_finite() && *v <= d1 + step * 1e-9)
        .collect();
    (ticks, step)
}

/// The top of a panel's axis: the largest finite positive value rounded up to a nice number, or 1.
fn axis_max(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.filter(|v| v.is_finite() && *v > 0.0).fold(0.0, f64::max);
    if max <= 0.0 {
        return 1.0;
    }
    match nice_step(max, 4.0) {
        Some(step) if ((max / step).ceil() * step).is_finite() => (max / step).ceil() * step,
        _ => max,
    }
}

/// A tick label: as many decimals as the step needs; exponent form for very large or small values.
fn fmt_tick(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    if v.abs() >= 1e6 || v.abs() < 1e-3 {
        return format!("{v:.1e}");
    }
    let decimals = if step >= 1.0 { 0 } else { ((-step.log10()).ceil() as usize).min(6) };
    format!("{v:.decimals$}")
}

/// Seconds as a short label (used in the header).
fn fmt_s(v: f64) -> String {
    if v.abs() >= 1e6 { format!("{v:.1e} s") } else { format!("{v:.1} s") }
}

/// Splits a line into drawable runs, breaking wherever the time or the value is not finite.
fn runs(points: &[Point], x: Scale, y: Scale, value: impl Fn(&Point) -> f64) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for p in points {
        let v = value(p);
        if p.t_s.is_finite() && v.is_finite() {
            runs.last_mut().expect("never empty").push((x.map(p.t_s), y.map(v)));
        } else if !runs.last().expect("never empty").is_empty() {
            runs.push(Vec::new());
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// One line of a panel.
struct Line<'a> {
    color: &'a str,
    dashed: bool,
    value: fn(&Point) -> f64,
}

/// One panel: its vertical extent, axis and lines.
struct Panel<'a> {
    label: &'a str,
    top: f64,
    bottom: f64,
    max: f64,
    percent: bool,
    lines: &'a [Line<'a>],
}

fn draw_panel(out: &mut String, series: &Series, x: Scale, x_ticks: &[f64], panel: &Panel<'_>, has_data: bool) {
    let Panel { label, top, bottom, max, percent, lines } = *panel;
    let y = Scale { d0: 0.0, d1: max, r0: bottom, r1: top };
    let _ = writeln!(out, r#"<g class="panel">"#);
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#ffffff"/>"##,
        RIGHT - LEFT,
        bottom - top
    );
    let (fs, fe) = (series.fault_start_s, series.fault_end_s);
    if fs.is_finite() && fe.is_finite() && fe > fs {
        let (x0, x1) = (x.map(fs), x.map(fe));
        let _ = writeln!(
            out,
            r#"<rect class="fault" x="{x0:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{FAULT_FILL}" fill-opacity="0.25"/>"#,
            x1 - x0,
            bottom - top
        );
    }
    for &t in x_ticks {
        let px = x.map(t);
        let _ = writeln!(out, r#"<line x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{bottom:.1}" stroke="{GRID}"/>"#);
    }
    let (y_ticks, y_step) = if percent { (vec![0.0, 0.25, 0.5, 0.75, 1.0], 0.25) } else { ticks(0.0, max, 4.0) };
    for v in y_ticks {
        let py = y.map(v);
        let text = if percent { format!("{:.0}%", v * 100.0) } else { fmt_tick(v, y_step) };
        let _ = writeln!(out, r#"<line x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="{GRID}"/>"#);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="{INK}">{}</text>"#,
            LEFT - 5.0,
            py + 3.5,
            escape(&text)
        );
    }
    let mid = (top + bottom) / 2.0;
    let _ = writeln!(
        out,
        r#"<text x="14" y="{mid:.1}" font-size="11" text-anchor="middle" fill="{INK}" transform="rotate(-90 14 {mid:.1})">{}</text>"#,
        escape(label)
    );
    if has_data {
        for line in lines {
            let dash = if line.dashed { r#" stroke-dasharray="5 3""# } else { "" };
            for run in runs(&series.points, x, y, line.value) {
                if let [(px, py)] = run[..] {
                    let _ = writeln!(out, r#"<circle cx="{px:.1}" cy="{py:.1}" r="2.5" fill="{}"/>"#, line.color);
                    continue;
                }
                let pts: Vec<String> = run.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect();
                let _ = writeln!(
                    out,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.6"{dash}/>"#,
                    pts.join(" "),
                    line.color
                );
            }
        }
    } else {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#9ca3af">no data</text>"##,
            (LEFT + RIGHT) / 2.0,
            mid + 4.0
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#9ca3af"/>"##,
        RIGHT - LEFT,
        bottom - top
    );
    let _ = writeln!(out, "</g>");
}

/// The legend, on one row under the title; `window` labels the shaded area.
fn draw_legend(out: &mut String, window: &str) {
    let items: [(&str, Option<(&str, bool)>); 5] = [
        ("throughput", Some((THROUGHPUT, false))),
        ("user-visible errors", Some((USER_ERRORS, false))),
        ("injected faults", Some((INJECTED, true))),
        ("p95 latency", Some((P95, false))),
        (window, None),
    ];
    let (mut x, y) = (LEFT, 42.0);
    let _ = writeln!(out, r#"<g class="legend" font-size="11" fill="{INK}">"#);
    for (label, line) in items {
        match line {
            Some((color, dashed)) => {
                let dash = if dashed { r#" stroke-dasharray="5 3""# } else { "" };
                let _ = writeln!(
                    out,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"{dash}/>"#,
                    y - 4.0,
                    x + 18.0,
                    y - 4.0
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    r#"<rect x="{x:.1}" y="{:.1}" width="18" height="10" fill="{FAULT_FILL}" fill-opacity="0.45"/>"#,
                    y - 9.0
                );
            }
        }
        let _ = writeln!(out, r#"<text x="{:.1}" y="{y:.1}">{}</text>"#, x + 23.0, escape(label));
        x += 23.0 + label.chars().count() as f64 * 6.0 + 20.0;
    }
    let _ = writeln!(out, "</g>");
}

/// An SVG chart (self-contained, 900×520) with three stacked panels sharing the time axis:
/// throughput (rps), error rate (user-visible and injected, two lines, 0–100%), and p95 latency (ms),
/// the fault window shaded in every panel, axis ticks with labels, a title and a legend.
///
/// Points are drawn in the order given (normally by time). The time axis runs from 0 (or the earliest
/// point) to the later of the last point and the fault's end.
pub fn svg(series: &Series) -> String {
    let finite_t = series.points.iter().map(|p| p.t_s).filter(|t| t.is_finite());
    let t_min = finite_t.clone().fold(0.0, f64::min);
    let t_max = finite_t
        .chain([series.fault_start_s, series.fault_end_s].into_iter().filter(|t| t.is_finite()))
        .fold(f64::NEG_INFINITY, f64::max);
    let t_max = if t_max > t_min { t_max } else { t_min + 1.0 };
    let x = Scale { d0: t_min, d1: t_max, r0: LEFT, r1: RIGHT };
    let (x_ticks, x_step) = ticks(t_min, t_max, 10.0);
    let has_data = series.points.iter().any(|p| p.t_s.is_finite());

    let mut out = String::with_capacity(16 * 1024);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&series.scenario));
    let _ = writeln!(out, r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#fafafa"/>"##);

    let name: String = if series.scenario.chars().count() > TITLE_MAX_CHARS {
        series.scenario.chars().take(TITLE_MAX_CHARS - 1).chain(['…']).collect()
    } else {
        series.scenario.clone()
    };
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold" fill="{INK}">{}</text>"#,
        escape(&name)
    );
    let (fs, fe) = (series.fault_start_s, series.fault_end_s);
    let window = if fs.is_finite() && fe.is_finite() && fe > fs {
        format!("fault window ({} – {})", fmt_s(fs), fmt_s(fe))
    } else {
        "no fault window".to_owned()
    };
    draw_legend(&mut out, &window);

    let panel_h = (BOTTOM - TOP - 2.0 * GAP) / 3.0;
    let at = |i: f64| TOP + i * (panel_h + GAP);
    let points = series.points.iter();
    let panels = [
        Panel {
            label: "throughput (rps)",
            top: at(0.0),
            bottom: at(0.0) + panel_h,
            max: axis_max(points.clone().map(|p| p.throughput_rps)),
            percent: false,
            lines: &[Line { color: THROUGHPUT, dashed: false, value: |p| p.throughput_rps }],
        },
        Panel {
            label: "error rate",
            top: at(1.0),
            bottom: at(1.0) + panel_h,
            max: 1.0,
            percent: true,
            lines: &[
                Line { color: INJECTED, dashed: true, value: |p| p.injected_rate },
                Line { color: USER_ERRORS, dashed: false, value: |p| p.user_error_rate },
            ],
        },
        Panel {
            label: "p95 latency (ms)",
            top: at(2.0),
            bottom: at(2.0) + panel_h,
            max: axis_max(points.map(|p| p.p95_ms)),
            percent: false,
            lines: &[Line { color: P95, dashed: false, value: |p| p.p95_ms }],
        },
    ];
    for panel in &panels {
        draw_panel(&mut out, series, x, &x_ticks, panel, has_data);
    }

    for &t in &x_ticks {
        let px = x.map(t);
        let _ =
            writeln!(out, r#"<line x1="{px:.1}" y1="{BOTTOM}" x2="{px:.1}" y2="{}" stroke="{INK}"/>"#, BOTTOM + 4.0);
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{}" font-size="10" text-anchor="middle" fill="{INK}">{}</text>"#,
            BOTTOM + 15.0,
            escape(&fmt_tick(t, x_step))
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle" fill="{INK}">time since scenario start (s)</text>"#,
        (LEFT + RIGHT) / 2.0,
        HEIGHT - 12.0
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Checks that every tag is closed in order (`void` names need no closing tag) and that every `&`
    /// starts an entity. Returns the first problem found.
    pub(crate) fn check_markup(s: &str, void: &[&str]) -> Result<(), String> {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = s;
        while let Some(i) = rest.find('<') {
            let end = rest[i..].find('>').ok_or("unterminated tag")? + i;
            let tag = &rest[i + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') || tag.starts_with('?') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    open => return Err(format!("</{name}> closes {open:?}")),
                }
                continue;
            }
            let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            if name.is_empty() || tag.contains('<') {
                return Err(format!("bad tag <{tag}>"));
            }
            if !tag.ends_with('/') && !void.contains(&name.as_str()) {
                stack.push(name);
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed: {stack:?}"));
        }
        for (i, _) in s.match_indices('&') {
            let entity = &s[i..];
            if !["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].iter().any(|e| entity.starts_with(e)) {
                return Err(format!("raw & at {i}"));
            }
        }
        Ok(())
    }

    fn point(t_s: f64) -> Point {
        Point { t_s, throughput_rps: 400.0 + t_s, user_error_rate: 0.02, injected_rate: 0.25, p95_ms: 12.0 + t_s / 4.0 }
    }

    fn known() -> Series {
        Series {
            scenario: "quote-429".to_owned(),
            points: (0..=10).map(|i| point(i as f64 * 10.0)).collect(),
            fault_start_s: 20.0,
            fault_end_s: 50.0,
        }
    }

    #[test]
    fn svg_is_balanced_markup() {
        let s = svg(&known());
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.trim_end().ends_with("</svg>"));
        check_markup(&s, &[]).unwrap();
        assert_eq!(s.matches("<polyline").count(), 4, "one line per series");
        assert!(s.contains(">throughput (rps)<") && s.contains(">p95 latency (ms)<") && s.contains(">100%<"));
    }

    #[test]
    fn fault_window_is_shaded_at_its_times() {
        // Time runs 0..100 s over x 64..884 (820 px): 20 s is at 64 + 164, and 30 s spans 246 px.
        let s = svg(&known());
        let rect = r#"<rect class="fault" x="228.0" y="#;
        assert_eq!(s.matches(rect).count(), 3, "one shaded window per panel:\n{s}");
        assert_eq!(s.matches(r#"width="246.0""#).count(), 3);
    }

    #[test]
    fn names_are_escaped() {
        let series = Series { scenario: r#"a<b&"c" 'd'>"#.to_owned(), ..known() };
        let s = svg(&series);
        assert!(s.contains("a&lt;b&amp;&quot;c&quot; &#39;d&#39;&gt;"));
        assert!(!s.contains("a<b"));
        check_markup(&s, &[]).unwrap();
    }

    #[test]
    fn long_names_are_cut_in_the_title_only() {
        let name = "x".repeat(500);
        let s = svg(&Series { scenario: name.clone(), ..known() });
        assert!(s.contains(&format!("<title>{name}</title>")));
        assert!(s.contains(&format!(">{}…</text>", "x".repeat(TITLE_MAX_CHARS - 1))));
    }

    #[test]
    fn edge_cases_draw_without_panicking() {
        let empty = Series { scenario: String::new(), points: vec![], fault_start_s: f64::NAN, fault_end_s: 1.0 };
        let s = svg(&empty);
        check_markup(&s, &[]).unwrap();
        assert!(s.contains("no data") && !s.contains("class=\"fault\""));

        let single = Series { points: vec![point(0.0)], fault_start_s: 0.0, fault_end_s: 0.0, ..known() };
        let s = svg(&single);
        check_markup(&s, &[]).unwrap();
        assert_eq!(s.matches("<circle").count(), 4, "a lone point is a dot");

        let zeros = Point { t_s: 5.0, throughput_rps: 0.0, user_error_rate: 0.0, injected_rate: 0.0, p95_ms: 0.0 };
        let s = svg(&Series { points: vec![zeros; 3], ..known() });
        check_markup(&s, &[]).unwrap();
        assert!(!s.contains("NaN") && !s.contains("inf"));

        let mut points = known().points;
        points[3].p95_ms = f64::NAN;
        points[4].throughput_rps = f64::INFINITY;
        points[5].t_s = f64::NEG_INFINITY;
        points[6].user_error_rate = 7.0; // clamped to 100%
        let s = svg(&Series { points, ..known() });
        check_markup(&s, &[]).unwrap();
        assert!(!s.contains("NaN") && !s.contains("inf"));
    }

    #[test]
    fn ticks_are_nice() {
        assert_eq!(ticks(0.0, 100.0, 10.0).0, (0..=10).map(|i| i as f64 * 10.0).collect::<Vec<_>>());
        assert_eq!(axis_max([0.0, 37.0].into_iter()), 40.0);
        assert_eq!(axis_max([f64::NAN, -3.0].into_iter()), 1.0);
        assert_eq!(fmt_tick(0.30000000000000004, 0.1), "0.3");
    }

    /// A realistic run for eyeballing the layout: `cargo test -p examples --example gameday -- --ignored`
    /// writes `sample_chart.svg` to the temp directory.
    pub(crate) fn sample(scenario: &str) -> Series {
        let points = (0..=90)
            .map(|i| {
                let t_s = i as f64;
                let wobble = ((i * 37) % 11) as f64;
                let fault = (20.0..50.0).contains(&t_s);
                let healing = (50.0..56.0).contains(&t_s);
                Point {
                    t_s,
                    throughput_rps: if fault { 430.0 } else { 480.0 } + 3.0 * wobble,
                    user_error_rate: if fault && t_s < 23.0 {
                        0.08
                    } else if fault {
                        0.004
                    } else {
                        0.0
                    },
                    injected_rate: if fault { 0.24 + wobble / 500.0 } else { 0.0 },
                    p95_ms: if fault {
                        95.0
                    } else if healing {
                        60.0
                    } else {
                        21.0
                    } + wobble,
                }
            })
            .collect();
        Series { scenario: scenario.to_owned(), points, fault_start_s: 20.0, fault_end_s: 50.0 }
    }

    #[test]
    #[ignore = "writes a file to look at"]
    fn write_sample_chart() {
        let path = std::env::temp_dir().join("sample_chart.svg");
        std::fs::write(&path, svg(&sample("quote provider answers 429 <25%> & falls back"))).unwrap();
        println!("wrote {}", path.display());
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![proptest::num::f64::ANY, -10.0..1000.0f64, Just(f64::NAN), Just(f64::INFINITY), Just(0.0)]
    }

    fn any_point() -> impl Strategy<Value = Point> {
        (any_f64(), any_f64(), any_f64(), any_f64(), any_f64()).prop_map(|(t_s, r, u, i, p)| Point {
            t_s,
            throughput_rps: r,
            user_error_rate: u,
            injected_rate: i,
            p95_ms: p,
        })
    }

    proptest! {
        #[test]
        fn any_series_gives_valid_svg(
            scenario in ".{0,100}",
            points in proptest::collection::vec(any_point(), 0..40),
            fault_start_s in any_f64(),
            fault_end_s in any_f64(),
        ) {
            let s = svg(&Series { scenario, points: points.clone(), fault_start_s, fault_end_s });
            prop_assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
            prop_assert_eq!(check_markup(&s, &[]), Ok(()));
            let s = svg(&Series { scenario: "s".to_owned(), points, fault_start_s, fault_end_s });
            prop_assert!(!s.contains("NaN") && !s.contains("inf"), "{}", s);
        }
    }
}
