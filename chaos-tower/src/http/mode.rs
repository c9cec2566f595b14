//! How [`HttpChaos`](super::HttpChaos) types the bodies of its responses.
//!
//! By default ([`WrapBody`]) every response body becomes a [`ChaosBody<B>`]: it works over any body type,
//! and on the pass-through path the wrapper is a tag around the inner body. A service whose body type can
//! already hold any body — axum's `Body`, `http_body_util`'s `BoxBody` and `UnsyncBoxBody` — can keep it with
//! [`SameBody`] ([`HttpChaosLayer::same_body`](super::HttpChaosLayer::same_body)): responses pass through
//! untouched, and only an injected answer or a throttled or cut body is boxed into `B`. Under axum's
//! `Router::layer` this also saves the box axum would otherwise put around every `ChaosBody`.

use std::task::Poll;

use ::http::Response;
use bytes::Bytes;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};

use super::ChaosBody;
use crate::BoxError;

/// A body type that can hold any of the layer's bodies: an injected answer, a reset, a throttled or cut body.
///
/// Implemented for axum's `Body` (feature `axum`) and for `http_body_util`'s `BoxBody<Bytes, BoxError>` and
/// `UnsyncBoxBody<Bytes, BoxError>`; implement it for your own boxed body type to use [`SameBody`].
pub trait FromChaosBody: Sized {
    /// `body`, as this type (usually boxed).
    fn from_chaos_body(body: ChaosBody<Self>) -> Self;
}

impl FromChaosBody for UnsyncBoxBody<Bytes, BoxError> {
    fn from_chaos_body(body: ChaosBody<Self>) -> Self {
        UnsyncBoxBody::new(body)
    }
}

impl FromChaosBody for BoxBody<Bytes, BoxError> {
    fn from_chaos_body(body: ChaosBody<Self>) -> Self {
        BoxBody::new(body)
    }
}

#[cfg(feature = "axum")]
impl FromChaosBody for axum_core::body::Body {
    fn from_chaos_body(body: ChaosBody<Self>) -> Self {
        axum_core::body::Body::new(body)
    }
}

/// The body type of [`HttpChaos`](super::HttpChaos)'s responses over an inner body `B`: [`WrapBody`] or
/// [`SameBody`]. Sealed.
pub trait BodyMode<B>: sealed::Sealed {
    /// The response body type.
    type Body;

    /// A response of the inner service, passed on.
    fn pass(response: Response<B>) -> Response<Self::Body>;

    /// The inner future's poll, passed on: with [`SameBody`] the value itself, so nothing is moved.
    #[inline(always)]
    fn pass_poll<E>(poll: Poll<Result<Response<B>, E>>) -> Poll<Result<Response<Self::Body>, E>> {
        poll.map(|r| r.map(Self::pass))
    }

    /// An injected answer, or the inner body throttled or cut.
    fn wrap(response: Response<ChaosBody<B>>) -> Response<Self::Body>;
}

/// Responses carry [`ChaosBody<B>`], for any inner body `B` (the default).
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct WrapBody;

/// Responses keep the inner service's body type `B` ([`FromChaosBody`]): nothing changes on the
/// pass-through path.
#[derive(Debug, Clone, Copy, Default)]
#[allow(clippy::exhaustive_structs, reason = "a unit value callers name: it has no fields to add")]
pub struct SameBody;

impl<B> BodyMode<B> for WrapBody {
    type Body = ChaosBody<B>;

    #[inline(always)]
    fn pass(response: Response<B>) -> Response<ChaosBody<B>> {
        response.map(ChaosBody::inner)
    }

    #[inline(always)]
    fn wrap(response: Response<ChaosBody<B>>) -> Response<ChaosBody<B>> {
        response
    }
}

impl<B: FromChaosBody> BodyMode<B> for SameBody {
    type Body = B;

    #[inline(always)]
    fn pass(response: Response<B>) -> Response<B> {
        response
    }

    #[inline(always)]
    fn pass_poll<E>(poll: Poll<Result<Response<B>, E>>) -> Poll<Result<Response<B>, E>> {
        poll
    }

    fn wrap(response: Response<ChaosBody<B>>) -> Response<B> {
        response.map(B::from_chaos_body)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::WrapBody {}
    impl Sealed for super::SameBody {}
}
