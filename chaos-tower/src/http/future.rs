//! The response future of [`HttpChaos`](super::HttpChaos).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::http::Response;
use chaos_core::{ActiveFault, BodyFault};
use pin_project_lite::pin_project;

use super::ChaosBody;
use super::response::outcome_response;
use crate::faulted::{ColdBox, Faulted};

pin_project! {
    /// Response future of [`HttpChaos`](super::HttpChaos): the inner response (its body possibly throttled or
    /// cut), possibly after an injected delay, or an injected response.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: Option<F>,
        extra: Option<ColdBox<Extra<B>>>,
    }
}

/// Everything the pass-through path does not need, boxed so its future stays the size of the inner one.
#[derive(Debug)]
pub(crate) struct Extra<B> {
    fault: Option<Faulted>,
    body: Option<ActiveFault<BodyFault>>,
    ready: Option<Response<ChaosBody<B>>>,
}

impl<F, B> ResponseFuture<F, B> {
    #[inline]
    pub(crate) fn passthrough(inner: F) -> Self {
        Self { inner: Some(inner), extra: None }
    }

    pub(crate) fn faulted(inner: Option<F>, fault: Faulted, body: Option<ActiveFault<BodyFault>>) -> Self {
        Self { inner, extra: Some(ColdBox::new(Extra { fault: Some(fault), body, ready: None })) }
    }

    pub(crate) fn respond(response: Response<ChaosBody<B>>) -> Self {
        Self { inner: None, extra: Some(ColdBox::new(Extra { fault: None, body: None, ready: Some(response) })) }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").field("faulted", &self.extra.is_some()).finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ChaosBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(extra) = this.extra.as_mut() else {
            // The pass-through path.
            return match this.inner.as_pin_mut() {
                Some(inner) => inner.poll(cx).map(|r| r.map(|response| response.map(ChaosBody::inner))),
                None => panic!("chaos response future polled after completion"),
            };
        };
        let extra = extra.get_mut();
        if let Some(fault) = &mut extra.fault
            && let Some(outcome) = ready!(fault.poll(cx))
        {
            return Poll::Ready(Ok(outcome_response(outcome)));
        }
        match this.inner.as_pin_mut() {
            Some(inner) => {
                let response = ready!(inner.poll(cx))?;
                Poll::Ready(Ok(match extra.body.take() {
                    Some(slot) => response.map(|b| ChaosBody::faulted(b, slot)),
                    None => response.map(ChaosBody::inner),
                }))
            }
            None => match extra.ready.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("chaos response future polled after completion"),
            },
        }
    }
}
