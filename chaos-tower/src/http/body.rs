//! The response body of the HTTP flavour: the inner body untouched, an injected answer, or the inner body
//! throttled or cut ([`shaped`](super::shaped)).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use brownout_chaos::{ActiveFault, BodyFault};
use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::shaped::Shaped;
use crate::BoxError;
use crate::chaos::InjectedError;
use crate::faulted::ColdBox;

pin_project! {
    /// Response body of [`HttpChaos`](super::HttpChaos). The pass-through case is the inner body and a tag;
    /// every other case (an injected answer, a throttled or cut body) lives behind one pointer whose drop is
    /// out of line, so the wrapper adds at most a tag and a pointer to the inner body (often nothing, when the
    /// inner body has a niche) and its drop on the pass-through path is a branch (measured with
    /// `cargo bench -p benches --bench instructions`).
    pub struct ChaosBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] inner: B },
        Other { other: ColdBox<Other<B>> },
    }
}

pin_project! {
    /// The cases off the pass-through path, boxed.
    #[project = OtherProj]
    enum Other<B> {
        Full { data: Option<Bytes> },
        Reset { rule: Option<Arc<str>> },
        Shaped { #[pin] shaped: Shaped<B> },
    }
}

impl<B> ChaosBody<B> {
    /// The inner body, untouched.
    #[inline]
    pub fn inner(inner: B) -> Self {
        Self { kind: Kind::Inner { inner } }
    }

    fn other(other: Other<B>) -> Self {
        Self { kind: Kind::Other { other: ColdBox::new(other) } }
    }

    pub(crate) fn full(data: Bytes) -> Self {
        Self::other(Other::Full { data: (!data.is_empty()).then_some(data) })
    }

    pub(crate) fn reset(rule: Arc<str>) -> Self {
        Self::other(Other::Reset { rule: Some(rule) })
    }

    /// Applies a body fault; the fault's slot is held until the body ends or is dropped.
    pub(crate) fn faulted(inner: B, slot: ActiveFault<BodyFault>) -> Self {
        Self::other(Other::Shaped { shaped: Shaped::new(inner, slot) })
    }
}

impl<B> fmt::Debug for ChaosBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Other { other } => match other.get_ref() {
                Other::Full { .. } => "full",
                Other::Reset { .. } => "reset",
                Other::Shaped { .. } => "shaped",
            },
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
            KindProj::Other { other } => other_poll_frame(other.as_mut(), cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { inner } => inner.is_end_stream(),
            Kind::Other { other } => match other.get_ref() {
                Other::Full { data } => data.is_none(),
                Other::Reset { rule } => rule.is_none(),
                Other::Shaped { shaped } => shaped.is_end_stream(),
            },
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { inner } => inner.size_hint(),
            Kind::Other { other } => match other.get_ref() {
                Other::Full { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.remaining() as u64)),
                Other::Reset { .. } => SizeHint::default(),
                Other::Shaped { shaped } => shaped.size_hint(),
            },
        }
    }
}

/// `poll_frame` off the pass-through path.
fn other_poll_frame<B>(other: Pin<&mut Other<B>>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match other.project() {
        OtherProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        OtherProj::Reset { rule } => Poll::Ready(
            rule.take().map(|rule| Err(InjectedError::from_outcome(rule, &brownout_chaos::Outcome::Reset).into())),
        ),
        OtherProj::Shaped { shaped } => shaped.poll_frame(cx),
    }
}
