//! Body faults: a throttled or truncated inner body.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use brownout_chaos::{ActiveFault, BodyFault};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::BoxError;

/// Chunks of a throttled body leave every this long (or less often for tiny rates).
const THROTTLE_TICK: Duration = Duration::from_millis(50);

pin_project! {
    /// The inner body under a body fault, which holds its active-fault slot until the body ends or is dropped.
    pub(crate) struct Shaped<B> {
        #[pin]
        inner: B,
        shape: Shape,
        slot: Option<ActiveFault<BodyFault>>,
    }
}

enum Shape {
    Throttle {
        bytes_per_sec: u64,
        pending: Bytes,
        // When the first byte left, and how many have left since: deadlines are absolute, so the timer's
        // rounding does not accumulate over many chunks.
        started: Option<Instant>,
        sent: u64,
        sleep: Option<Pin<Box<Sleep>>>,
    },
    Truncate {
        remaining: u64,
    },
}

impl<B> Shaped<B> {
    pub(crate) fn new(inner: B, slot: ActiveFault<BodyFault>) -> Self {
        let shape = match *slot.fault() {
            BodyFault::Throttle { bytes_per_sec } => {
                Shape::Throttle { bytes_per_sec, pending: Bytes::new(), started: None, sent: 0, sleep: None }
            }
            BodyFault::Truncate { after_bytes } => Shape::Truncate { remaining: after_bytes },
        };
        Self { inner, shape, slot: Some(slot) }
    }
}

impl<B> Shaped<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    pub(crate) fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let frame = match this.shape {
            Shape::Throttle { bytes_per_sec, pending, started, sent, sleep } => loop {
                if let Some(s) = sleep.as_mut() {
                    ready!(s.as_mut().poll(cx));
                    *sleep = None;
                }
                if !pending.is_empty() {
                    // One tick's worth of bytes, then wait until the rate allows the next.
                    let quantum = (u128::from(*bytes_per_sec) * THROTTLE_TICK.as_nanos() / 1_000_000_000).max(1);
                    let n = pending.len().min(quantum as usize);
                    let chunk = pending.split_to(n);
                    let start = *started.get_or_insert_with(Instant::now);
                    *sent += n as u64;
                    let due = u128::from(*sent) * 1_000_000_000 / u128::from(*bytes_per_sec);
                    *sleep = Some(Box::pin(tokio::time::sleep_until(start + Duration::from_nanos(due as u64))));
                    break Some(Ok(Frame::data(chunk)));
                }
                match ready!(this.inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => *pending = data,
                        Err(frame) => break Some(Ok(frame)),
                    },
                    Some(Err(e)) => break Some(Err(e.into())),
                    None => break None,
                }
            },
            Shape::Truncate { remaining } => {
                if *remaining == 0 {
                    None
                } else {
                    match ready!(this.inner.poll_frame(cx)) {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(mut data) => {
                                data.truncate(usize::try_from(*remaining).unwrap_or(usize::MAX));
                                *remaining -= data.len() as u64;
                                Some(Ok(Frame::data(data)))
                            }
                            // Trailers after a cut body would be a lie: the body simply ends.
                            Err(_) => {
                                *remaining = 0;
                                None
                            }
                        },
                        Some(Err(e)) => Some(Err(e.into())),
                        None => None,
                    }
                }
            }
        };
        if frame.is_none() {
            // The body is done: give the slot back now rather than when the response is dropped.
            *this.slot = None;
        }
        Poll::Ready(frame)
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        match &self.shape {
            Shape::Throttle { pending, .. } => pending.is_empty() && self.inner.is_end_stream(),
            Shape::Truncate { remaining } => *remaining == 0 || self.inner.is_end_stream(),
        }
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match &self.shape {
            Shape::Throttle { pending, .. } => {
                let mut hint = self.inner.size_hint();
                let extra = pending.len() as u64;
                hint.set_lower(hint.lower() + extra);
                if let Some(upper) = hint.upper() {
                    hint.set_upper(upper + extra);
                }
                hint
            }
            // The declared length stays the inner one on purpose: a cut body then ends short of its
            // Content-Length, and the client sees the broken transfer a cut connection causes.
            Shape::Truncate { .. } => self.inner.size_hint(),
        }
    }
}
