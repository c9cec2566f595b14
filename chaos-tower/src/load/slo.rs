//! SLO expressions for CI, such as `p95<150ms,errors<0.5%,rps>=100`, and their check against a result.
//!
//! Grammar: clauses separated by commas, each `METRIC OP VALUE` (spaces allowed around each part).
//! - metrics: `pNN` (any percentile in `(0, 100]`: `p50`, `p95`, `p99.9`; `p999` and `p9999` are read as
//!   99.9 and 99.99), `mean`, `max` (latencies, with a unit `ns`, `us`, `ms` or `s`), `errors` (a percentage
//!   `0.5%` or a fraction `0.005`), `rps` (requests per second);
//! - operators: `<`, `<=`, `>`, `>=`;
//! - numbers: digits with an optional decimal point.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::LoadResult;

/// What a clause measures.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Metric {
    /// The latency at a percentile in `(0, 100]`.
    Percentile(f64),
    /// The mean latency.
    Mean,
    /// The largest latency.
    Max,
    /// The error rate.
    Errors,
    /// The throughput, in requests per second.
    Rps,
}

impl Metric {
    fn is_latency(&self) -> bool {
        matches!(self, Self::Percentile(_) | Self::Mean | Self::Max)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Percentile(p) => write!(f, "p{p}"),
            Self::Mean => f.write_str("mean"),
            Self::Max => f.write_str("max"),
            Self::Errors => f.write_str("errors"),
            Self::Rps => f.write_str("rps"),
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Self::Lt => actual < limit,
            Self::Le => actual <= limit,
            Self::Gt => actual > limit,
            Self::Ge => actual >= limit,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        })
    }
}

/// The value a clause compares with, as written.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Threshold {
    /// A latency (for percentiles, `mean`, `max`).
    Latency(Duration),
    /// An error rate written as a percentage, in `[0, 100]`.
    Percent(f64),
    /// An error rate written as a fraction, in `[0, 1]`.
    Fraction(f64),
    /// Requests per second.
    Rate(f64),
}

impl Threshold {
    /// The value in the unit of [`LoadResult`]: milliseconds, a fraction, or requests per second.
    fn canonical(&self) -> f64 {
        match *self {
            Self::Latency(d) => d.as_nanos() as f64 / 1e6,
            Self::Percent(p) => p / 100.0,
            Self::Fraction(x) | Self::Rate(x) => x,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Latency(d) => {
                let nanos = d.as_nanos();
                let (div, unit) = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")]
                    .into_iter()
                    .find(|(div, _)| nanos != 0 && nanos % div == 0)
                    .unwrap_or((1, "ns"));
                write!(f, "{}{unit}", nanos / div)
            }
            Self::Percent(p) => write!(f, "{p}%"),
            Self::Fraction(x) | Self::Rate(x) => write!(f, "{x}"),
        }
    }
}

/// Latency thresholds are capped at about 11.5 days, so every one round-trips exactly through text.
const MAX_LATENCY_NANOS: f64 = 1e15;

/// One clause: `metric op threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clause {
    metric: Metric,
    op: Op,
    threshold: Threshold,
}

impl Clause {
    /// A clause, checked: a latency metric takes a [`Threshold::Latency`], `errors` a percentage or a fraction,
    /// `rps` a rate; values finite, non-negative and in range.
    pub fn new(metric: Metric, op: Op, threshold: Threshold) -> Result<Self, String> {
        if let Metric::Percentile(p) = metric
            && !(p > 0.0 && p <= 100.0)
        {
            return Err(format!("percentile must be within (0, 100], got {p}"));
        }
        match (metric, threshold) {
            (m, Threshold::Latency(d)) if m.is_latency() => {
                if d.as_nanos() as f64 > MAX_LATENCY_NANOS {
                    return Err(format!("latency {d:?} is too large"));
                }
            }
            (Metric::Errors, Threshold::Percent(p)) if (0.0..=100.0).contains(&p) => {}
            (Metric::Errors, Threshold::Percent(p)) => {
                return Err(format!("a percentage must be within [0, 100], got {p}"));
            }
            (Metric::Errors, Threshold::Fraction(x)) if (0.0..=1.0).contains(&x) => {}
            (Metric::Errors, Threshold::Fraction(x)) => {
                return Err(format!(
                    "an error fraction must be within [0, 1], got {x} (write `{x}%` for a percentage)"
                ));
            }
            (Metric::Rps, Threshold::Rate(r)) if r.is_finite() && r >= 0.0 => {}
            (Metric::Rps, Threshold::Rate(r)) => {
                return Err(format!("a rate must be finite and non-negative, got {r}"));
            }
            (m, t) => return Err(format!("`{m}` cannot be compared with `{t}`")),
        }
        Ok(Self { metric, op, threshold })
    }

    /// What it measures.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The comparison.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The limit.
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// Checks `result` against this clause.
    pub fn check(&self, result: &LoadResult) -> ClauseCheck {
        if result.requests == 0 && self.metric != Metric::Rps {
            // Nothing measured proves nothing: an empty run never passes a latency or error clause.
            return ClauseCheck { clause: *self, actual: None, passed: false, missing: Some("no requests measured") };
        }
        let actual = match self.metric {
            Metric::Percentile(p) => result.percentile_ms(p),
            Metric::Mean => Some(result.latency_ms.mean),
            Metric::Max => Some(result.latency_ms.max),
            Metric::Errors => Some(result.error_rate),
            Metric::Rps => Some(result.throughput_rps),
        };
        let passed = actual.is_some_and(|a| self.op.holds(a, self.threshold.canonical()));
        let missing = actual.is_none().then_some("a percentile the saved result does not hold");
        ClauseCheck { clause: *self, actual, passed, missing }
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.metric, self.op, self.threshold)
    }
}

/// A clause that does not parse: the clause as written and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SloParseError {
    clause: String,
    reason: String,
}

impl SloParseError {
    fn new(clause: &str, reason: impl Into<String>) -> Self {
        Self { clause: clause.to_owned(), reason: reason.into() }
    }

    /// The clause as written.
    pub fn clause(&self) -> &str {
        &self.clause
    }

    /// Why it was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for SloParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SLO clause `{}`: {}", self.clause, self.reason)
    }
}

impl std::error::Error for SloParseError {}

/// A plain decimal number: digits with an optional point (no sign, exponent, `inf` or `NaN`).
fn number(s: &str) -> Option<f64> {
    let mut parts = s.splitn(2, '.');
    let int = parts.next()?;
    let frac = parts.next();
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let ok = digits(int) && frac.is_none_or(digits) && (int.len() + frac.map_or(0, str::len)) > 0;
    if ok { s.parse().ok().filter(|v: &f64| v.is_finite()) } else { None }
}

fn parse_metric(s: &str) -> Result<Metric, String> {
    match s.to_ascii_lowercase().as_str() {
        "mean" => Ok(Metric::Mean),
        "max" => Ok(Metric::Max),
        "errors" | "error_rate" => Ok(Metric::Errors),
        "rps" | "throughput" => Ok(Metric::Rps),
        m => {
            let Some(digits) = m.strip_prefix('p') else {
                return Err(format!("unknown metric `{s}`: expected pNN, mean, max, errors or rps"));
            };
            let written = if digits.len() > 2 && digits.starts_with("99") && digits.bytes().all(|b| b.is_ascii_digit())
            {
                format!("99.{}", &digits[2..]) // p999 is p99.9
            } else {
                digits.to_owned()
            };
            let p =
                number(&written).ok_or_else(|| format!("`{s}`: a percentile is `p` and a number, as p95 or p99.9"))?;
            if p > 0.0 && p <= 100.0 {
                Ok(Metric::Percentile(p))
            } else {
                Err(format!("percentile must be within (0, 100], got {p}"))
            }
        }
    }
}

fn parse_threshold(metric: Metric, s: &str) -> Result<Threshold, String> {
    if s.is_empty() {
        return Err("missing value after the operator".to_owned());
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    let value = number(num).ok_or_else(|| format!("`{s}` does not start with a number"))?;
    match metric {
        m if m.is_latency() => {
            let scale = match unit {
                "ns" => 1.0,
                "us" | "µs" => 1e3,
                "ms" => 1e6,
                "s" => 1e9,
                "" => return Err(format!("latency `{s}` needs a unit: ns, us, ms or s")),
                u => return Err(format!("unknown latency unit `{u}`: expected ns, us, ms or s")),
            };
            let nanos = (value * scale).round();
            if nanos > MAX_LATENCY_NANOS {
                return Err(format!("latency `{s}` is too large"));
            }
            Ok(Threshold::Latency(Duration::from_nanos(nanos as u64)))
        }
        Metric::Errors => match unit {
            "%" => Ok(Threshold::Percent(value)),
            "" => Ok(Threshold::Fraction(value)),
            u => Err(format!("unexpected `{u}` after the error rate: write `0.5%` or `0.005`")),
        },
        _ => match unit {
            "" | "/s" => Ok(Threshold::Rate(value)),
            u => Err(format!("unexpected `{u}` after the rate: write `rps>=100`")),
        },
    }
}

impl FromStr for Clause {
    type Err = SloParseError;

    fn from_str(written: &str) -> Result<Self, Self::Err> {
        let s = written.trim();
        let err = |reason: String| SloParseError::new(s, reason);
        let at = s.find(['<', '>']).ok_or_else(|| err("no comparison: expected one of <, <=, >, >=".to_owned()))?;
        let (metric, rest) = (s[..at].trim(), &s[at..]);
        let (op, value) = match rest.as_bytes() {
            [b'<', b'=', ..] => (Op::Le, &rest[2..]),
            [b'>', b'=', ..] => (Op::Ge, &rest[2..]),
            [b'<', ..] => (Op::Lt, &rest[1..]),
            _ => (Op::Gt, &rest[1..]),
        };
        if metric.is_empty() {
            return Err(err("missing metric before the operator".to_owned()));
        }
        let metric = parse_metric(metric).map_err(err)?;
        let threshold = parse_threshold(metric, value.trim()).map_err(err)?;
        Clause::new(metric, op, threshold).map_err(err)
    }
}

/// A set of clauses, all of which must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Slo {
    clauses: Vec<Clause>,
}

impl Slo {
    /// An SLO of `clauses`.
    pub fn new(clauses: Vec<Clause>) -> Self {
        Self { clauses }
    }

    /// Its clauses.
    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }

    /// Checks every clause against `result`.
    pub fn check(&self, result: &LoadResult) -> SloCheck {
        SloCheck { checks: self.clauses.iter().map(|c| c.check(result)).collect() }
    }
}

impl FromStr for Slo {
    type Err = SloParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(SloParseError::new(s, "empty SLO: expected clauses such as `p95<150ms,errors<0.5%`"));
        }
        s.split(',')
            .map(|clause| {
                if clause.trim().is_empty() { Err(SloParseError::new(clause, "empty clause")) } else { clause.parse() }
            })
            .collect::<Result<_, _>>()
            .map(Self::new)
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, clause) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{clause}")?;
        }
        Ok(())
    }
}

/// One clause checked: the measured value (in ms, a fraction or req/s) and whether the clause held.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ClauseCheck {
    /// The clause.
    pub clause: Clause,
    /// The measured value; `None` when the result cannot tell (no requests were measured, or a percentile a
    /// result read from JSON does not hold).
    pub actual: Option<f64>,
    /// Whether the clause held (never when `actual` is `None`).
    pub passed: bool,
    /// Why `actual` is `None`.
    pub missing: Option<&'static str>,
}

impl fmt::Display for ClauseCheck {
    /// `SLO ok: p95<150ms (actual 12.300ms)` or `SLO BREACHED: errors<0.5% (actual 1.200%)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "ok" } else { "BREACHED" };
        let actual = match (self.actual, self.clause.metric) {
            (None, _) => {
                return write!(f, "SLO {verdict}: {} (no value: {})", self.clause, self.missing.unwrap_or("unknown"));
            }
            (Some(a), Metric::Errors) => format!("{:.3}%", a * 100.0),
            (Some(a), Metric::Rps) => format!("{a:.1} req/s"),
            (Some(a), _) => format!("{a:.3}ms"),
        };
        write!(f, "SLO {verdict}: {} (actual {actual})", self.clause)
    }
}

/// The check of a whole [`Slo`].
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct SloCheck {
    /// One entry per clause, in order.
    pub checks: Vec<ClauseCheck>,
}

impl SloCheck {
    /// Whether every clause held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The clauses that did not hold.
    pub fn breaches(&self) -> impl Iterator<Item = &ClauseCheck> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

impl fmt::Display for SloCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn result(p95_ms: f64, error_rate: f64, rps: f64) -> LoadResult {
        let json = format!(
            r#"{{"plan":{{"mode":"closed","clients":1,"requests":100,"duration_seconds":null,"warmup_seconds":0}},
            "requests":1000,"errors":0,"error_rate":{error_rate},"throughput_rps":{rps},"duration_seconds":1.0,
            "latency_ms":{{"min":1,"mean":2,"p50":2,"p90":3,"p95":{p95_ms},"p99":9,"p999":12,"max":20}},
            "status_counts":{{"200":1000}}}}"#
        );
        LoadResult::from_json(&json).unwrap()
    }

    #[test]
    fn the_issue_example_parses() {
        let slo: Slo = "p95<150ms,errors<0.5%,rps>=100".parse().unwrap();
        assert_eq!(
            slo.clauses(),
            &[
                Clause::new(Metric::Percentile(95.0), Op::Lt, Threshold::Latency(Duration::from_millis(150))).unwrap(),
                Clause::new(Metric::Errors, Op::Lt, Threshold::Percent(0.5)).unwrap(),
                Clause::new(Metric::Rps, Op::Ge, Threshold::Rate(100.0)).unwrap(),
            ]
        );
        assert_eq!(slo.to_string(), "p95<150ms,errors<0.5%,rps>=100");
    }

    #[test]
    fn variants_parse() {
        let slo: Slo = " p99.9 <= 1.5s , p999<2s, mean>10us, max<250000ns, errors<=0.005, P50<1ms ".parse().unwrap();
        let metrics: Vec<_> = slo.clauses().iter().map(Clause::metric).collect();
        assert_eq!(
            metrics,
            [
                Metric::Percentile(99.9),
                Metric::Percentile(99.9),
                Metric::Mean,
                Metric::Max,
                Metric::Errors,
                Metric::Percentile(50.0)
            ]
        );
        assert_eq!(slo.clauses()[0].threshold(), Threshold::Latency(Duration::from_millis(1500)));
        assert_eq!(slo.to_string(), "p99.9<=1500ms,p99.9<2s,mean>10us,max<250us,errors<=0.005,p50<1ms");
    }

    #[test]
    fn errors_name_the_clause_and_the_reason() {
        let cases = [
            ("p95<150ms,p95=3ms", "p95=3ms", "no comparison"),
            ("p95<150", "p95<150", "needs a unit"),
            ("p95<150min", "p95<150min", "unknown latency unit `min`"),
            ("p101<1s", "p101<1s", "within (0, 100]"),
            ("p0<1s", "p0<1s", "within (0, 100]"),
            ("errors<5", "errors<5", "within [0, 1]"),
            ("errors<101%", "errors<101%", "within [0, 100]"),
            ("latency<1s", "latency<1s", "unknown metric `latency`"),
            ("rps>=100ms", "rps>=100ms", "unexpected `ms`"),
            ("p95<", "p95<", "missing value"),
            ("<3ms", "<3ms", "missing metric"),
            ("p95<-3ms", "p95<-3ms", "does not start with a number"),
            ("p95<<3ms", "p95<<3ms", "does not start with a number"),
            ("p95<1ms,,rps>1", "", "empty clause"),
            ("", "", "empty SLO"),
            ("rps>NaN", "rps>NaN", "does not start with a number"),
        ];
        for (input, clause, reason) in cases {
            let e = input.parse::<Slo>().unwrap_err();
            assert_eq!(e.clause(), clause, "{input}: {e}");
            assert!(e.reason().contains(reason), "{input}: {e}");
            assert!(e.to_string().starts_with(&format!("SLO clause `{clause}`: ")), "{e}");
        }
    }

    #[test]
    fn the_check_reports_each_clause() {
        let slo: Slo = "p95<150ms,errors<0.5%,rps>=100".parse().unwrap();
        let good = slo.check(&result(120.0, 0.001, 250.0));
        assert!(good.passed(), "{good}");
        let bad = slo.check(&result(212.5, 0.012, 99.0));
        let lines: Vec<String> = bad.breaches().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "SLO BREACHED: p95<150ms (actual 212.500ms)",
                "SLO BREACHED: errors<0.5% (actual 1.200%)",
                "SLO BREACHED: rps>=100 (actual 99.0 req/s)",
            ]
        );
        // Boundaries: `<` is strict, `<=` is not; a fraction and a percentage mean the same.
        let r = result(150.0, 0.005, 100.0);
        assert!(!"p95<150ms".parse::<Slo>().unwrap().check(&r).passed());
        assert!("p95<=150ms,errors<=0.005,errors<=0.5%,rps>=100".parse::<Slo>().unwrap().check(&r).passed());
        // A percentile a JSON result does not hold is a breach, said so.
        let p75 = "p75<1s".parse::<Slo>().unwrap().check(&r);
        assert!(!p75.passed());
        assert_eq!(
            p75.checks[0].to_string(),
            "SLO BREACHED: p75<1s (no value: a percentile the saved result does not hold)"
        );
        // An empty run proves nothing: latency and error clauses fail, the throughput clause is judged.
        let mut empty = result(0.0, 0.0, 0.0);
        empty.requests = 0;
        let check = "p95<1s,errors<1%,rps>=0".parse::<Slo>().unwrap().check(&empty);
        let verdicts: Vec<bool> = check.checks.iter().map(|c| c.passed).collect();
        assert_eq!(verdicts, [false, false, true]);
        assert_eq!(check.checks[0].to_string(), "SLO BREACHED: p95<1s (no value: no requests measured)");
    }

    fn decimal() -> impl Strategy<Value = f64> {
        prop_oneof![(0u32..100_000).prop_map(|n| f64::from(n) / 1000.0), 0.0f64..1e6]
    }

    fn clause() -> impl Strategy<Value = Clause> {
        let op = prop_oneof![Just(Op::Lt), Just(Op::Le), Just(Op::Gt), Just(Op::Ge)];
        let latency = (0u64..1_000_000_000_000_000).prop_map(|n| Threshold::Latency(Duration::from_nanos(n)));
        let latency_metric = prop_oneof![
            (1u32..=1000).prop_map(|p| Metric::Percentile(f64::from(p) / 10.0)),
            (0.000_001f64..=100.0).prop_map(Metric::Percentile),
            Just(Metric::Mean),
            Just(Metric::Max),
        ];
        prop_oneof![
            (latency_metric, op.clone(), latency),
            (Just(Metric::Errors), op.clone(), (0.0f64..=100.0).prop_map(Threshold::Percent)),
            (Just(Metric::Errors), op.clone(), (0.0f64..=1.0).prop_map(Threshold::Fraction)),
            (Just(Metric::Rps), op, decimal().prop_map(Threshold::Rate)),
        ]
        .prop_map(|(m, o, t)| Clause::new(m, o, t).unwrap())
    }

    proptest! {
        #[test]
        fn display_then_parse_is_identity(clauses in proptest::collection::vec(clause(), 1..6)) {
            let slo = Slo::new(clauses);
            let text = slo.to_string();
            prop_assert_eq!(text.parse::<Slo>().unwrap(), slo, "{}", text);
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Slo>();
        }

        #[test]
        fn near_miss_input_never_panics(s in "[pP0-9.,<>=%a-z µ]{0,30}") {
            if let Ok(slo) = s.parse::<Slo>() {
                // Whatever parses prints to something that parses to the same thing.
                prop_assert_eq!(slo.to_string().parse::<Slo>().unwrap(), slo);
            }
        }

        #[test]
        fn a_clause_and_its_negation_disagree(c in clause(), p95 in 0.0f64..2e3, err in 0.0f64..=1.0, rps in 0.0f64..1e6) {
            let r = result(p95, err, rps);
            let negated = match c.op() { Op::Lt => Op::Ge, Op::Le => Op::Gt, Op::Gt => Op::Le, Op::Ge => Op::Lt };
            let n = Clause::new(c.metric(), negated, c.threshold()).unwrap();
            let (a, b) = (c.check(&r), n.check(&r));
            // Percentiles the summary lacks cannot be judged either way.
            prop_assert!(a.actual.is_none() || a.passed != b.passed);
        }
    }
}
