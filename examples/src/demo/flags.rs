//! The degrade flags the demo reads, and their typed handles: taken once when the app is built, each read is
//! one relaxed atomic load (and, for a strategy, an index into a table made at build time).

use std::sync::Arc;

use brownout_degrade::flags::FlagKind;
use brownout_degrade::{Flags, NumberFlag, StrategyFlag};

/// `quotes.source`: where `GET /quote/{symbol}` takes its quote from ([`QuoteSource`]).
pub const QUOTES_SOURCE: &str = "quotes.source";
/// `reports.delivery`: how `GET /reports/{name}` delivers a report ([`ReportDelivery`]).
pub const REPORTS_DELIVERY: &str = "reports.delivery";
/// `api.shed_percent`: the share (0–100) of non-critical requests shed with `503` + `Retry-After`.
pub const SHED_PERCENT: &str = "api.shed_percent";

/// The values of `quotes.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteSource {
    /// `live` (default): call the provider; on failure the fallback serves the cached quote.
    Live,
    /// `cached`: serve the cached quote without calling the provider when it is no older than
    /// [`Options::quote_max_age`](super::Options::quote_max_age); else call the provider.
    Cached,
    /// `stale_ok`: as `cached`, and a quote older than the limit that the provider fails to refresh is served
    /// and accepted (stale-if-error).
    StaleOk,
}

impl QuoteSource {
    const OPTIONS: [(&'static str, QuoteSource); 3] =
        [("live", QuoteSource::Live), ("cached", QuoteSource::Cached), ("stale_ok", QuoteSource::StaleOk)];
}

/// The values of `reports.delivery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportDelivery {
    /// `cached` (default): build the whole report in memory and keep it in the report cache.
    Cached,
    /// `streaming`: stream the report chunk by chunk; nothing is built whole or cached.
    Streaming,
}

impl ReportDelivery {
    const OPTIONS: [(&'static str, ReportDelivery); 2] =
        [("cached", ReportDelivery::Cached), ("streaming", ReportDelivery::Streaming)];
}

/// A strategy flag read as `T`: one atomic load and an index into a table made at build time.
#[derive(Debug, Clone)]
pub(crate) struct ModeFlag<T> {
    /// `None` when the registry has no usable flag of that name: the default, always.
    flag: Option<StrategyFlag>,
    /// `T` for each of the flag's options, in the flag's order.
    table: Arc<[T]>,
    default: T,
}

impl<T: Copy> ModeFlag<T> {
    /// The mode in force.
    #[inline]
    pub(crate) fn get(&self) -> T {
        match &self.flag {
            Some(flag) => self.table.get(flag.index()).copied().unwrap_or(self.default),
            None => self.default,
        }
    }
}

/// The handles of every flag the demo reads.
#[derive(Debug, Clone)]
pub(crate) struct DemoFlags {
    pub(crate) quote_source: ModeFlag<QuoteSource>,
    pub(crate) report_delivery: ModeFlag<ReportDelivery>,
    /// `None` when the registry's flag of that name is not a number: nothing is shed.
    pub(crate) shed_percent: Option<NumberFlag>,
}

impl DemoFlags {
    /// Defines the demo's flags in `flags` where they are missing (at their defaults) and takes their
    /// handles. A flag the registry already has keeps its value; when it has another type, or options the
    /// demo does not know, the demo warns and reads those as the default (it never fails on a flag file).
    pub(crate) fn take(flags: &Flags) -> Self {
        Self {
            quote_source: mode(flags, QUOTES_SOURCE, &QuoteSource::OPTIONS, QuoteSource::Live),
            report_delivery: mode(flags, REPORTS_DELIVERY, &ReportDelivery::OPTIONS, ReportDelivery::Cached),
            shed_percent: percent(flags, SHED_PERCENT),
        }
    }
}

fn mode<T: Copy + PartialEq>(flags: &Flags, name: &str, options: &[(&str, T)], default: T) -> ModeFlag<T> {
    let kind = FlagKind::Strategy(options.iter().map(|(o, _)| Box::from(*o)).collect());
    let default_name = options.iter().find(|(_, t)| *t == default).map_or("", |(o, _)| o);
    // An existing flag with other options is still read, by option name.
    if let Err(e) = flags.define(name, kind.clone(), default_name) {
        tracing::debug!(flag = name, "the demo reads the flag as defined elsewhere: {e}");
    }
    if let (Ok(flag), Ok(FlagKind::Strategy(names))) = (flags.strategy(name), flags.kind(name)) {
        let table: Arc<[T]> = names
            .iter()
            .map(|n| {
                options.iter().find(|(o, _)| **o == **n).map(|(_, t)| *t).unwrap_or_else(|| {
                    tracing::warn!(flag = name, option = %n, "an option the demo does not know: read as `{default_name}`");
                    default
                })
            })
            .collect();
        return ModeFlag { flag: Some(flag), table, default };
    }
    tracing::warn!(flag = name, "no usable strategy flag: the demo keeps `{default_name}`");
    ModeFlag { flag: None, table: Arc::from([]), default }
}

fn percent(flags: &Flags, name: &str) -> Option<NumberFlag> {
    if let Err(e) = flags.define(name, FlagKind::Number { min: 0.0, max: 100.0 }, "0") {
        tracing::debug!(flag = name, "the demo reads the flag as defined elsewhere: {e}");
    }
    flags.number(name).inspect_err(|e| tracing::warn!(flag = name, "{e}: the demo sheds nothing")).ok()
}
