//! Calendar months in UTC, on `brownout_foundation::time`'s civil-date arithmetic (Howard Hinnant's
//! `days_from_civil`) rather than a date crate: budgets need month boundaries and an RFC 3339 stamp, nothing more.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use brownout_foundation::time::{civil_from_days, days_from_civil};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

// Seconds since the Unix epoch, and the RFC 3339 stamp (`brownout_foundation::time`, re-exported by
// `crate::budget` as before).
pub(crate) use brownout_foundation::time::{rfc3339, unix_seconds};

/// A calendar month in UTC: the period a monthly budget covers.
///
/// Written `2026-11` in checkpoints and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u8,
}

impl Month {
    /// The month `month` (1–12) of `year`; `None` if `month` is out of range.
    pub fn new(year: i32, month: u8) -> Option<Self> {
        (1..=12).contains(&month).then_some(Month { year, month })
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The month a Unix time (seconds, UTC) falls in. Non-finite times count as the epoch.
    pub fn of_unix(unix: f64) -> Self {
        let secs = if unix.is_finite() { unix.floor().clamp(-1e15, 1e15) as i64 } else { 0 };
        let (y, m, _) = civil_from_days(secs.div_euclid(86_400));
        Month { year: y.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32, month: m as u8 }
    }

    /// The month a `SystemTime` falls in.
    pub fn of(t: SystemTime) -> Self {
        Self::of_unix(unix_seconds(t))
    }

    /// The month after this one.
    pub fn next(self) -> Self {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { month: self.month + 1, ..self } }
    }

    /// Its first second, as a Unix time.
    pub fn start_unix(self) -> i64 {
        days_from_civil(i64::from(self.year), u32::from(self.month), 1) * 86_400
    }

    /// The first second of the next month, as a Unix time.
    pub fn end_unix(self) -> i64 {
        self.next().start_unix()
    }

    /// Its length in seconds.
    pub fn seconds(self) -> i64 {
        self.end_unix() - self.start_unix()
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a month: expected YYYY-MM");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let (y, m) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        Month::new(y, m).ok_or_else(bad)
    }
}

impl Serialize for Month {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Month {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_have_their_calendar_lengths() {
        let feb24 = Month::new(2024, 2).unwrap();
        assert_eq!(feb24.seconds(), 29 * 86_400);
        assert_eq!(Month::new(2026, 2).unwrap().seconds(), 28 * 86_400);
        assert_eq!(Month::new(2026, 12).unwrap().next(), Month::new(2027, 1).unwrap());
        let nov = Month::new(2026, 11).unwrap();
        assert_eq!(Month::of_unix(nov.start_unix() as f64), nov);
        assert_eq!(Month::of_unix(nov.start_unix() as f64 - 0.5), Month::new(2026, 10).unwrap());
        assert_eq!(nov.to_string(), "2026-11");
        assert_eq!("2026-11".parse::<Month>(), Ok(nov));
        assert!("2026-13".parse::<Month>().is_err());
        assert_eq!(rfc3339(1_795_658_512), "2026-11-26T02:01:52Z");
    }
}
