//! SVG charts of one GameDay scenario, written as text (no dependencies).
//!
//! [`svg`] tells a scenario's story over one time axis: the run's chaos events as numbered markers, a
//! breaker lane and one lane per degrade flag (red or amber while not closed or on), then five panels —
//! throughput; the errors the users saw, with the SLO and the abort threshold drawn; the degraded answers
//! (fallback and shed shares); the injected share of the dependency's calls, on its own axis, with its
//! planned band; p95 latency with its SLO. The fault window is shaded throughout, each event is a dotted
//! vertical line, and a key under the time axis names the events.
//!
//! Rates are fractions (0.25 = 25%). Non-finite values are skipped (a line breaks there), values outside a
//! panel are clamped to its edge, and an empty series still yields a valid, labelled chart.

use std::fmt::Write as _;

/// One time window of a scenario run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Point {
    /// The window's end, in seconds from the scenario's start.
    pub t_s: f64,
    /// Requests started per second.
    pub throughput_rps: f64,
    /// Critical requests that failed the user, as a share of critical requests.
    pub user_error_rate: f64,
    /// Fallback answers, as a share of critical requests.
    pub fallback_rate: f64,
    /// Shed answers, as a share of non-critical requests.
    pub shed_rate: f64,
    /// Injected faults, as a share of the dependency's calls (NaN: no call reached the fault layer).
    pub injected_rate: f64,
    /// The critical requests' p95 latency, in milliseconds.
    pub p95_ms: f64,
}

/// An interval, in seconds from the scenario's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Its start.
    pub start_s: f64,
    /// Its end.
    pub end_s: f64,
}

/// A degrade flag and when it was on.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagLane {
    /// The flag's name.
    pub flag: String,
    /// When it was on.
    pub on: Vec<Span>,
}

/// A chaos event on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// When, in seconds from the scenario's start.
    pub t_s: f64,
    /// What happened, in a few words (`armed · provider`).
    pub label: String,
}

/// The plan's limits, drawn as horizontal lines; a non-finite limit is not drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// The SLO's largest share of failed critical requests.
    pub user_error_rate: f64,
    /// The SLO guard aborts the fault above this error rate.
    pub abort_error_rate: f64,
    /// The SLO's p95, in milliseconds.
    pub p95_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { user_error_rate: f64::NAN, abort_error_rate: f64::NAN, p95_ms: f64::NAN }
    }
}

/// The series of one scenario, its fault window, its lanes and its events (seconds from its start).
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// The scenario's name.
    pub scenario: String,
    /// One point per window, in time order.
    pub points: Vec<Point>,
    /// The fault's start.
    pub fault_start_s: f64,
    /// The fault's end.
    pub fault_end_s: f64,
    /// When a breaker was not closed; `None`: the service's state was not sampled.
    pub breaker_open: Option<Vec<Span>>,
    /// Each degrade flag that was on at some point, and when.
    pub flags: Vec<FlagLane>,
    /// The scenario's chaos events.
    pub events: Vec<Marker>,
    /// The SLO and abort lines.
    pub thresholds: Thresholds,
    /// The band the injected share was planned in (fractions), shaded on its panel.
    pub injected_band: Option<[f64; 2]>,
}

/// The intervals during which `on` held, from samples `(t_s, on)` in time order: each starts at the first
/// sample on and ends at the next sample off, or at the last sample. Samples with a non-finite time are
/// skipped.
pub fn spans(samples: impl IntoIterator<Item = (f64, bool)>) -> Vec<Span> {
    let mut out = Vec::new();
    let mut open: Option<f64> = None;
    let mut last = f64::NAN;
    for (t, on) in samples.into_iter().filter(|(t, _)| t.is_finite()) {
        match (open, on) {
            (None, true) => open = Some(t),
            (Some(start_s), false) => {
                out.push(Span { start_s, end_s: t });
                open = None;
            }
            _ => {}
        }
        last = t;
    }
    if let Some(start_s) = open {
        out.push(Span { start_s, end_s: last });
    }
    out
}

/// The chart's width, in pixels (its height depends on its lanes and events: see [`svg`]).
pub const WIDTH: f64 = 900.0;
/// The plot area: every lane and panel shares these left and right edges.
const LEFT: f64 = 140.0;
const RIGHT: f64 = WIDTH - 16.0;
/// The lanes' top.
const LANES_TOP: f64 = 56.0;
/// One level of event markers (markers closer than a marker's width stack up to [`EVENT_LEVELS`]).
const EVENT_LEVEL_H: f64 = 14.0;
const EVENT_LEVELS: usize = 3;
const LANE_H: f64 = 14.0;
const LANE_GAP: f64 = 4.0;
/// Flags beyond this many share the last lane's label ("+N more" lanes are not drawn).
const MAX_FLAG_LANES: usize = 8;
const PANEL_H: f64 = 84.0;
/// Between panels: room for each panel's title and legend.
const GAP: f64 = 32.0;
/// Events listed in the key under the time axis (the rest are counted).
const MAX_KEYED_EVENTS: usize = 24;
const KEY_ROW_H: f64 = 16.0;
/// Longer scenario names are cut (with an ellipsis) in the drawn title; `<title>` keeps the full name.
const TITLE_MAX_CHARS: usize = 80;
/// Lane labels longer than this are cut (with an ellipsis); their `<title>` keeps the full name.
const LANE_LABEL_MAX_CHARS: usize = 20;

const THROUGHPUT: &str = "#1f77b4";
const USER_ERRORS: &str = "#d62728";
const INJECTED: &str = "#ff7f0e";
const FALLBACK: &str = "#2ca02c";
const SHED: &str = "#8c564b";
const P95: &str = "#9467bd";
const SLO: &str = "#b91c1c";
const ABORT: &str = "#111827";
const FAULT_FILL: &str = "#fbbf24";
const BREAKER_OPEN: &str = "#dc2626";
const BREAKER_CLOSED: &str = "#dcfce7";
const FLAG_ON: &str = "#d97706";
const LANE_IDLE: &str = "#f3f4f6";
const EVENT: &str = "#4b5563";
const GRID: &str = "#e5e7eb";
const INK: &str = "#374151";
const MUTED: &str = "#9ca3af";

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

/// A percentage tick label: as many decimals as the step needs.
fn fmt_pct(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0%".to_owned();
    }
    let step = step * 100.0;
    let decimals =
        if step >= 1.0 || !step.is_finite() || step <= 0.0 { 0 } else { ((-step.log10()).ceil() as usize).min(3) };
    format!("{:.decimals$}%", v * 100.0)
}

/// A limit as a percentage, for its label.
fn fmt_limit(v: f64) -> String {
    if v * 100.0 >= 1.0 { format!("{:.1}%", v * 100.0) } else { format!("{:.2}%", v * 100.0) }
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

/// `text` cut to `max` characters, with an ellipsis.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() > max { text.chars().take(max - 1).chain(['…']).collect() } else { text.to_owned() }
}

/// What a legend item shows.
#[derive(Clone, Copy)]
enum Swatch<'a> {
    /// A line of this colour, dashed with this pattern.
    Line(&'a str, Option<&'a str>),
    /// A filled box of this colour and opacity.
    Fill(&'a str, f64),
    /// An event marker.
    Marker,
}

/// Draws legend items in a row from `x` at baseline `y`; returns where the row ends.
fn legend(out: &mut String, mut x: f64, y: f64, items: &[(Swatch<'_>, &str)]) -> f64 {
    for &(swatch, label) in items {
        match swatch {
            Swatch::Line(color, dash) => {
                let dash = dash.map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
                let _ = writeln!(
                    out,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"{dash}/>"#,
                    y - 4.0,
                    x + 18.0,
                    y - 4.0
                );
            }
            Swatch::Fill(color, opacity) => {
                let _ = writeln!(
                    out,
                    r#"<rect x="{x:.1}" y="{:.1}" width="18" height="10" fill="{color}" fill-opacity="{opacity}"/>"#,
                    y - 9.0
                );
            }
            Swatch::Marker => {
                let _ = writeln!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="6" fill="{EVENT}"/>"#, x + 9.0, y - 4.0);
                let _ = writeln!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" font-size="8" font-weight="bold" text-anchor="middle" fill="#ffffff">1</text>"##,
                    x + 9.0,
                    y - 1.2
                );
            }
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{y:.1}" font-size="11" fill="{INK}">{}</text>"#,
            x + 23.0,
            escape(label)
        );
        x += 23.0 + label.chars().count() as f64 * 6.0 + 16.0;
    }
    x
}

/// The time axis and what every lane and panel draws behind its data: the fault window, the time grid
/// and the events' lines.
struct Frame {
    x: Scale,
    x_ticks: Vec<f64>,
    x_step: f64,
    /// The fault window, in pixels.
    fault: Option<(f64, f64)>,
    /// Each event's x, in time order.
    events: Vec<f64>,
}

impl Frame {
    fn background(&self, out: &mut String, top: f64, bottom: f64, grid: bool) {
        if let Some((x0, x1)) = self.fault {
            let _ = writeln!(
                out,
                r#"<rect class="fault" x="{x0:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{FAULT_FILL}" fill-opacity="0.25"/>"#,
                x1 - x0,
                bottom - top
            );
        }
        if grid {
            for &t in &self.x_ticks {
                let px = self.x.map(t);
                let _ = writeln!(
                    out,
                    r#"<line x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{bottom:.1}" stroke="{GRID}"/>"#
                );
            }
        }
    }

    fn event_lines(&self, out: &mut String, top: f64, bottom: f64) {
        for &px in &self.events {
            let _ = writeln!(
                out,
                r#"<line class="event" x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{bottom:.1}" stroke="{EVENT}" stroke-width="1" stroke-dasharray="2 2" stroke-opacity="0.7"/>"#
            );
        }
    }
}

/// One lane: a row that is coloured where `spans` held. `spans` `None`: not sampled.
fn draw_lane(
    out: &mut String,
    frame: &Frame,
    top: f64,
    label: &str,
    spans: Option<&[Span]>,
    (on, idle): (&str, &str),
    note: Option<&str>,
) {
    let bottom = top + LANE_H;
    let _ = writeln!(out, r#"<g class="lane">"#);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="{INK}"><title>{}</title>{}</text>"#,
        LEFT - 6.0,
        bottom - 3.5,
        escape(label),
        escape(&cut(label, LANE_LABEL_MAX_CHARS))
    );
    let idle = if spans.is_some() { idle } else { LANE_IDLE };
    let _ =
        writeln!(out, r#"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{LANE_H}" fill="{idle}"/>"#, RIGHT - LEFT);
    frame.background(out, top, bottom, false);
    for s in spans.unwrap_or_default() {
        if !(s.start_s.is_finite() && s.end_s.is_finite()) {
            continue;
        }
        let (x0, x1) = (frame.x.map(s.start_s.min(s.end_s)), frame.x.map(s.start_s.max(s.end_s)));
        let _ = writeln!(
            out,
            r#"<rect class="on" x="{x0:.1}" y="{top:.1}" width="{:.1}" height="{LANE_H}" fill="{on}"><title>{} – {}</title></rect>"#,
            (x1 - x0).max(1.5),
            escape(&fmt_s(s.start_s)),
            escape(&fmt_s(s.end_s))
        );
    }
    let note = if spans.is_none() { Some("not sampled") } else { note };
    if let Some(note) = note {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" fill="{MUTED}">{}</text>"#,
            LEFT + 6.0,
            bottom - 3.5,
            escape(note)
        );
    }
    frame.event_lines(out, top, bottom);
    let _ = writeln!(out, "</g>");
}

/// One line of a panel.
struct Line<'a> {
    label: &'a str,
    color: &'a str,
    value: fn(&Point) -> f64,
}

/// A horizontal limit in a panel.
struct Rule<'a> {
    label: String,
    color: &'a str,
    dash: &'a str,
    value: f64,
}

/// One panel: its title, axis, lines, limits and shaded band.
struct Panel<'a> {
    title: &'a str,
    top: f64,
    max: f64,
    percent: bool,
    lines: Vec<Line<'a>>,
    rules: Vec<Rule<'a>>,
    /// A shaded band of values, with its legend label.
    band: Option<([f64; 2], &'a str)>,
}

impl Panel<'_> {
    fn draw(&self, out: &mut String, series: &Series, frame: &Frame) {
        let (top, bottom) = (self.top, self.top + PANEL_H);
        let y = Scale { d0: 0.0, d1: self.max, r0: bottom, r1: top };
        let _ = writeln!(out, r#"<g class="panel">"#);
        // The title, then the legend of what the panel draws.
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{:.1}" font-size="12" font-weight="bold" fill="{INK}">{}</text>"#,
            top - 9.0,
            escape(self.title)
        );
        let mut items: Vec<(Swatch<'_>, &str)> =
            self.lines.iter().map(|l| (Swatch::Line(l.color, None), l.label)).collect();
        // A limit off the axis (a rate above 100%) is neither drawn nor listed.
        let rules: Vec<&Rule<'_>> = self
            .rules
            .iter()
            .filter(|r| r.value.is_finite() && r.value >= 0.0 && r.value <= self.max * (1.0 + 1e-9))
            .collect();
        items.extend(rules.iter().map(|r| (Swatch::Line(r.color, Some(r.dash)), r.label.as_str())));
        if let Some((_, label)) = self.band {
            items.push((Swatch::Fill(INJECTED, 0.2), label));
        }
        let title_w = self.title.chars().count() as f64 * 7.0;
        legend(out, LEFT + title_w + 18.0, top - 9.0, &items);

        let _ = writeln!(
            out,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{PANEL_H}" fill="#ffffff"/>"##,
            RIGHT - LEFT
        );
        frame.background(out, top, bottom, true);
        if let Some(([lo, hi], _)) = self.band.filter(|([lo, hi], _)| lo.is_finite() && hi.is_finite()) {
            let (y0, y1) = (y.map(lo.max(hi)), y.map(lo.min(hi)));
            let _ = writeln!(
                out,
                r#"<rect class="band" x="{LEFT}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="{INJECTED}" fill-opacity="0.15"/>"#,
                RIGHT - LEFT,
                (y1 - y0).max(1.0)
            );
        }
        let (y_ticks, y_step) = ticks(0.0, self.max, 4.0);
        for v in y_ticks {
            let py = y.map(v);
            let text = if self.percent { fmt_pct(v, y_step) } else { fmt_tick(v, y_step) };
            let _ = writeln!(out, r#"<line x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="{GRID}"/>"#);
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="{INK}">{}</text>"#,
                LEFT - 5.0,
                py + 3.5,
                escape(&text)
            );
        }
        frame.event_lines(out, top, bottom);
        for rule in &rules {
            let py = y.map(rule.value);
            let _ = writeln!(
                out,
                r#"<line class="rule" x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="{}" stroke-width="1.3" stroke-dasharray="{}"/>"#,
                rule.color, rule.dash
            );
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="{}" stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text>"##,
                RIGHT - 4.0,
                (py - 3.0).max(top + 9.0),
                rule.color,
                escape(&rule.label)
            );
        }
        let has_data =
            series.points.iter().any(|p| p.t_s.is_finite() && self.lines.iter().any(|l| (l.value)(p).is_finite()));
        if has_data {
            for line in &self.lines {
                for run in runs(&series.points, frame.x, y, line.value) {
                    if let [(px, py)] = run[..] {
                        let _ = writeln!(
                            out,
                            r#"<circle class="dot" cx="{px:.1}" cy="{py:.1}" r="2.5" fill="{}"/>"#,
                            line.color
                        );
                        continue;
                    }
                    let pts: Vec<String> = run.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect();
                    let _ = writeln!(
                        out,
                        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.6"/>"#,
                        pts.join(" "),
                        line.color
                    );
                }
            }
        } else {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="{MUTED}">no data</text>"#,
                (LEFT + RIGHT) / 2.0,
                (top + bottom) / 2.0 + 4.0
            );
        }
        let _ = writeln!(
            out,
            r#"<rect x="{LEFT}" y="{top:.1}" width="{:.1}" height="{PANEL_H}" fill="none" stroke="{MUTED}"/>"#,
            RIGHT - LEFT
        );
        let _ = writeln!(out, "</g>");
    }
}

/// Stacks event markers: each goes on the first level where it does not overlap the previous marker.
fn marker_levels(xs: &[f64]) -> Vec<usize> {
    let mut last = [f64::NEG_INFINITY; EVENT_LEVELS];
    xs.iter()
        .map(|&x| {
            let level = (0..EVENT_LEVELS)
                .find(|&l| x - last[l] >= 15.0)
                .unwrap_or_else(|| (0..EVENT_LEVELS).min_by(|&a, &b| last[a].total_cmp(&last[b])).unwrap_or(0));
            last[level] = x;
            level
        })
        .collect()
}

/// An SVG chart (self-contained, [`WIDTH`] wide; its height grows with its flag lanes and events) of one
/// scenario: a title and legend, the event markers, the breaker and flag lanes, five panels sharing the
/// time axis, the time axis, and the events' key.
///
/// Points are drawn in the order given (normally by time). The time axis runs from 0 (or the earliest
/// point or event) to the latest of the points, the events and the fault's end.
pub fn svg(series: &Series) -> String {
    let mut events: Vec<&Marker> = series.events.iter().filter(|e| e.t_s.is_finite()).collect();
    events.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let finite_t = series.points.iter().map(|p| p.t_s).chain(events.iter().map(|e| e.t_s)).filter(|t| t.is_finite());
    let t_min = finite_t.clone().fold(0.0, f64::min);
    let t_max = finite_t
        .chain([series.fault_start_s, series.fault_end_s].into_iter().filter(|t| t.is_finite()))
        .fold(f64::NEG_INFINITY, f64::max);
    let t_max = if t_max > t_min && (t_max - t_min).is_finite() { t_max } else { t_min + 1.0 };
    let x = Scale { d0: t_min, d1: t_max, r0: LEFT, r1: RIGHT };
    let (x_ticks, x_step) = ticks(t_min, t_max, 10.0);
    let (fs, fe) = (series.fault_start_s, series.fault_end_s);
    let fault_known = fs.is_finite() && fe.is_finite() && fe > fs;
    let frame = Frame {
        x,
        x_ticks,
        x_step,
        fault: fault_known.then(|| (x.map(fs), x.map(fe))),
        events: events.iter().map(|e| x.map(e.t_s)).collect(),
    };

    // The layout, top to bottom.
    let mut y = LANES_TOP;
    let events_top = y;
    if !events.is_empty() {
        y += EVENT_LEVEL_H * EVENT_LEVELS as f64 + 4.0;
    }
    let breaker_top = y;
    y += LANE_H + LANE_GAP;
    let flag_lanes = series.flags.len().clamp(1, MAX_FLAG_LANES);
    let flags_top = y;
    y += flag_lanes as f64 * (LANE_H + LANE_GAP);
    let panels_top = y - LANE_GAP + GAP + 4.0;
    let panel_top = |i: usize| panels_top + i as f64 * (PANEL_H + GAP);
    let plot_bottom = panel_top(4) + PANEL_H;
    let keyed = events.len().min(MAX_KEYED_EVENTS);
    let key_rows = keyed.div_ceil(2) + usize::from(events.len() > MAX_KEYED_EVENTS);
    let key_top = plot_bottom + 56.0;
    let height = if events.is_empty() { plot_bottom + 44.0 } else { key_top + key_rows as f64 * KEY_ROW_H };

    let mut out = String::with_capacity(24 * 1024);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="Helvetica, Arial, sans-serif">"#
    );
    let _ = writeln!(out, "<title>{}</title>", escape(&series.scenario));
    let _ = writeln!(out, r##"<rect width="{WIDTH}" height="{height:.0}" fill="#fafafa"/>"##);
    let _ = writeln!(
        out,
        r#"<text x="16" y="22" font-size="15" font-weight="bold" fill="{INK}">{}</text>"#,
        escape(&cut(&series.scenario, TITLE_MAX_CHARS))
    );
    let window = if fault_known {
        format!("fault window ({} – {})", fmt_s(fs), fmt_s(fe))
    } else {
        "no fault window".to_owned()
    };
    let _ = writeln!(out, r#"<g class="legend">"#);
    legend(
        &mut out,
        16.0,
        42.0,
        &[
            (Swatch::Fill(FAULT_FILL, 0.45), &window),
            (Swatch::Fill(BREAKER_OPEN, 1.0), "breaker not closed"),
            (Swatch::Fill(FLAG_ON, 1.0), "degrade flag on"),
            (Swatch::Marker, "chaos event (key below)"),
        ],
    );
    let _ = writeln!(out, "</g>");

    // Events: numbered markers, stacked where they crowd.
    if !events.is_empty() {
        let _ = writeln!(out, r#"<g class="events">"#);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="{INK}">events</text>"#,
            LEFT - 6.0,
            events_top + EVENT_LEVEL_H - 3.0
        );
        let row_bottom = events_top + EVENT_LEVEL_H * EVENT_LEVELS as f64 + 4.0;
        for (i, (e, level)) in events.iter().zip(marker_levels(&frame.events)).enumerate() {
            let px = frame.events[i];
            let cy = events_top + 7.0 + level as f64 * EVENT_LEVEL_H;
            let _ = writeln!(
                out,
                r#"<line class="event" x1="{px:.1}" y1="{cy:.1}" x2="{px:.1}" y2="{row_bottom:.1}" stroke="{EVENT}" stroke-width="1" stroke-dasharray="2 2" stroke-opacity="0.7"/>"#
            );
            let _ = writeln!(
                out,
                r#"<circle class="marker" cx="{px:.1}" cy="{cy:.1}" r="6.5" fill="{EVENT}"><title>{} {}</title></circle>"#,
                escape(&fmt_s(e.t_s)),
                escape(&e.label)
            );
            let _ = writeln!(
                out,
                r##"<text x="{px:.1}" y="{:.1}" font-size="8" font-weight="bold" text-anchor="middle" fill="#ffffff">{}</text>"##,
                cy + 2.8,
                i + 1
            );
        }
        let _ = writeln!(out, "</g>");
    }

    // Lanes: the breaker, then each flag.
    let sampled = series.breaker_open.is_some();
    draw_lane(
        &mut out,
        &frame,
        breaker_top,
        "breaker",
        series.breaker_open.as_deref(),
        (BREAKER_OPEN, BREAKER_CLOSED),
        None,
    );
    if series.flags.is_empty() {
        let spans = sampled.then_some(&[][..]);
        draw_lane(&mut out, &frame, flags_top, "degrade flags", spans, (FLAG_ON, LANE_IDLE), Some("none turned on"));
    }
    for (i, lane) in series.flags.iter().take(MAX_FLAG_LANES).enumerate() {
        let label = if i + 1 == MAX_FLAG_LANES && series.flags.len() > MAX_FLAG_LANES {
            format!("{} (+{} more)", lane.flag, series.flags.len() - MAX_FLAG_LANES)
        } else {
            lane.flag.clone()
        };
        let top = flags_top + i as f64 * (LANE_H + LANE_GAP);
        draw_lane(&mut out, &frame, top, &label, Some(&lane.on), (FLAG_ON, LANE_IDLE), None);
    }

    // The panels.
    let points = &series.points;
    let th = series.thresholds;
    let band = series.injected_band.filter(|[lo, hi]| lo.is_finite() && hi.is_finite());
    let pct_max = |values: Vec<f64>| axis_max(values.into_iter()).min(1.0);
    let panels = [
        Panel {
            title: "throughput (rps)",
            top: panel_top(0),
            max: axis_max(points.iter().map(|p| p.throughput_rps)),
            percent: false,
            lines: vec![Line { label: "requests started", color: THROUGHPUT, value: |p| p.throughput_rps }],
            rules: vec![],
            band: None,
        },
        Panel {
            title: "errors seen by users",
            top: panel_top(1),
            max: pct_max(
                points.iter().map(|p| p.user_error_rate).chain([th.user_error_rate, th.abort_error_rate]).collect(),
            ),
            percent: true,
            lines: vec![Line { label: "share of critical requests", color: USER_ERRORS, value: |p| p.user_error_rate }],
            rules: vec![
                Rule {
                    label: format!("SLO {}", fmt_limit(th.user_error_rate)),
                    color: SLO,
                    dash: "6 3",
                    value: th.user_error_rate,
                },
                Rule {
                    label: format!("abort {}", fmt_limit(th.abort_error_rate)),
                    color: ABORT,
                    dash: "2 3",
                    value: th.abort_error_rate,
                },
            ],
            band: None,
        },
        Panel {
            title: "degraded answers",
            top: panel_top(2),
            max: pct_max(points.iter().flat_map(|p| [p.fallback_rate, p.shed_rate]).collect()),
            percent: true,
            lines: vec![
                Line { label: "fallback, share of critical", color: FALLBACK, value: |p| p.fallback_rate },
                Line { label: "shed, share of non-critical", color: SHED, value: |p| p.shed_rate },
            ],
            rules: vec![],
            band: None,
        },
        Panel {
            title: "injected, share of dependency calls",
            top: panel_top(3),
            max: pct_max(points.iter().map(|p| p.injected_rate).chain(band.map(|[lo, hi]| lo.max(hi))).collect()),
            percent: true,
            lines: vec![Line {
                label: "injected faults (a gap: no call reached the dependency)",
                color: INJECTED,
                value: |p| p.injected_rate,
            }],
            rules: vec![],
            band: band.map(|b| (b, "planned band")),
        },
        Panel {
            title: "p95 latency (ms)",
            top: panel_top(4),
            max: axis_max(points.iter().map(|p| p.p95_ms).chain([th.p95_ms])),
            percent: false,
            lines: vec![Line { label: "critical requests", color: P95, value: |p| p.p95_ms }],
            rules: vec![Rule {
                label: format!("SLO {} ms", fmt_tick(th.p95_ms, 1.0)),
                color: SLO,
                dash: "6 3",
                value: th.p95_ms,
            }],
            band: None,
        },
    ];
    for panel in &panels {
        panel.draw(&mut out, series, &frame);
    }

    // The time axis.
    for &t in &frame.x_ticks {
        let px = x.map(t);
        let _ = writeln!(
            out,
            r#"<line x1="{px:.1}" y1="{plot_bottom:.1}" x2="{px:.1}" y2="{:.1}" stroke="{INK}"/>"#,
            plot_bottom + 4.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="{INK}">{}</text>"#,
            plot_bottom + 15.0,
            escape(&fmt_tick(t, frame.x_step))
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="{INK}">time since scenario start (s)</text>"#,
        (LEFT + RIGHT) / 2.0,
        plot_bottom + 32.0
    );

    // The events' key, in two columns.
    if !events.is_empty() {
        let _ = writeln!(out, r#"<g class="key" font-size="11" fill="{INK}">"#);
        for (i, e) in events.iter().take(MAX_KEYED_EVENTS).enumerate() {
            let (col, row) = (i % 2, i / 2);
            let (kx, ky) = (16.0 + col as f64 * (WIDTH / 2.0), key_top + row as f64 * KEY_ROW_H);
            let _ = writeln!(out, r#"<circle cx="{:.1}" cy="{:.1}" r="6" fill="{EVENT}"/>"#, kx + 6.0, ky - 4.0);
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="8" font-weight="bold" text-anchor="middle" fill="#ffffff">{}</text>"##,
                kx + 6.0,
                ky - 1.2,
                i + 1
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{ky:.1}"><title>{}</title>{} · {}</text>"#,
                kx + 17.0,
                escape(&e.label),
                escape(&fmt_s(e.t_s)),
                escape(&cut(&e.label, 62))
            );
        }
        if events.len() > MAX_KEYED_EVENTS {
            let _ = writeln!(
                out,
                r#"<text x="16" y="{:.1}">… and {} more</text>"#,
                key_top + (key_rows - 1) as f64 * KEY_ROW_H,
                events.len() - MAX_KEYED_EVENTS
            );
        }
        let _ = writeln!(out, "</g>");
    }
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
        Point {
            t_s,
            throughput_rps: 400.0 + t_s,
            user_error_rate: 0.02,
            fallback_rate: 0.3,
            shed_rate: 0.1,
            injected_rate: 0.25,
            p95_ms: 12.0 + t_s / 4.0,
        }
    }

    fn known() -> Series {
        Series {
            scenario: "quote-429".to_owned(),
            points: (0..=10).map(|i| point(i as f64 * 10.0)).collect(),
            fault_start_s: 20.0,
            fault_end_s: 50.0,
            breaker_open: Some(vec![Span { start_s: 25.0, end_s: 55.0 }]),
            flags: vec![FlagLane { flag: "quotes_cached".to_owned(), on: vec![Span { start_s: 22.0, end_s: 58.0 }] }],
            events: vec![
                Marker { t_s: 20.0, label: "armed · provider".to_owned() },
                Marker { t_s: 20.01, label: "first fault · provider".to_owned() },
                Marker { t_s: 50.0, label: "disarmed · provider".to_owned() },
            ],
            thresholds: Thresholds { user_error_rate: 0.01, abort_error_rate: 0.05, p95_ms: 400.0 },
            injected_band: Some([0.2, 0.3]),
        }
    }

    #[test]
    fn svg_is_balanced_markup() {
        let s = svg(&known());
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.trim_end().ends_with("</svg>"));
        check_markup(&s, &[]).unwrap();
        assert_eq!(s.matches("<polyline").count(), 6, "one line per series");
        for label in [
            ">throughput (rps)<",
            ">errors seen by users<",
            ">degraded answers<",
            ">fallback, share of critical<",
            ">shed, share of non-critical<",
            ">injected, share of dependency calls<",
            ">p95 latency (ms)<",
            ">SLO 1.0%<",
            ">abort 5.0%<",
            ">SLO 400 ms<",
            ">planned band<",
            ">breaker<",
            ">quotes_cached<",
        ] {
            assert!(s.contains(label), "no {label}");
        }
    }

    #[test]
    fn fault_window_is_shaded_at_its_times() {
        // Time runs 0..100 s over x 140..884 (744 px): 20 s is at 140 + 148.8, and 30 s spans 223.2 px.
        let s = svg(&known());
        let rect = r#"<rect class="fault" x="288.8" y="#;
        assert_eq!(s.matches(rect).count(), 7, "one shaded window per panel and lane:\n{s}");
        let fault_rects = s.lines().filter(|l| l.starts_with(rect));
        assert!(fault_rects.clone().count() == 7 && fault_rects.clone().all(|l| l.contains(r#"width="223.2""#)));
    }

    #[test]
    fn lanes_events_and_limits_are_drawn() {
        let s = svg(&known());
        // The breaker was open 25–55 s: x 326.0, 223.2 px wide; the flag on 22–58 s.
        assert!(s.contains(r#"<rect class="on" x="326.0" y="#) && s.contains(r#"width="223.2" height="14""#));
        assert!(s.contains(r#"<rect class="on" x="303.7" y="#), "{s}");
        assert_eq!(s.matches(r#"<circle class="marker""#).count(), 3);
        assert!(s.contains("20.0 s · armed · provider") && s.contains("50.0 s · disarmed · provider"));
        assert_eq!(s.matches(r#"<line class="rule""#).count(), 3, "SLO and abort error rates, p95 SLO");
        assert_eq!(s.matches(r#"<rect class="band""#).count(), 1);
        // Two markers 0.01 s apart stack instead of overlapping.
        assert_eq!(marker_levels(&[300.0, 300.1, 400.0]), vec![0, 1, 0]);

        let unsampled = svg(&Series { breaker_open: None, flags: vec![], events: vec![], ..known() });
        check_markup(&unsampled, &[]).unwrap();
        assert_eq!(unsampled.matches(">not sampled<").count(), 2);
        assert!(!unsampled.contains("class=\"marker\""));
        let calm = svg(&Series { breaker_open: Some(vec![]), flags: vec![], ..known() });
        assert!(calm.contains(">none turned on<") && !calm.contains("class=\"on\""));
    }

    #[test]
    fn spans_follow_the_samples() {
        let s = spans([(0.0, false), (1.0, true), (2.0, true), (3.0, false), (4.0, true), (f64::NAN, false)]);
        assert_eq!(s, vec![Span { start_s: 1.0, end_s: 3.0 }, Span { start_s: 4.0, end_s: 4.0 }]);
        assert!(spans([]).is_empty());
        assert!(spans([(0.0, false), (1.0, false)]).is_empty());
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
        let empty = Series { scenario: String::new(), fault_start_s: f64::NAN, fault_end_s: 1.0, ..Series::default() };
        let s = svg(&empty);
        check_markup(&s, &[]).unwrap();
        assert!(s.contains("no data") && !s.contains("class=\"fault\""));

        let single = Series { points: vec![point(0.0)], fault_start_s: 0.0, fault_end_s: 0.0, ..known() };
        let s = svg(&single);
        check_markup(&s, &[]).unwrap();
        assert_eq!(s.matches(r#"<circle class="dot""#).count(), 6, "a lone point is a dot");

        let zeros = Point { t_s: 5.0, ..Point::default() };
        let s = svg(&Series { points: vec![zeros; 3], ..known() });
        check_markup(&s, &[]).unwrap();
        assert!(!s.contains("NaN") && !s.contains("inf"));

        let mut points = known().points;
        points[3].p95_ms = f64::NAN;
        points[4].throughput_rps = f64::INFINITY;
        points[5].t_s = f64::NEG_INFINITY;
        points[6].user_error_rate = 7.0; // clamped to 100%
        let many_flags =
            (0..20).map(|i| FlagLane { flag: format!("flag_with_a_rather_long_name_{i}"), on: vec![] }).collect();
        let many_events = (0..40).map(|i| Marker { t_s: i as f64, label: "x".repeat(i * 3) }).collect();
        let s = svg(&Series { points, flags: many_flags, events: many_events, ..known() });
        check_markup(&s, &[]).unwrap();
        assert!(!s.contains("NaN") && !s.contains("inf"));
        assert!(s.contains("(+12 more)") && s.contains("… and 16 more"));
    }

    #[test]
    fn ticks_are_nice() {
        assert_eq!(ticks(0.0, 100.0, 10.0).0, (0..=10).map(|i| i as f64 * 10.0).collect::<Vec<_>>());
        assert_eq!(axis_max([0.0, 37.0].into_iter()), 40.0);
        assert_eq!(axis_max([f64::NAN, -3.0].into_iter()), 1.0);
        assert_eq!(fmt_tick(0.30000000000000004, 0.1), "0.3");
        assert_eq!(fmt_pct(0.05, 0.01), "5%");
        assert_eq!(fmt_pct(0.005, 0.001), "0.5%");
        assert_eq!(fmt_limit(0.01), "1.0%");
    }

    /// A realistic run for eyeballing the layout: `cargo test -p brownout-gameday -- --ignored write_sample_chart`
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
                        0.03
                    } else if fault {
                        0.004
                    } else {
                        0.0
                    },
                    fallback_rate: if fault {
                        0.22 + wobble / 400.0
                    } else if healing {
                        0.05
                    } else {
                        0.0
                    },
                    shed_rate: if fault && t_s > 30.0 { 0.4 } else { 0.0 },
                    injected_rate: if fault { 0.24 + wobble / 500.0 } else { f64::NAN },
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
        Series {
            scenario: scenario.to_owned(),
            points,
            fault_start_s: 20.0,
            fault_end_s: 50.0,
            breaker_open: Some(vec![Span { start_s: 21.5, end_s: 35.0 }, Span { start_s: 36.0, end_s: 52.0 }]),
            flags: vec![
                FlagLane { flag: "quotes_cached_only".to_owned(), on: vec![Span { start_s: 22.0, end_s: 53.5 }] },
                FlagLane { flag: "reports_off".to_owned(), on: vec![Span { start_s: 31.0, end_s: 51.0 }] },
            ],
            events: vec![
                Marker { t_s: 20.0, label: "armed · provider".to_owned() },
                Marker { t_s: 20.05, label: "first fault injected · provider".to_owned() },
                Marker { t_s: 21.5, label: "detected · breaker".to_owned() },
                Marker { t_s: 22.0, label: "detected · quotes_cached_only".to_owned() },
                Marker { t_s: 50.0, label: "disarmed · provider".to_owned() },
                Marker { t_s: 52.0, label: "recovery · breaker".to_owned() },
                Marker { t_s: 53.5, label: "recovery · quotes_cached_only".to_owned() },
                Marker { t_s: 56.0, label: "recovered · provider".to_owned() },
            ],
            thresholds: Thresholds { user_error_rate: 0.01, abort_error_rate: 0.05, p95_ms: 400.0 },
            injected_band: Some([0.2, 0.3]),
        }
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
        (any_f64(), any_f64(), any_f64(), any_f64(), any_f64(), any_f64(), any_f64()).prop_map(
            |(t_s, r, u, f, s, i, p)| Point {
                t_s,
                throughput_rps: r,
                user_error_rate: u,
                fallback_rate: f,
                shed_rate: s,
                injected_rate: i,
                p95_ms: p,
            },
        )
    }

    fn any_spans() -> impl Strategy<Value = Vec<Span>> {
        proptest::collection::vec((any_f64(), any_f64()).prop_map(|(start_s, end_s)| Span { start_s, end_s }), 0..5)
    }

    proptest! {
        #[test]
        fn any_series_gives_valid_svg(
            scenario in ".{0,100}",
            points in proptest::collection::vec(any_point(), 0..40),
            fault_start_s in any_f64(),
            fault_end_s in any_f64(),
            breaker_open in proptest::option::of(any_spans()),
            flags in proptest::collection::vec((".{0,30}", any_spans()), 0..12),
            events in proptest::collection::vec((any_f64(), ".{0,80}"), 0..30),
            limits in (any_f64(), any_f64(), any_f64()),
            injected_band in proptest::option::of((any_f64(), any_f64())),
        ) {
            let series = Series {
                scenario,
                points,
                fault_start_s,
                fault_end_s,
                breaker_open,
                flags: flags.into_iter().map(|(flag, on)| FlagLane { flag, on }).collect(),
                events: events.into_iter().map(|(t_s, label)| Marker { t_s, label }).collect(),
                thresholds: Thresholds { user_error_rate: limits.0, abort_error_rate: limits.1, p95_ms: limits.2 },
                injected_band: injected_band.map(|(lo, hi)| [lo, hi]),
            };
            let s = svg(&series);
            prop_assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
            prop_assert_eq!(check_markup(&s, &[]), Ok(()));
            let plain = Series {
                scenario: "s".to_owned(),
                flags: series.flags.iter().map(|l| FlagLane { flag: "f".to_owned(), on: l.on.clone() }).collect(),
                events: series.events.iter().map(|e| Marker { t_s: e.t_s, label: "e".to_owned() }).collect(),
                ..series
            };
            let s = svg(&plain);
            prop_assert!(!s.contains("NaN") && !s.contains("inf"), "{}", s);
        }
    }
}
