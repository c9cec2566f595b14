//! Route patterns over request paths, matched without allocation: globs and axum's route templates.
//!
//! Segments are separated by `/`. Within a segment `*` matches any run of characters and `?` one character;
//! a segment that is exactly `**` matches any number of whole segments, including none. Route templates as
//! axum 0.8 writes them are accepted too, with axum's meaning: a segment `{name}` matches one non-empty
//! segment, and a last segment `{*name}` matches the non-empty rest of the path (one or more segments, `/`
//! included). Everything else is literal. `/api/**` matches `/api`, `/api/` and `/api/v1/quotes`;
//! `/users/*/orders` matches `/users/42/orders` but not `/users/42/x/orders`; `/api/quotes/{symbol}` matches
//! `/api/quotes/ACME` but not `/api/quotes/` nor `/api/quotes/A/B`; `/files/{*path}` matches `/files/a/b.txt`
//! but not `/files/`.
//!
//! [`RouteGlob::parse`] refuses a malformed template (`/a/{`, `/a/{}`, `/a/{*rest}/b`, `/a/x{id}`): a `{` or
//! `}` may appear only as a whole-segment `{name}` or `{*name}`, the name made of `[A-Za-z0-9_]`.

use std::fmt;

/// A compiled route pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct RouteGlob {
    pattern: Box<str>,
    shape: Shape,
}

#[derive(Clone, PartialEq, Eq)]
enum Shape {
    /// No wildcard: plain equality.
    Literal,
    /// `prefix/**` with a literal prefix: a prefix test.
    Prefix(usize),
    /// Anything else: the general matcher over the pattern's segments.
    General(Box<[Seg]>),
}

#[derive(Clone, PartialEq, Eq)]
enum Seg {
    /// Literal text with `*` and `?` wildcards, within one segment.
    Glob(Box<[u8]>),
    /// `**`: any number of whole segments.
    AnySegments,
    /// `{name}`: one non-empty segment.
    Param,
    /// `{*name}` (last): the non-empty rest of the path.
    Rest,
}

/// Why a route pattern was refused (see [`RouteGlob::parse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    reason: String,
}

impl RouteError {
    /// Why the pattern was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for RouteError {}

/// A segment's template, if it is one: `Ok(None)` for a segment without braces.
fn template(seg: &str, last: bool) -> Result<Option<Seg>, RouteError> {
    if !seg.contains(['{', '}']) {
        return Ok(None);
    }
    let refuse = |why: &str| Err(RouteError { reason: format!("segment `{}`: {why}", seg.escape_debug()) });
    let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
        return refuse("a parameter is a whole segment, `{name}` or `{*name}` (a literal `{` or `}` is not supported)");
    };
    let (rest, name) = match inner.strip_prefix('*') {
        Some(name) => (true, name),
        None => (false, inner),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return refuse("a parameter's name is one or more of [A-Za-z0-9_]");
    }
    if rest && !last {
        return refuse("a catch-all `{*name}` must be the last segment");
    }
    Ok(Some(if rest { Seg::Rest } else { Seg::Param }))
}

impl RouteGlob {
    /// Compiles a pattern, refusing a malformed template with the reason.
    pub fn parse(pattern: &str) -> Result<Self, RouteError> {
        let count = pattern.split('/').count();
        let mut segs = Vec::with_capacity(count);
        let mut templated = false;
        for (i, seg) in pattern.split('/').enumerate() {
            segs.push(match template(seg, i + 1 == count)? {
                Some(t) => {
                    templated = true;
                    t
                }
                None if seg == "**" => Seg::AnySegments,
                None => Seg::Glob(seg.as_bytes().into()),
            });
        }
        let has_wild = |s: &str| s.bytes().any(|b| b == b'*' || b == b'?');
        let shape = if templated {
            Shape::General(segs.into_boxed_slice())
        } else if !has_wild(pattern) {
            Shape::Literal
        } else if let Some(prefix) = pattern.strip_suffix("/**").filter(|p| !has_wild(p)) {
            Shape::Prefix(prefix.len())
        } else {
            Shape::General(segs.into_boxed_slice())
        };
        Ok(Self { pattern: pattern.into(), shape })
    }

    /// Compiles a pattern. Every string is a pattern here: a malformed template (see [`parse`](Self::parse),
    /// which refuses it) is taken as a glob whose braces are literal characters.
    pub fn new(pattern: &str) -> Self {
        Self::parse(pattern).unwrap_or_else(|_| {
            let segs = pattern
                .split('/')
                .map(|s| if s == "**" { Seg::AnySegments } else { Seg::Glob(s.as_bytes().into()) })
                .collect();
            Self { pattern: pattern.into(), shape: Shape::General(segs) }
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Does `path` match?
    #[inline]
    pub fn matches(&self, path: &str) -> bool {
        match &self.shape {
            Shape::Literal => *self.pattern == *path,
            Shape::Prefix(len) => {
                // `/api/**` takes `/api`, `/api/` and anything under `/api/`.
                let len = *len;
                let prefix = &self.pattern.as_bytes()[..len];
                let path = path.as_bytes();
                path.starts_with(prefix) && (path.len() == len || path[len] == b'/')
            }
            Shape::General(segs) => match_segments(segs, path.as_bytes()),
        }
    }

    /// The route as bytes: a path matches when it equals them (`true`: a literal route) or starts with them
    /// and then ends or goes on with `/` (`false`: `prefix/**`); `None` for any other pattern.
    pub(crate) fn literal(&self) -> Option<(&[u8], bool)> {
        match &self.shape {
            Shape::Literal => Some((self.pattern.as_bytes(), true)),
            Shape::Prefix(len) => Some((&self.pattern.as_bytes()[..*len], false)),
            Shape::General(_) => None,
        }
    }

    /// [`matches`](Self::matches) for a path known to start with the pattern's
    /// [`literal_prefix`](crate::index::literal_prefix) (the rule index proved it): only what the prefix does
    /// not settle is checked.
    #[inline]
    pub(crate) fn matches_past_prefix(&self, path: &str) -> bool {
        match &self.shape {
            // The literal prefix is the pattern less a trailing `/`: the same length and last byte settle it.
            Shape::Literal => {
                path.len() == self.pattern.len() && path.as_bytes().last() == self.pattern.as_bytes().last()
            }
            Shape::Prefix(len) => {
                let path = path.as_bytes();
                path.len() == *len || path.get(*len) == Some(&b'/')
            }
            Shape::General(segs) => match_segments(segs, path.as_bytes()),
        }
    }
}

impl fmt::Debug for RouteGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RouteGlob").field(&self.pattern).finish()
    }
}

/// Splits off the first segment: (segment, rest after the `/`, whether a `/` followed).
#[inline]
fn split(s: &[u8]) -> (&[u8], &[u8], bool) {
    match s.iter().position(|&b| b == b'/') {
        Some(i) => (&s[..i], &s[i + 1..], true),
        None => (s, &[], false),
    }
}

fn match_segments(pattern: &[Seg], path: &[u8]) -> bool {
    let Some((pseg, prest)) = pattern.split_first() else {
        return false;
    };
    let pmore = !prest.is_empty();
    match pseg {
        Seg::AnySegments => {
            if !pmore {
                // A trailing `**` takes everything that is left.
                return true;
            }
            // Zero segments, or consume one path segment and try again.
            let mut path = path;
            loop {
                if match_segments(prest, path) {
                    return true;
                }
                let (_, rest, more) = split(path);
                if !more {
                    return false;
                }
                path = rest;
            }
        }
        // The rest of the path, `/` included, non-empty (axum's `{*name}`); it is always the last segment.
        Seg::Rest => return !path.is_empty() && !pmore,
        Seg::Param | Seg::Glob(_) => {}
    }
    let (seg, rest, more) = split(path);
    let fits = match pseg {
        Seg::Param => !seg.is_empty(),
        Seg::Glob(glob) => match_segment(glob, seg),
        Seg::AnySegments | Seg::Rest => false,
    };
    if !fits {
        return false;
    }
    match (pmore, more) {
        (true, true) => match_segments(prest, rest),
        (false, false) => true,
        // The pattern goes on: only final `**`s may match nothing more (`/api/**` takes `/api`).
        (true, false) => prest.iter().all(|s| *s == Seg::AnySegments),
        (false, true) => false,
    }
}

/// Wildcard match within one segment (`*` any run, `?` one byte), iterative with one backtrack point.
fn match_segment(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) && pattern[p] != b'*' {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        RouteGlob::new(p).matches(s)
    }

    #[test]
    fn literal() {
        assert!(m("/api/quotes", "/api/quotes"));
        assert!(!m("/api/quotes", "/api/quotes/1"));
    }

    #[test]
    fn prefix() {
        assert!(m("/api/**", "/api"));
        assert!(m("/api/**", "/api/"));
        assert!(m("/api/**", "/api/v1/quotes"));
        assert!(!m("/api/**", "/apix"));
        assert!(!m("/api/**", "/other/api"));
    }

    #[test]
    fn star_stays_in_segment() {
        assert!(m("/users/*/orders", "/users/42/orders"));
        assert!(!m("/users/*/orders", "/users/42/x/orders"));
        assert!(m("/files/*.json", "/files/a.json"));
        assert!(!m("/files/*.json", "/files/a/b.json"));
        assert!(m("/v?/x", "/v1/x"));
        assert!(!m("/v?/x", "/v12/x"));
    }

    #[test]
    fn axum_templates() {
        assert!(m("/api/quotes/{symbol}", "/api/quotes/ACME"));
        assert!(!m("/api/quotes/{symbol}", "/api/quotes/"));
        assert!(!m("/api/quotes/{symbol}", "/api/quotes"));
        assert!(!m("/api/quotes/{symbol}", "/api/quotes/A/B"));
        assert!(m("/users/{id}/orders/{order_id}", "/users/7/orders/9"));
        assert!(m("/files/{*path}", "/files/a"));
        assert!(m("/files/{*path}", "/files/a/b.txt"));
        assert!(m("/files/{*path}", "/files/a/"));
        assert!(!m("/files/{*path}", "/files/"));
        assert!(!m("/files/{*path}", "/files"));
        assert!(m("/{*rest}", "/x"));
        assert!(!m("/{*rest}", "/"));
        assert!(m("/v?/{id}/**", "/v1/42/a/b"));
    }

    #[test]
    fn malformed_templates_are_refused_with_the_segment() {
        for (bad, why) in [
            ("/a/{", "whole segment"),
            ("/a/}", "whole segment"),
            ("/a/{}", "name"),
            ("/a/{*}", "name"),
            ("/a/{x-y}", "name"),
            ("/a/x{id}", "whole segment"),
            ("/a/{id}.json", "whole segment"),
            ("/a/{*rest}/b", "last segment"),
            ("/{*rest}/", "last segment"),
        ] {
            let e = RouteGlob::parse(bad).unwrap_err();
            assert!(e.reason().contains(why), "{bad}: {e}");
        }
        // `new` keeps every string a pattern: the braces are literal.
        assert!(m("/a/{", "/a/{"));
    }

    #[test]
    fn double_star_in_the_middle() {
        assert!(m("/a/**/z", "/a/z"));
        assert!(m("/a/**/z", "/a/b/c/z"));
        assert!(!m("/a/**/z", "/a/b/c/y"));
        assert!(m("**", "/anything/at/all"));
    }
}
