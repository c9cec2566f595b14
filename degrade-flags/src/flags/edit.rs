//! Editing a flag file in place: set or remove one flag's `value:` and keep every other byte (comments,
//! order, layout). Used by the `degrade` CLI.
//!
//! Both layouts of a flag are handled: a block (`name:` then indented `type:`, `default:`… lines) and a flow
//! mapping on one line (`name: { type: bool, default: false }`). Anything else is refused rather than
//! rewritten, so a file is never reformatted behind its owner's back.

/// The flag's key line: index, indentation, and the text after `name:`.
fn find_key(lines: &[&str], flag: &str) -> Option<(usize, usize)> {
    let in_flags = lines.iter().position(|l| l.trim_end() == "flags:")?;
    lines.iter().enumerate().skip(in_flags + 1).find_map(|(i, line)| {
        let indent = line.len() - line.trim_start().len();
        let rest = line.trim_start();
        let key = rest.strip_prefix(flag).or_else(|| {
            rest.strip_prefix(&format!("\"{flag}\"")).or_else(|| rest.strip_prefix(&format!("'{flag}'")))
        })?;
        (indent > 0 && key.starts_with(':')).then_some((i, indent))
    })
}

/// A scalar as YAML: bare when safe, double-quoted otherwise.
fn scalar(value: &str) -> String {
    let bare = !value.is_empty()
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
        && (!value.starts_with(['-', '+', '.']) || value.parse::<f64>().is_ok());
    if bare { value.to_owned() } else { format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")) }
}

/// Returns the text with `flag`'s `value:` set to `value` (or removed when `None`), or `None` when the flag's
/// entry is not in a layout this editor understands.
pub fn set_value(text: &str, flag: &str, value: Option<&str>) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (key, indent) = find_key(&lines.iter().map(|l| l.trim_end_matches(['\n', '\r'])).collect::<Vec<_>>(), flag)?;
    let key_line = lines[key];
    let newline = if key_line.ends_with("\r\n") { "\r\n" } else { "\n" };
    let after_colon = key_line.trim_start()[key_line.trim_start().find(':')? + 1..].trim();
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    if after_colon.starts_with('{') {
        out[key] = edit_flow(key_line, value)?;
    } else if after_colon.is_empty() || after_colon.starts_with('#') {
        // A block: the following lines indented deeper belong to the flag.
        let children: Vec<usize> = (key + 1..lines.len())
            .take_while(|&i| {
                let l = lines[i].trim_end_matches(['\n', '\r']);
                l.trim().is_empty() || l.trim_start().starts_with('#') || l.len() - l.trim_start().len() > indent
            })
            .filter(|&i| !lines[i].trim().is_empty() && !lines[i].trim_start().starts_with('#'))
            .collect();
        let child_indent = children.first().map(|&i| lines[i].len() - lines[i].trim_start().len())?;
        let existing = children.iter().copied().find(|&i| lines[i].trim_start().starts_with("value:"));
        match (existing, value) {
            (Some(i), Some(v)) => {
                let comment = lines[i].find(" #").map(|at| lines[i][at..].trim_end_matches(['\n', '\r']).to_owned());
                out[i] =
                    format!("{}value: {}{}{newline}", " ".repeat(child_indent), scalar(v), comment.unwrap_or_default());
            }
            (Some(i), None) => out[i].clear(),
            (None, Some(v)) => {
                let last = *children.last()?;
                if !out[last].ends_with('\n') {
                    out[last].push_str(newline);
                }
                out[last].push_str(&format!("{}value: {}{newline}", " ".repeat(child_indent), scalar(v)));
            }
            (None, None) => {}
        }
    } else {
        return None;
    }
    Some(out.concat())
}

/// Edits `name: { ... }` on one line.
fn edit_flow(line: &str, value: Option<&str>) -> Option<String> {
    let open = line.find('{')?;
    let close = line.rfind('}')?;
    let body = &line[open + 1..close];
    let mut fields: Vec<String> = body.split(',').map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect();
    if fields.iter().any(|f| f.contains(['{', '[', '"', '\''])) {
        return None; // nested or quoted values: not a layout we rewrite
    }
    fields.retain(|f| !f.starts_with("value:"));
    if let Some(v) = value {
        fields.push(format!("value: {}", scalar(v)));
    }
    Some(format!("{}{{ {} }}{}", &line[..open], fields.join(", "), &line[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "# flags\nflags:\n  # the venue\n  execution.partial_fill_mode:\n    type: bool   # on or off\n    default: false\n  other:\n    type: bool\n    default: true\n";

    #[test]
    fn block_set_insert_replace_remove() {
        let set = set_value(BLOCK, "execution.partial_fill_mode", Some("true")).unwrap();
        assert!(set.contains("    default: false\n    value: true\n  other:"), "{set}");
        assert!(set.starts_with("# flags\nflags:\n  # the venue\n"), "comments kept");
        let again = set_value(&set, "execution.partial_fill_mode", Some("false")).unwrap();
        assert!(again.contains("    value: false\n"), "{again}");
        assert_eq!(again.matches("value:").count(), 1);
        let removed = set_value(&again, "execution.partial_fill_mode", None).unwrap();
        assert_eq!(removed, BLOCK);
    }

    #[test]
    fn flow_set_and_remove() {
        let text = "flags:\n  a.b: { type: bool, default: false }  # note\n";
        let set = set_value(text, "a.b", Some("true")).unwrap();
        assert_eq!(set, "flags:\n  a.b: { type: bool, default: false, value: true }  # note\n");
        assert_eq!(set_value(&set, "a.b", None).unwrap(), "flags:\n  a.b: { type: bool, default: false }  # note\n");
    }

    #[test]
    fn unknown_layouts_are_refused() {
        assert_eq!(set_value("flags:\n  a.b: true\n", "a.b", Some("x")), None);
        assert_eq!(set_value("flags:\n  c.d: { type: bool, default: false }\n", "a.b", Some("x")), None);
    }

    #[test]
    fn scalars_are_quoted_when_needed() {
        assert_eq!(scalar("cached"), "cached");
        assert_eq!(scalar("12.5"), "12.5");
        assert_eq!(scalar("two words"), "\"two words\"");
    }
}
