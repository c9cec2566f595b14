//! Faults on async IO: the slow (or failing) disk and socket.
//!
//! [`ChaosIo`] wraps any `AsyncRead` / `AsyncWrite` and asks the handle's rules before each read and each
//! write, as if every operation were a request whose path is `io/<name>/read` or `io/<name>/write`. Target
//! them by route:
//!
//! ```yaml
//! rules:
//!   - name: slow-disk-writes
//!     match: { route: "io/journal/write" }     # or "io/journal/*" for reads and writes
//!     sample: { mode: random, rate: 0.2 }
//!     fault: { latency: { log_normal: { median: 15ms, sigma: 0.8, max: 500ms } } }
//! ```
//!
//! A latency fault delays the operation (the kill switch cuts the wait short); an error, rate-limit, hang or
//! reset fault fails it with an [`io::Error`] whose inner error is an [`InjectedError`]. An operation is
//! decided once, however many times it is polled. Flush and shutdown pass through. Rules without targeting
//! apply to every operation too, so give IO its own [`ChaosHandle`] or target it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use brownout_chaos::{Decider, Flavour, RequestFacts};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::chaos::InjectedError;
use crate::faulted::Faulted;
use crate::handle::ChaosHandle;

pin_project! {
    /// An `AsyncRead` / `AsyncWrite` whose operations obey the rules of a [`ChaosHandle`].
    pub struct ChaosIo<T> {
        #[pin]
        inner: T,
        decider: Decider,
        wake: Arc<Notify>,
        read_path: Box<str>,
        write_path: Box<str>,
        read: Op,
        write: Op,
    }
}

/// Where one direction's current operation stands.
#[derive(Debug, Default)]
enum Op {
    /// No operation in progress: the next poll decides.
    #[default]
    Idle,
    /// A fault is running (a delay, a hang) before the operation proceeds or fails.
    Faulted(Box<Faulted>),
    /// Decided and let through: poll the inner object until it completes.
    Admitted,
}

impl<T> ChaosIo<T> {
    /// Wraps `inner`; its operations are `io/<name>/read` and `io/<name>/write` to the rules of `handle`.
    pub fn new(inner: T, name: &str, handle: &ChaosHandle) -> Self {
        Self {
            inner,
            decider: handle.decider(),
            wake: handle.wake().clone(),
            read_path: format!("io/{name}/read").into(),
            write_path: format!("io/{name}/write").into(),
            read: Op::Idle,
            write: Op::Idle,
        }
    }

    /// The inner object.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The inner object, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Unwraps the inner object.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T> std::fmt::Debug for ChaosIo<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosIo").field("read", &self.read_path).field("read_op", &self.read).finish_non_exhaustive()
    }
}

/// Decides the current operation once, runs its fault, and says whether to go on to the inner object.
fn admit(
    op: &mut Op,
    path: &str,
    decider: &mut Decider,
    wake: &Arc<Notify>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    loop {
        match op {
            Op::Admitted => return Poll::Ready(Ok(())),
            Op::Idle => {
                let facts = RequestFacts::path_only(path, Flavour::Generic);
                match decider.decide(&facts) {
                    None => *op = Op::Admitted,
                    Some(injection) => {
                        let (delay, outcome, _body) = injection.into_parts();
                        crate::trace::faults(delay.as_ref(), outcome.as_ref(), None, false);
                        *op = Op::Faulted(Box::new(Faulted::new(delay, outcome, decider, wake)));
                    }
                }
            }
            Op::Faulted(fault) => match ready!(fault.poll(cx)) {
                None => *op = Op::Admitted,
                Some(outcome) => {
                    *op = Op::Idle;
                    let err = InjectedError::from_outcome(outcome.rule_shared(), outcome.fault());
                    return Poll::Ready(Err(io::Error::other(err)));
                }
            },
        }
    }
}

impl<T: AsyncRead> AsyncRead for ChaosIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        ready!(admit(this.read, this.read_path, this.decider, this.wake, cx))?;
        let result = ready!(this.inner.poll_read(cx, buf));
        *this.read = Op::Idle;
        Poll::Ready(result)
    }
}

impl<T: AsyncWrite> AsyncWrite for ChaosIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.project();
        ready!(admit(this.write, this.write_path, this.decider, this.wake, cx))?;
        let result = ready!(this.inner.poll_write(cx, data));
        *this.write = Op::Idle;
        Poll::Ready(result)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}
