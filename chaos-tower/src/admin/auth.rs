//! Bearer tokens: the [`TokenSet`], its file format, the constant-time check, and the slowdown of failures.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::HeaderMap;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The shortest token accepted, in bytes.
pub const MIN_TOKEN_LEN: usize = 16;
/// The longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 1024;
/// The longest token id accepted.
const MAX_ID_LEN: usize = 64;

/// The tokens that may use the admin API, each with an id that names it in the audit log.
///
/// Tokens are at least [`MIN_TOKEN_LEN`] bytes of visible ASCII (what an `Authorization` header can carry);
/// use long random secrets (32 or more characters, e.g. `openssl rand -hex 32`): their entropy, not the
/// slowdown of failures, is what makes guessing hopeless. A token never appears in an error, a log line,
/// the audit log or a response; `Debug` shows the ids only.
///
/// The file format ([`from_file`](Self::from_file), [`parse`](Self::parse)): one token a line, blank lines
/// and lines starting with `#` ignored, surrounding whitespace trimmed. A line `id:token` names the token
/// (`id` is 1–64 of `[A-Za-z0-9_.-]`); a line without `:` is a token whose id is `line-N` (its line number),
/// so a file holding one bare token works as is. A token containing `:` must therefore be written with an id.
#[derive(Clone, Default)]
pub struct TokenSet {
    tokens: Vec<(String, Vec<u8>)>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet").field("ids", &self.ids().collect::<Vec<_>>()).finish()
    }
}

/// A token or token file that was refused. It names the line and the reason, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    reason: String,
}

impl TokenError {
    fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }

    /// Why the token or file was refused.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "admin token: {}", self.reason)
    }
}

impl std::error::Error for TokenError {}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn check_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!("is {} bytes long; at least {MIN_TOKEN_LEN} are needed", token.len()));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(format!("is longer than {MAX_TOKEN_LEN} bytes"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be visible ASCII without spaces (it travels in an HTTP header)".into());
    }
    Ok(())
}

impl TokenSet {
    /// An empty set (an API built with it refuses to start).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token named `id`. Refuses an invalid id, a duplicate id, or a short or non-ASCII token.
    pub fn with(mut self, id: &str, token: &str) -> Result<Self, TokenError> {
        if !valid_id(id) {
            return Err(TokenError::new(format!("id `{}` must be 1-64 of [A-Za-z0-9_.-]", id.escape_debug())));
        }
        if self.tokens.iter().any(|(i, _)| i == id) {
            return Err(TokenError::new(format!("id `{id}` is given twice")));
        }
        check_token(token).map_err(|r| TokenError::new(format!("the token of `{id}` {r}")))?;
        self.tokens.push((id.to_owned(), token.as_bytes().to_vec()));
        Ok(self)
    }

    /// Parses the token file format (see the type's documentation). At least one token is required.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let mut set = Self::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, token) = match line.split_once(':') {
                Some((id, token)) => (id.trim().to_owned(), token.trim()),
                None => (format!("line-{}", n + 1), line),
            };
            set = set.with(&id, token).map_err(|e| TokenError::new(format!("line {}: {}", n + 1, e.reason)))?;
        }
        if set.tokens.is_empty() {
            return Err(TokenError::new("no token given"));
        }
        Ok(set)
    }

    /// Reads and [`parse`](Self::parse)s a token file; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TokenError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokenError::new(format!("{}: cannot read the file: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| TokenError::new(format!("{}: {}", path.display(), e.reason)))
    }

    /// The ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|(id, _)| id.as_str())
    }

    /// Is the set empty?
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of the token equal to `given`, comparing against every token in constant time (no early exit).
    pub fn check(&self, given: &[u8]) -> Option<&str> {
        let mut found = 0u32;
        for (i, (_, token)) in self.tokens.iter().enumerate() {
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            found = u32::conditional_select(&found, &index, token.as_slice().ct_eq(given));
        }
        let index = usize::try_from(found).ok()?.checked_sub(1)?;
        self.tokens.get(index).map(|(id, _)| id.as_str())
    }

    /// The id of the token of `Authorization: Bearer <token>`; `None` when the header is missing, repeated,
    /// garbled or wrong.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Option<&str> {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let value = value.as_bytes();
        let (scheme, token) = value.split_at_checked(7)?;
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return None;
        }
        self.check(token)
    }
}

/// How failed authentications are slowed down. See [`AdminApiBuilder::throttle`](super::AdminApiBuilder).
///
/// Within a window (starting at the first failure) the first `free` failures are answered at once; each
/// further failure is answered `401` only after a delay that starts at `base` and doubles with every failure,
/// up to `cap`. At most `max_held` failed requests wait at once; a failure beyond that is answered `429` with
/// `Retry-After` at once. A request with a valid token is never delayed nor refused, so operators keep their
/// kill switch while someone hammers the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Failures answered without delay in each window.
    pub free: u32,
    /// How long a window lasts after its first failure.
    pub window: Duration,
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
    /// How many failed requests may be held (delayed) at once.
    pub max_held: usize,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            free: 5,
            window: Duration::from_secs(60),
            base: Duration::from_millis(250),
            cap: Duration::from_secs(10),
            max_held: 64,
        }
    }
}

/// What to do with a failed authentication.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Penalty {
    /// Answer `401` now.
    None,
    /// Answer `401` after this delay (holding the permit meanwhile).
    Delay(Duration),
    /// Too many failures held already: answer `429` with this `Retry-After`.
    Refuse(Duration),
}

/// The failure counter behind [`Throttle`].
#[derive(Debug)]
pub(crate) struct Failures {
    config: Throttle,
    state: Mutex<Option<(Instant, u32)>>,
    held: Arc<Semaphore>,
}

impl Failures {
    pub(crate) fn new(config: Throttle) -> Self {
        Self { config, state: Mutex::new(None), held: Arc::new(Semaphore::new(config.max_held.max(1))) }
    }

    /// Counts one failure and says how to answer it; the permit, when given, must be held while waiting.
    pub(crate) fn fail(&self) -> (Penalty, Option<tokio::sync::OwnedSemaphorePermit>) {
        let now = Instant::now();
        let count = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let (start, count) = match *state {
                Some((start, count)) if now.duration_since(start) < self.config.window => (start, count),
                _ => (now, 0),
            };
            let count = count.saturating_add(1);
            *state = Some((start, count));
            count
        };
        let Some(over) = count.checked_sub(self.config.free).filter(|&n| n > 0) else {
            return (Penalty::None, None);
        };
        let factor = 2u32.saturating_pow(over.saturating_sub(1).min(31));
        let delay = self.config.base.saturating_mul(factor).min(self.config.cap);
        match self.held.clone().try_acquire_owned() {
            Ok(permit) => (Penalty::Delay(delay), Some(permit)),
            Err(_) => (Penalty::Refuse(delay.max(Duration::from_secs(1))), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_format_names_tokens_and_refuses_weak_ones() {
        let set = TokenSet::parse("# ops\nalice:0123456789abcdef\n\n  fedcba9876543210  \n").unwrap();
        assert_eq!(set.ids().collect::<Vec<_>>(), ["alice", "line-4"]);
        assert_eq!(set.check(b"0123456789abcdef"), Some("alice"));
        assert_eq!(set.check(b"fedcba9876543210"), Some("line-4"));
        assert_eq!(set.check(b"0123456789abcdeX"), None);
        assert_eq!(set.check(b""), None);
        for bad in ["", "# only a comment", "short", "a:0123456789abcdef\na:0123456789abcdeg", "b c:0123456789abcdef"] {
            let e = TokenSet::parse(bad).unwrap_err();
            assert!(!e.to_string().contains("0123456789abcde"), "{e}");
        }
        let e = TokenSet::parse("x:has spaces in this token").unwrap_err();
        assert!(e.reason().contains("visible ASCII") && !e.reason().contains("spaces in"), "{e}");
    }

    #[test]
    fn the_header_must_be_exactly_one_bearer_token() {
        let set = TokenSet::new().with("ops", "0123456789abcdef").unwrap();
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(http::header::AUTHORIZATION, v.parse().unwrap());
            }
            h
        };
        assert_eq!(set.authenticate(&headers(&["Bearer 0123456789abcdef"])), Some("ops"));
        assert_eq!(set.authenticate(&headers(&["bearer 0123456789abcdef"])), Some("ops"));
        for bad in [&[][..], &["Basic 0123456789abcdef"], &["Bearer"], &["Bearer  0123456789abcdef"]] {
            assert_eq!(set.authenticate(&headers(bad)), None, "{bad:?}");
        }
        assert_eq!(set.authenticate(&headers(&["Bearer 0123456789abcdef", "Bearer 0123456789abcdef"])), None);
    }

    #[test]
    fn debug_shows_ids_only() {
        let set = TokenSet::new().with("ops", "0123456789abcdef").unwrap();
        assert!(!format!("{set:?}").contains("0123456789abcdef"));
    }
}
