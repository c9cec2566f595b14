//! Bearer tokens: the [`TokenSet`], its file format, the constant-time check, and the slowdown of failures.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use http::HeaderMap;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use tokio::time::Instant;

/// The shortest token accepted, in bytes: 22 characters of base64 carry 128 bits.
pub const MIN_TOKEN_LEN: usize = 22;
/// The least estimated entropy of a token, in bits (see [`TokenSet`]).
pub const MIN_TOKEN_BITS: u32 = 128;
/// The fewest distinct characters a token may be made of.
const MIN_DISTINCT: usize = 8;
/// The longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 1024;
/// The longest token id accepted.
const MAX_ID_LEN: usize = 64;

/// The tokens that may use the admin API, each with an id that names it in the audit log.
///
/// Tokens are at least [`MIN_TOKEN_LEN`] bytes of visible ASCII (what an `Authorization` header can carry)
/// and must carry an estimated [`MIN_TOKEN_BITS`] bits: the length times the bits of the alphabet the token
/// draws from (16 symbols for hex; otherwise 10 for digits, 26 for each case of letters and 32 for the
/// punctuation it uses), with at least 8 distinct characters. A random `openssl rand -hex 16` (32
/// characters) or `openssl rand -base64 16` (24 characters) passes; `password1234567890123456` does not
/// (digits and lower case, 24 × 5.17 bits). The estimate cannot see that a token was chosen by a person:
/// use random secrets. Their entropy is the defence; the slowdown of failures ([`Throttle`]) only bounds
/// how fast anyone can guess. A token never appears in an error, a log line,
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
    let distinct = (0u8..=127).filter(|c| token.as_bytes().contains(c)).count();
    if distinct < MIN_DISTINCT {
        return Err(format!("uses {distinct} distinct characters; a random token uses at least {MIN_DISTINCT}"));
    }
    let bits = estimated_bits(token);
    if bits < f64::from(MIN_TOKEN_BITS) {
        return Err(format!(
            "carries about {bits:.0} bits; at least {MIN_TOKEN_BITS} are needed (e.g. `openssl rand -hex 16`)"
        ));
    }
    Ok(())
}

/// The entropy of `token` if each of its characters were drawn at random from the alphabet it seems to use.
fn estimated_bits(token: &str) -> f64 {
    let bytes = token.as_bytes();
    let hex = bytes.iter().all(u8::is_ascii_hexdigit)
        && bytes.iter().any(u8::is_ascii_alphabetic)
        && (bytes.iter().all(|b| !b.is_ascii_uppercase()) || bytes.iter().all(|b| !b.is_ascii_lowercase()));
    let alphabet: u32 = if hex {
        16
    } else {
        let has = |f: fn(&u8) -> bool| bytes.iter().any(f);
        [
            (has(u8::is_ascii_digit), 10),
            (has(u8::is_ascii_lowercase), 26),
            (has(u8::is_ascii_uppercase), 26),
            (has(u8::is_ascii_punctuation), 32),
        ]
        .iter()
        .filter(|(present, _)| *present)
        .map(|(_, n)| n)
        .sum()
    };
    bytes.len() as f64 * f64::from(alphabet.max(1)).log2()
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
        for entry in brownout_foundation::token_file::entries(text) {
            let id = entry.id.map_or_else(|| format!("line-{}", entry.line), str::to_owned);
            set = set
                .with(&id, entry.token)
                .map_err(|e| TokenError::new(format!("line {}: {}", entry.line, e.reason)))?;
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
/// Within a window (starting at the first failure) the first `free` failures are answered at once. Every
/// further failure is answered `401` only after its delay, which starts at `base` and doubles with every
/// failure, up to `cap`; and the delays are served one after another, across all clients: a failure waits
/// for the failures before it, then for its own delay. However many wrong guesses arrive at once, at most
/// one is answered per `base` (one per `cap` once the delays have grown), so concurrency buys a guesser
/// nothing; the waiting requests are held, never answered early. A window ends `window` after its first
/// failure once no failure is waiting. A request with a valid token is never delayed nor refused, so
/// operators keep their kill switch while someone hammers the endpoint.
///
/// With the defaults, at most 5 wrong guesses per minute are answered at once and about 6 more per minute
/// after their delays. How many requests may wait is bounded by the server's connections (and its
/// timeouts), not here: a held request costs a sleeping future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Throttle {
    /// Failures answered without delay in each window.
    pub free: u32,
    /// How long a window lasts after its first failure.
    pub window: Duration,
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            free: 5,
            window: Duration::from_secs(60),
            base: Duration::from_millis(250),
            cap: Duration::from_secs(10),
        }
    }
}

brownout_foundation::setters! {
    impl Throttle {
        free: u32,
        window: Duration,
        base: Duration,
        cap: Duration,
    }
}

#[derive(Debug)]
struct State {
    /// When the current window started.
    start: Instant,
    /// Failures in the current window.
    count: u32,
    /// When the last waiting failure is answered: the next one waits for it, then for its own delay.
    busy_until: Instant,
}

/// The failure counter behind [`Throttle`]: one schedule for every client.
#[derive(Debug)]
pub(crate) struct Failures {
    config: Throttle,
    state: Mutex<Option<State>>,
}

impl Failures {
    pub(crate) fn new(config: Throttle) -> Self {
        Self { config, state: Mutex::new(None) }
    }

    /// Counts one failure and says when to answer it (now, for a free one).
    pub(crate) fn fail(&self) -> Instant {
        let now = Instant::now();
        let mut guard = brownout_foundation::sync::lock(&self.state);
        let state = match &mut *guard {
            Some(s) if now < s.busy_until || now.saturating_duration_since(s.start) < self.config.window => s,
            slot => slot.insert(State { start: now, count: 0, busy_until: now }),
        };
        state.count = state.count.saturating_add(1);
        let Some(over) = state.count.checked_sub(self.config.free).filter(|&n| n > 0) else {
            return now;
        };
        let factor = 2u32.saturating_pow(over.saturating_sub(1).min(31));
        let delay = self.config.base.saturating_mul(factor).min(self.config.cap);
        let from = state.busy_until.max(now);
        // An `Instant` cannot overflow in practice (`cap` bounds each step), but never panic on it.
        let at = from.checked_add(delay).unwrap_or(from);
        state.busy_until = at;
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn the_file_format_names_tokens_and_refuses_weak_ones() {
        let set = TokenSet::parse(&format!("# ops\nalice:{A}\n\n  {B}  \n")).unwrap();
        assert_eq!(set.ids().collect::<Vec<_>>(), ["alice", "line-4"]);
        assert_eq!(set.check(A.as_bytes()), Some("alice"));
        assert_eq!(set.check(B.as_bytes()), Some("line-4"));
        assert_eq!(set.check(b"0123456789abcdef0123456789abcdeX"), None);
        assert_eq!(set.check(b""), None);
        for bad in
            [String::new(), "# only a comment".into(), "short".into(), format!("a:{A}\na:{B}"), format!("b c:{A}")]
        {
            let e = TokenSet::parse(&bad).unwrap_err();
            assert!(!e.to_string().contains("0123456789abcde"), "{e}");
        }
        let e = TokenSet::parse("x:has spaces in this token, long enough to pass").unwrap_err();
        assert!(e.reason().contains("visible ASCII") && !e.reason().contains("spaces in"), "{e}");
    }

    #[test]
    fn tokens_need_128_bits_and_8_distinct_characters() {
        // Accepted: 32 hex digits (128 bits), 22 characters of base64 (131+), a long passphrase-like token.
        for good in [A, "Zm9vYmFyYmF6cXV4cXV1eA", "alice-secret-0123456789abcdef"] {
            TokenSet::new().with("ops", good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        // Refused: too short; 16 hex digits (64 bits); digits only (3.3 bits each); too few distinct characters.
        for (bad, why) in [
            ("0123456789abcdef", "at least 22"),
            ("0123456789abcdef012345", "bits"),
            ("12345678901234567890123456789012", "bits"),
            ("abababababababababababababababab", "distinct"),
            ("password1234567890123456", "bits"),
        ] {
            let e = TokenSet::new().with("ops", bad).unwrap_err();
            assert!(e.reason().contains(why), "{bad}: {e}");
            assert!(!e.reason().contains(bad), "the token is never echoed: {e}");
        }
    }

    #[test]
    fn the_header_must_be_exactly_one_bearer_token() {
        let set = TokenSet::new().with("ops", A).unwrap();
        let headers = |values: &[String]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(http::header::AUTHORIZATION, v.parse().unwrap());
            }
            h
        };
        assert_eq!(set.authenticate(&headers(&[format!("Bearer {A}")])), Some("ops"));
        assert_eq!(set.authenticate(&headers(&[format!("bearer {A}")])), Some("ops"));
        for bad in [vec![], vec![format!("Basic {A}")], vec!["Bearer".into()], vec![format!("Bearer  {A}")]] {
            assert_eq!(set.authenticate(&headers(&bad)), None, "{bad:?}");
        }
        assert_eq!(set.authenticate(&headers(&[format!("Bearer {A}"), format!("Bearer {A}")])), None);
    }

    #[test]
    fn debug_shows_ids_only() {
        let set = TokenSet::new().with("ops", A).unwrap();
        assert!(!format!("{set:?}").contains(A));
    }
}
