//! What a rule looks at in a request, and the compiled targeting conditions.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::glob::RouteGlob;
use crate::index::Proof;

/// Which middleware is asking: some faults exist only for HTTP (body throttling and truncation), and rules
/// with HTTP targeting never match a request that has no HTTP facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flavour {
    /// Any `Service<Request>`: faults are typed errors.
    Generic,
    /// `http::Request` in, `http::Response` out: faults are responses.
    Http,
}

/// The facts about one request that targeting reads. Building one copies three references.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RequestFacts<'a> {
    /// The request path (`/api/quotes`).
    pub path: Option<&'a str>,
    /// The request method.
    pub method: Option<&'a Method>,
    /// The request headers.
    pub headers: Option<&'a HeaderMap>,
    /// Who is asking.
    pub flavour: Flavour,
}

impl RequestFacts<'static> {
    /// A request with no facts at all (the generic flavour).
    pub const NONE: RequestFacts<'static> =
        RequestFacts { path: None, method: None, headers: None, flavour: Flavour::Generic };
}

impl<'a> RequestFacts<'a> {
    /// The facts of a request known only by its path (a file path for the IO layer, say): rules with a method,
    /// header or key condition do not match it.
    #[inline]
    pub fn path_only(path: &'a str, flavour: Flavour) -> Self {
        RequestFacts { path: Some(path), method: None, headers: None, flavour }
    }

    /// The facts of an HTTP request.
    #[inline]
    pub fn http<B>(req: &'a http::Request<B>) -> Self {
        RequestFacts {
            path: Some(req.uri().path()),
            method: Some(req.method()),
            headers: Some(req.headers()),
            flavour: Flavour::Http,
        }
    }

    /// The facts of an HTTP request without its headers, for when no rule reads them
    /// ([`Decider::reads_headers`](crate::Decider::reads_headers)), with a standard method taken as its
    /// constant: nothing in them points into the request (its path lives in the URI's buffer), so a caller that
    /// then moves the request need not copy it first. `None` for an extension method.
    #[inline]
    pub fn http_path_method(path: &'a str, method: &http::Method) -> Option<Self> {
        let method = crate::index::standard(method)?;
        Some(RequestFacts { path: Some(path), method: Some(method), headers: None, flavour: Flavour::Http })
    }
}

/// Compiled targeting: every present condition must hold.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) route: Option<RouteGlob>,
    pub(crate) methods: Box<[Method]>,
    pub(crate) headers_eq: Box<[(HeaderName, HeaderValue)]>,
    pub(crate) headers_present: Box<[HeaderName]>,
    pub(crate) key: Option<HeaderName>,
    /// No condition at all: the rule matches every request.
    pub(crate) any: bool,
}

impl Target {
    #[inline]
    pub(crate) fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        self.matches_given(facts, Proof::NONE)
    }

    /// [`matches`](Self::matches) for a request of which the rule index has already proved `proof`: only the
    /// rest is checked (the route past its literal prefix, the method only when not proved).
    #[inline]
    pub(crate) fn matches_given(&self, facts: &RequestFacts<'_>, proof: Proof) -> bool {
        if self.any {
            return true;
        }
        if let Some(route) = &self.route {
            let holds = match facts.path {
                Some(path) if proof.prefix => route.matches_past_prefix(path),
                Some(path) => route.matches(path),
                None => false,
            };
            if !holds {
                return false;
            }
        }
        if !proof.method && !self.methods.is_empty() {
            match facts.method {
                Some(method) if self.methods.contains(method) => {}
                _ => return false,
            }
        }
        if !self.headers_eq.is_empty() || !self.headers_present.is_empty() {
            let Some(headers) = facts.headers else {
                return false;
            };
            if !self.headers_eq.iter().all(|(name, value)| headers.get(name) == Some(value)) {
                return false;
            }
            if !self.headers_present.iter().all(|name| headers.contains_key(name)) {
                return false;
            }
        }
        true
    }

    /// The request key, when the rule has one and the request carries it.
    #[inline]
    pub(crate) fn key<'a>(&self, facts: &RequestFacts<'a>) -> Option<&'a [u8]> {
        let name = self.key.as_ref()?;
        facts.headers?.get(name).map(HeaderValue::as_bytes)
    }
}
