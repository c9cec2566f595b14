//! The lines of a token file: one token a line, optionally named `id:token`.
//!
//! Blank lines and lines starting with `#` are skipped, and surrounding whitespace is trimmed. A line with a
//! `:` is split at the first one into an id and a token (each trimmed); a line without one is a bare token.
//! What an id or a token may be is for the caller to check (the admin API refuses short or guessable tokens;
//! a client takes the first entry).
//!
//! ```
//! use brownout_foundation::token_file::entries;
//! let text = "# ops tokens\n\nops: 0123456789abcdef\n  fedcba9876543210  \n";
//! let found: Vec<_> = entries(text).map(|e| (e.line, e.id, e.token)).collect();
//! assert_eq!(found, [(3, Some("ops"), "0123456789abcdef"), (4, None, "fedcba9876543210")]);
//! ```

/// One token line of a token file (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry<'a> {
    /// Its line number, from 1.
    pub line: usize,
    /// The whole line, trimmed.
    pub text: &'a str,
    /// What stands before the first `:`, trimmed (perhaps empty); `None` in a line without `:`.
    pub id: Option<&'a str>,
    /// What stands after the first `:`, trimmed; the whole line in a line without `:`.
    pub token: &'a str,
}

/// The token lines of `text`, in order: blank lines and `#` comments skipped.
pub fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    text.lines().enumerate().filter_map(|(n, line)| {
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            return None;
        }
        let (id, token) = match text.split_once(':') {
            Some((id, token)) => (Some(id.trim()), token.trim()),
            None => (None, text),
        };
        Some(Entry { line: n + 1, text, id, token })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(text: &str) -> Vec<(usize, Option<&str>, &str)> {
        entries(text).map(|e| (e.line, e.id, e.token)).collect()
    }

    #[test]
    fn comments_and_blanks_are_skipped_and_lines_counted() {
        assert_eq!(all(""), []);
        assert_eq!(all("# only\n\n   \n\t# indented comment\n"), []);
        assert_eq!(all("\n\nabc\n"), [(3, None, "abc")]);
        assert_eq!(all("a\r\nb\r\n"), [(1, None, "a"), (2, None, "b")]);
    }

    #[test]
    fn the_first_colon_splits_and_both_sides_are_trimmed() {
        assert_eq!(all(" ops : tok:en "), [(1, Some("ops"), "tok:en")]);
        assert_eq!(all(":tok"), [(1, Some(""), "tok")]);
        assert_eq!(all("id:"), [(1, Some("id"), "")]);
        let e = entries("  a : b  ").next().unwrap();
        assert_eq!(e.text, "a : b");
    }

    #[test]
    fn a_hash_inside_a_line_is_part_of_it() {
        assert_eq!(all("id:ab#cd"), [(1, Some("id"), "ab#cd")]);
    }

    proptest! {
        #[test]
        fn every_written_entry_reads_back(
            lines in prop::collection::vec((prop::option::of("[A-Za-z0-9_.-]{1,8}"), "[!-9;-~]{1,20}", 0usize..3), 0..8)
        ) {
            // tokens drawn from visible ASCII without `:`, not starting with `#`
            let lines: Vec<_> = lines.into_iter().filter(|(_, t, _)| !t.starts_with('#')).collect();
            let mut text = String::new();
            let mut want = Vec::new();
            let mut n = 0;
            for (id, token, blanks) in &lines {
                for _ in 0..*blanks {
                    text.push_str("# comment\n\n");
                    n += 2;
                }
                n += 1;
                match id {
                    Some(id) => text.push_str(&format!("  {id} :\t{token} \n")),
                    None => text.push_str(&format!("{token}\n")),
                }
                want.push((n, id.as_deref(), token.as_str()));
            }
            prop_assert_eq!(all(&text), want);
        }
    }
}
