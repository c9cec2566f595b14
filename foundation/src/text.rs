//! Small checks on config text.

/// Is `text` nothing but whitespace, YAML comments (`# …`) and document markers (`---`, `...`)?
///
/// A config or flag file like that is far more often a write caught half-way (a truncate before the write)
/// than a wish for an empty config; callers refuse it and keep what they had.
///
/// ```
/// use brownout_foundation::text::is_blank_document;
/// assert!(is_blank_document("---\n# nothing yet\n\n...\n"));
/// assert!(!is_blank_document("rules: []\n"));
/// ```
pub fn is_blank_document(text: &str) -> bool {
    text.lines().map(str::trim).all(|line| line.is_empty() || line.starts_with('#') || line == "---" || line == "...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn blanks_comments_and_markers_are_blank() {
        for text in ["", "\n", "  \t\n", "# a\n  # b", "---", "...", " --- \n#x\n ... ", "\r\n# c\r\n"] {
            assert!(is_blank_document(text), "{text:?}");
        }
    }

    #[test]
    fn any_content_is_not() {
        for text in ["rules: []", "{}", "# c\nflags: {}", "--- a", "----", "..", "x # y", "\"#\""] {
            assert!(!is_blank_document(text), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn a_line_of_content_anywhere_makes_it_not_blank(
            blank in prop::collection::vec(prop::sample::select(vec!["", "  ", "# c", "---", "...", " # x "]), 0..6),
            at in 0usize..6,
            content in "[a-z{\\[][a-z: \\]}]{0,10}",
        ) {
            prop_assert!(is_blank_document(&blank.join("\n")));
            let mut lines = blank.clone();
            lines.insert(at.min(lines.len()), &content);
            prop_assert!(!is_blank_document(&lines.join("\n")));
        }
    }
}
