//! Route globs over request paths, matched without allocation.
//!
//! Segments are separated by `/`. Within a segment `*` matches any run of characters and `?` one character;
//! a segment that is exactly `**` matches any number of whole segments, including none. Everything else is
//! literal. `/api/**` matches `/api`, `/api/` and `/api/v1/quotes`; `/users/*/orders` matches
//! `/users/42/orders` but not `/users/42/x/orders`.

use std::fmt;

/// A compiled route glob.
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
    /// Anything else: the general matcher.
    General,
}

impl RouteGlob {
    /// Compiles a pattern. Every string is a valid pattern.
    pub fn new(pattern: &str) -> Self {
        let has_wild = |s: &str| s.bytes().any(|b| b == b'*' || b == b'?');
        let shape = if !has_wild(pattern) {
            Shape::Literal
        } else if let Some(prefix) = pattern.strip_suffix("/**").filter(|p| !has_wild(p)) {
            Shape::Prefix(prefix.len())
        } else {
            Shape::General
        };
        Self { pattern: pattern.into(), shape }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Does `path` match?
    #[inline]
    pub fn matches(&self, path: &str) -> bool {
        match self.shape {
            Shape::Literal => *self.pattern == *path,
            Shape::Prefix(len) => {
                // `/api/**` takes `/api`, `/api/` and anything under `/api/`.
                let prefix = &self.pattern.as_bytes()[..len];
                let path = path.as_bytes();
                path.starts_with(prefix) && (path.len() == len || path[len] == b'/')
            }
            Shape::General => match_segments(self.pattern.as_bytes(), path.as_bytes()),
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

fn match_segments(pattern: &[u8], path: &[u8]) -> bool {
    let (pseg, prest, pmore) = split(pattern);
    if pseg == b"**" {
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
    let (seg, rest, more) = split(path);
    if !match_segment(pseg, seg) {
        return false;
    }
    match (pmore, more) {
        (true, true) => match_segments(prest, rest),
        (false, false) => true,
        // The pattern goes on: only a final `**` may match nothing more (`/api/**` takes `/api`).
        (true, false) => prest == b"**",
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
    fn double_star_in_the_middle() {
        assert!(m("/a/**/z", "/a/z"));
        assert!(m("/a/**/z", "/a/b/c/z"));
        assert!(!m("/a/**/z", "/a/b/c/y"));
        assert!(m("**", "/anything/at/all"));
    }
}
