//! The response future of [`HttpChaos`](super::HttpChaos).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::http::Response;
use brownout_chaos::{ActiveFault, BodyFault};
use pin_project_lite::pin_project;

use super::ChaosBody;
use super::mode::{BodyMode, WrapBody};
use super::response::{deadline_response, grpc_outcome_response, outcome_response};
use crate::chaos::InjectedError;
use crate::faulted::{ColdBox, Faulted};

pin_project! {
    /// Response future of [`HttpChaos`](super::HttpChaos): the inner response (its body possibly throttled or
    /// cut), possibly after an injected delay, or an injected response. `M` chooses the body type
    /// ([`BodyMode`]).
    pub struct ResponseFuture<F, B, M = WrapBody> {
        #[pin]
        kind: Kind<F, B>,
        mode: PhantomData<fn() -> M>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        // The pass-through path: the inner future and a tag, nothing else.
        Inner { #[pin] inner: F },
        // Everything else, boxed so the pass-through future stays the size of the inner one.
        Faulted { extra: ColdBox<Extra<F, B>> },
    }
}

pin_project! {
    /// The state of a faulted request.
    pub(crate) struct Extra<F, B> {
        #[pin]
        inner: Option<F>,
        fault: Option<Faulted>,
        body: Option<ActiveFault<BodyFault>>,
        ready: Option<Response<ChaosBody<B>>>,
        // The request is a gRPC call: outcomes are answered as gRPC statuses.
        grpc: bool,
    }
}

impl<F, B, M> ResponseFuture<F, B, M> {
    #[inline(always)]
    pub(crate) fn passthrough(inner: F) -> Self {
        Self { kind: Kind::Inner { inner }, mode: PhantomData }
    }

    pub(crate) fn faulted(inner: Option<F>, fault: Faulted, body: Option<ActiveFault<BodyFault>>, grpc: bool) -> Self {
        let extra = Extra { inner, fault: Some(fault), body, ready: None, grpc };
        Self { kind: Kind::Faulted { extra: ColdBox::new(extra) }, mode: PhantomData }
    }

    pub(crate) fn respond(response: Response<ChaosBody<B>>) -> Self {
        let extra = Extra { inner: None, fault: None, body: None, ready: Some(response), grpc: false };
        Self { kind: Kind::Faulted { extra: ColdBox::new(extra) }, mode: PhantomData }
    }
}

impl<F, B, M> std::fmt::Debug for ResponseFuture<F, B, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let faulted = matches!(self.kind, Kind::Faulted { .. });
        f.debug_struct("ResponseFuture").field("faulted", &faulted).finish_non_exhaustive()
    }
}

impl<F, B, E, M> Future for ResponseFuture<F, B, M>
where
    F: Future<Output = Result<Response<B>, E>>,
    M: BodyMode<B>,
{
    type Output = Result<Response<M::Body>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            // The pass-through path.
            KindProj::Inner { inner } => M::pass_poll(inner.poll(cx)),
            KindProj::Faulted { extra } => extra.as_mut().poll(cx).map(|r| r.map(M::wrap)),
        }
    }
}

impl<F, B, E> Extra<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Response<ChaosBody<B>>, E>> {
        let this = self.project();
        if let Some(fault) = this.fault
            && let Some(outcome) = ready!(fault.poll(cx))
        {
            if fault.deadline_reached() {
                return Poll::Ready(Ok(deadline_response(outcome)));
            }
            return Poll::Ready(Ok(if *this.grpc {
                grpc_outcome_response(outcome)
            } else {
                outcome_response(outcome)
            }));
        }
        match this.inner.as_pin_mut() {
            Some(inner) => {
                let response = ready!(inner.poll(cx))?;
                Poll::Ready(Ok(match this.body.take() {
                    Some(slot) => {
                        let mut response = response;
                        if let BodyFault::Truncate { .. } = slot.fault() {
                            // So a body buffer can tell a cut it sees from a real one (`crate::body`).
                            let marker = InjectedError::from_body_fault(slot.rule_shared(), slot.fault());
                            response.extensions_mut().insert(marker);
                        }
                        response.map(|b| ChaosBody::faulted(b, slot))
                    }
                    None => response.map(ChaosBody::inner),
                }))
            }
            None => match this.ready.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("chaos response future polled after completion"),
            },
        }
    }
}
