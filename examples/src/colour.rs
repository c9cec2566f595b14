//! Whether the binaries colour their log lines: only on a terminal, and never when `NO_COLOR` is set to a
//! non-empty value (<https://no-color.org>).

use std::ffi::OsStr;
use std::io::IsTerminal as _;

/// Colour for log lines on standard error: it is a terminal and `NO_COLOR` is unset or empty.
pub fn stderr_logs() -> bool {
    colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref())
}

/// The rule: colour only on a terminal, and not when `no_color` (the `NO_COLOR` variable) holds anything.
pub fn colour(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_is_coloured_unless_no_color_holds_a_value() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))), "an empty NO_COLOR is as if unset");
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(true, Some(OsStr::new("0"))), "any value turns colour off, even 0");
    }

    #[test]
    fn a_pipe_or_file_is_never_coloured() {
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
