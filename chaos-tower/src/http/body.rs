//! The response body of the HTTP flavour: the inner body untouched, an injected answer, or the inner body
//! throttled or cut ([`shaped`](super::shaped)).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use chaos_core::{ActiveFault, BodyFault};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::shaped::Shaped;
use crate::BoxError;
use crate::chaos::InjectedError;

pin_project! {
    /// Response body of [`HttpChaos`](super::HttpChaos). The pass-through case is the inner body and a tag;
    /// the shaped cases are boxed, so wrapping costs no size on the common path.
    pub struct ChaosBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] inner: B },
        Full { data: Option<Bytes> },
        Reset { rule: Option<Arc<str>> },
        Shaped { shaped: Pin<Box<Shaped<B>>> },
    }
}

impl<B> ChaosBody<B> {
    /// The inner body, untouched.
    #[inline]
    pub fn inner(inner: B) -> Self {
        Self { kind: Kind::Inner { inner } }
    }

    pub(crate) fn full(data: Bytes) -> Self {
        Self { kind: Kind::Full { data: (!data.is_empty()).then_some(data) } }
    }

    pub(crate) fn reset(rule: Arc<str>) -> Self {
        Self { kind: Kind::Reset { rule: Some(rule) } }
    }

    /// Applies a body fault; the fault's slot is held until the body ends or is dropped.
    pub(crate) fn faulted(inner: B, slot: ActiveFault<BodyFault>) -> Self {
        Self { kind: Kind::Shaped { shaped: Box::pin(Shaped::new(inner, slot)) } }
    }
}

impl<B> fmt::Debug for ChaosBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Full { .. } => "full",
            Kind::Reset { .. } => "reset",
            Kind::Shaped { .. } => "shaped",
        };
        f.debug_struct("ChaosBody").field("kind", &kind).finish()
    }
}

impl<B> Default for ChaosBody<B> {
    fn default() -> Self {
        Self::full(Bytes::new())
    }
}

impl<B> Body for ChaosBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner { inner } => inner.poll_frame(cx).map_err(Into::into),
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Reset { rule } => Poll::Ready(
                rule.take().map(|rule| Err(InjectedError::from_outcome(rule, &chaos_core::Outcome::Reset).into())),
            ),
            KindProj::Shaped { shaped } => shaped.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { inner } => inner.is_end_stream(),
            Kind::Full { data } => data.is_none(),
            Kind::Reset { rule } => rule.is_none(),
            Kind::Shaped { shaped } => shaped.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { inner } => inner.size_hint(),
            Kind::Full { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.remaining() as u64)),
            Kind::Reset { .. } => SizeHint::default(),
            Kind::Shaped { shaped } => shaped.size_hint(),
        }
    }
}
