//! The response future of [`Chaos`](super::Chaos).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::InjectedError;
use crate::BoxError;
use crate::faulted::{ColdBox, Faulted};

pin_project! {
    /// Response future of [`Chaos`](super::Chaos): the inner future, possibly after an injected delay, or an
    /// [`InjectedError`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: Option<F>,
        fault: Option<ColdBox<Faulted>>,
    }
}

impl<F> ResponseFuture<F> {
    #[inline]
    pub(crate) fn passthrough(inner: F) -> Self {
        Self { inner: Some(inner), fault: None }
    }

    pub(crate) fn faulted(inner: Option<F>, fault: Faulted) -> Self {
        Self { inner, fault: Some(ColdBox::new(fault)) }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").field("fault", &self.fault).finish_non_exhaustive()
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(fault) = this.fault.as_mut()
            && let Some(outcome) = ready!(fault.get_mut().poll(cx))
        {
            let err = InjectedError::from_outcome(outcome.rule_shared(), outcome.fault());
            return Poll::Ready(Err(err.into()));
        }
        match this.inner.as_pin_mut() {
            Some(inner) => inner.poll(cx).map_err(Into::into),
            // Only reachable if polled again after the injected error was returned.
            None => Poll::Ready(Err("chaos response future polled after completion".into())),
        }
    }
}
