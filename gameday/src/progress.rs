//! Progress on standard error, and output that never breaks it.
//!
//! On a terminal one status line is redrawn in place at the bottom (`[2/7] rate_limit_flood · fault armed ·
//! 12.4 s left`); every other line the run prints — its tables, `CHAOS_EVENT:` lines, log lines written
//! through [`LogWriter`] — first clears the status line, then prints, then redraws it. Not on a terminal (or
//! with scenarios running at once), each phase is one line instead.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
struct Status {
    /// The status line shown now (empty: none).
    shown: String,
}

static STATUS: Mutex<Status> = Mutex::new(Status { shown: String::new() });

fn status() -> std::sync::MutexGuard<'static, Status> {
    STATUS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn clear(err: &mut impl Write, shown: &str) {
    if !shown.is_empty() {
        let _ = write!(err, "\r{}\r", " ".repeat(shown.chars().count()));
    }
}

/// Prints one line on standard output without breaking the status line.
pub fn line(text: &str) {
    let status = status();
    let mut err = std::io::stderr().lock();
    clear(&mut err, &status.shown);
    let _ = err.flush();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
    let _ = write!(err, "{}", status.shown);
    let _ = err.flush();
}

/// Writes `bytes` on standard error without breaking the status line (whole lines at a time).
fn err_bytes(bytes: &[u8]) {
    let status = status();
    let mut err = std::io::stderr().lock();
    clear(&mut err, &status.shown);
    let _ = err.write_all(bytes);
    let _ = write!(err, "{}", status.shown);
    let _ = err.flush();
}

/// A writer for log lines (give it to `tracing_subscriber::fmt().with_writer(LogWriter::default)`): each
/// line goes to standard error above the status line.
#[derive(Debug, Default)]
pub struct LogWriter {
    buffer: Vec<u8>,
}

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if let Some(end) = self.buffer.iter().rposition(|b| *b == b'\n') {
            let rest = self.buffer.split_off(end + 1);
            err_bytes(&std::mem::replace(&mut self.buffer, rest));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            let mut text = std::mem::take(&mut self.buffer);
            text.push(b'\n');
            err_bytes(&text);
        }
        Ok(())
    }
}

/// Draws `text` as the status line (cut to the terminal's width), in place of the one shown. For a command
/// that shows its own progress on a terminal (the `load` example); [`line()`], [`LogWriter`] and
/// [`clear_status`] keep it intact around other output.
pub fn show_status(text: &str) {
    let text = fit(text, width());
    let mut status = status();
    let mut err = std::io::stderr().lock();
    clear(&mut err, &status.shown);
    let _ = write!(err, "{text}");
    let _ = err.flush();
    status.shown = text;
}

/// Removes the status line, if one is shown (before the process exits, or prints on its own).
pub fn clear_status() {
    let mut status = status();
    if !status.shown.is_empty() {
        let mut err = std::io::stderr().lock();
        clear(&mut err, &status.shown);
        let _ = err.flush();
        status.shown.clear();
    }
}

/// The status line's width at most: one column short of the terminal's (`COLUMNS`, else 80), so it never
/// wraps (a `\r` returns to the start of the last row only, and a wrapped line would never be cleared).
fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|c| *c > 10).unwrap_or(80) - 1
}

/// `text` cut to `width` characters (the cut marked with `…`).
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// How a scenario shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Style {
    /// Nothing.
    Off,
    /// The status line, redrawn in place (standard error is a terminal, one scenario at a time).
    Bar,
    /// One line per phase on standard error.
    Lines,
}

impl Style {
    /// `Bar` on a terminal, else `Lines`; `Lines` whenever scenarios run at once.
    pub fn detect(parallel: bool) -> Style {
        if !parallel && std::io::stderr().is_terminal() { Style::Bar } else { Style::Lines }
    }
}

/// One scenario's progress: which of how many, its phase, the time left.
#[derive(Debug, Clone)]
pub struct Progress {
    name: String,
    position: (usize, usize),
    style: Style,
    phase: String,
    total: Duration,
}

impl Progress {
    /// The progress of scenario `name`, number `index + 1` of `count`.
    pub fn new(name: &str, index: usize, count: usize, style: Style) -> Progress {
        Progress {
            name: name.to_owned(),
            position: (index + 1, count),
            style,
            phase: String::new(),
            total: Duration::ZERO,
        }
    }

    /// Sets the scenario's whole planned length (for the time left).
    pub fn with_total(mut self, total: Duration) -> Progress {
        self.total = total;
        self
    }

    fn label(&self) -> String {
        format!("[{}/{}] {}", self.position.0, self.position.1, self.name)
    }

    /// A new phase of `length` (zero: an instant, as the verdict).
    pub fn phase(&mut self, phase: &str, length: Duration) {
        self.phase = phase.to_owned();
        if self.style == Style::Lines {
            let text = if length.is_zero() {
                format!("{} {phase}\n", self.label())
            } else {
                format!("{} {phase} ({:.1} s)\n", self.label(), length.as_secs_f64())
            };
            err_bytes(text.as_bytes());
        }
    }

    /// Redraws the status line at `elapsed` into the scenario.
    pub fn show(&self, elapsed: Duration) {
        if self.style != Style::Bar {
            return;
        }
        let left = self.total.saturating_sub(elapsed).as_secs_f64();
        show_status(&format!("{} · {} · {left:.1} s left", self.label(), self.phase));
    }

    /// Removes the status line.
    pub fn clear(&self) {
        if self.style == Style::Bar {
            clear_status();
        }
    }
}

impl Drop for Progress {
    /// A scenario that ends early (an error: a replica refused to arm) leaves no status line behind for the
    /// next line to be glued to.
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_status_is_cut_to_the_width() {
        assert_eq!(fit("[1/2] short · before · 1.0 s left", 79), "[1/2] short · before · 1.0 s left");
        let cut = fit(&format!("[1/2] {} · before", "x".repeat(100)), 40);
        assert_eq!(cut.chars().count(), 40);
        assert!(cut.ends_with('…'), "{cut}");
    }
}
