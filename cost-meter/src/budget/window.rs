//! Heavy-job windows: `"22:00-06:00"`, in UTC, possibly wrapping midnight.

use std::fmt;
use std::str::FromStr;

/// A daily window in UTC, from `start` (included) to `end` (excluded), in minutes after midnight.
///
/// A window whose end is before its start wraps midnight: `22:00-06:00` holds 22:00–23:59 and 00:00–05:59.
/// A window from a time to the same time is refused (empty or whole day: say `00:00-24:00` for the whole day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeavyWindow {
    start: u16,
    end: u16,
}

const DAY: u16 = 24 * 60;

impl HeavyWindow {
    /// A window from minute `start` to minute `end` of the day (`end` may be 1440, `24:00`).
    pub fn new(start: u16, end: u16) -> Result<Self, String> {
        if start >= DAY || end > DAY || start == end {
            return Err(format!("the window {}-{} is empty or out of range", hhmm(start), hhmm(end)));
        }
        Ok(HeavyWindow { start, end })
    }

    /// Whether the minute of the day `minute` (0–1439) is inside.
    pub fn contains_minute(self, minute: u16) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// Whether a Unix time (seconds, UTC) is inside.
    pub fn contains_unix(self, unix: i64) -> bool {
        self.contains_minute(minute_of_day(unix))
    }

    /// Minutes from the minute of the day `minute` until the window next opens (0 if open).
    pub fn minutes_until_open(self, minute: u16) -> u16 {
        if self.contains_minute(minute) { 0 } else { (self.start + DAY - minute) % DAY }
    }
}

/// The minute of the UTC day of a Unix time.
pub(crate) fn minute_of_day(unix: i64) -> u16 {
    (unix.rem_euclid(86_400) / 60) as u16
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

impl FromStr for HeavyWindow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a window: expected HH:MM-HH:MM in UTC, such as 22:00-06:00");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let (start, end) = (parse_hhmm(a.trim()).ok_or_else(bad)?, parse_hhmm(b.trim()).ok_or_else(bad)?);
        if start == DAY {
            return Err(bad());
        }
        HeavyWindow::new(start, end).map_err(|_| format!("`{s}` is an empty window: start and end are the same"))
    }
}

impl fmt::Display for HeavyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", hhmm(self.start), hhmm(self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_wrap_midnight() {
        let night: HeavyWindow = "22:00-06:00".parse().unwrap();
        assert!(night.contains_minute(22 * 60));
        assert!(night.contains_minute(0));
        assert!(night.contains_minute(5 * 60 + 59));
        assert!(!night.contains_minute(6 * 60));
        assert!(!night.contains_minute(12 * 60));
        assert_eq!(night.minutes_until_open(21 * 60), 60);
        assert_eq!(night.to_string(), "22:00-06:00");
        let all: HeavyWindow = "00:00-24:00".parse().unwrap();
        assert!((0..DAY).all(|m| all.contains_minute(m)));
        for bad in ["22:00", "25:00-01:00", "10:00-10:00", "1:00-02:00", "10:60-11:00", "24:00-01:00", "aa:bb-cc:dd"] {
            assert!(bad.parse::<HeavyWindow>().is_err(), "{bad}");
        }
    }
}
