//! The response body of the HTTP flavour: the inner body untouched, an injected answer, or the inner body
//! throttled or cut.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use chaos_core::{ActiveFault, BodyFault};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::BoxError;
use crate::chaos::InjectedError;

/// Chunks of a throttled body are sent every this long (or less often for tiny rates).
const THROTTLE_TICK: Duration = Duration::from_millis(50);

pin_project! {
    /// Response body of [`HttpChaos`](super::HttpChaos).
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
        Throttle {
            #[pin] inner: B,
            bytes_per_sec: u64,
            pending: Bytes,
            // When the first byte left, and how many have left since: deadlines are absolute, so the
            // timer's rounding does not accumulate over many chunks.
            started: Option<Instant>,
            sent: u64,
            sleep: Option<Pin<Box<Sleep>>>,
            slot: ActiveFault<BodyFault>,
        },
        Truncate {
            #[pin] inner: B,
            remaining: u64,
            slot: Option<ActiveFault<BodyFault>>,
        },
    }
}

impl<B> ChaosBody<B> {
    /// The inner body, untouched.
    #[inline]
    pub fn inner(inner: B) -> Self {
        Self {
            kind: Kind::Inner { inner },
        }
    }

    pub(crate) fn full(data: Bytes) -> Self {
        Self {
            kind: Kind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    pub(crate) fn reset(rule: Arc<str>) -> Self {
        Self {
            kind: Kind::Reset { rule: Some(rule) },
        }
    }

    /// Applies a body fault; the fault's slot is held until the body ends or is dropped.
    pub(crate) fn faulted(inner: B, slot: ActiveFault<BodyFault>) -> Self {
        let kind = match *slot.fault() {
            BodyFault::Throttle { bytes_per_sec } => Kind::Throttle {
                inner,
                bytes_per_sec,
                pending: Bytes::new(),
                started: None,
                sent: 0,
                sleep: None,
                slot,
            },
            BodyFault::Truncate { after_bytes } => Kind::Truncate {
                inner,
                remaining: after_bytes,
                slot: Some(slot),
            },
        };
        Self { kind }
    }
}

impl<B> fmt::Debug for ChaosBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Full { .. } => "full",
            Kind::Reset { .. } => "reset",
            Kind::Throttle { .. } => "throttle",
            Kind::Truncate { .. } => "truncate",
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

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Inner { inner } => inner.poll_frame(cx).map_err(Into::into),
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Reset { rule } => Poll::Ready(rule.take().map(|rule| {
                let outcome = chaos_core::Outcome::Reset;
                Err(InjectedError::from_outcome(rule, &outcome).into())
            })),
            KindProj::Throttle {
                mut inner,
                bytes_per_sec,
                pending,
                started,
                sent,
                sleep,
                slot: _,
            } => loop {
                if let Some(s) = sleep.as_mut() {
                    ready!(s.as_mut().poll(cx));
                    *sleep = None;
                }
                if !pending.is_empty() {
                    // One tick's worth of bytes, then wait for the time those bytes take at the rate.
                    let quantum =
                        (*bytes_per_sec as u128 * THROTTLE_TICK.as_nanos() / 1_000_000_000).max(1);
                    let n = pending.len().min(quantum as usize);
                    let chunk = pending.split_to(n);
                    let start = *started.get_or_insert_with(Instant::now);
                    *sent += n as u64;
                    let at = Duration::from_nanos(
                        (*sent as u128 * 1_000_000_000 / *bytes_per_sec as u128) as u64,
                    );
                    *sleep = Some(Box::pin(tokio::time::sleep_until(start + at)));
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                match ready!(inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => *pending = data,
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    },
                    Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                    None => return Poll::Ready(None),
                }
            },
            KindProj::Truncate {
                inner,
                remaining,
                slot,
            } => {
                if *remaining == 0 {
                    *slot = None;
                    return Poll::Ready(None);
                }
                match ready!(inner.poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(mut data) => {
                            if data.len() as u64 >= *remaining {
                                data.truncate(*remaining as usize);
                            }
                            *remaining -= data.len() as u64;
                            Poll::Ready(Some(Ok(Frame::data(data))))
                        }
                        // Trailers after a cut body would be a lie: the body simply ends.
                        Err(_) => {
                            *remaining = 0;
                            Poll::Ready(None)
                        }
                    },
                    Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { inner } => inner.is_end_stream(),
            Kind::Full { data } => data.is_none(),
            Kind::Reset { rule } => rule.is_none(),
            Kind::Throttle { inner, pending, .. } => pending.is_empty() && inner.is_end_stream(),
            Kind::Truncate {
                inner, remaining, ..
            } => *remaining == 0 || inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { inner } => inner.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.remaining() as u64))
            }
            Kind::Reset { .. } => SizeHint::default(),
            Kind::Throttle { inner, pending, .. } => {
                let mut hint = inner.size_hint();
                let extra = pending.len() as u64;
                hint.set_lower(hint.lower() + extra);
                if let Some(upper) = hint.upper() {
                    hint.set_upper(upper + extra);
                }
                hint
            }
            // The declared length stays the inner one on purpose: a cut body then ends short of its
            // Content-Length, and the client sees the broken transfer a cut connection causes.
            Kind::Truncate { inner, .. } => inner.size_hint(),
        }
    }
}
