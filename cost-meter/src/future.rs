//! [`Metered`]: a future whose every poll is charged to a job.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::section::Section;
use crate::spare::JobRef;

pin_project! {
    /// A future that charges the CPU time and allocations of each of its polls to a job, on whatever thread
    /// polls it. Made by [`Job::meter`](crate::Job::meter).
    #[must_use = "futures do nothing unless polled"]
    pub struct Metered<F> {
        #[pin]
        inner: F,
        job: JobRef,
    }
}

impl<F> Metered<F> {
    pub(crate) fn new(inner: F, job: JobRef) -> Self {
        Metered { inner, job }
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for Metered<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered").field("inner", &self.inner).field("job", &self.job).finish()
    }
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _section = Section::enter(this.job);
        this.inner.poll(cx)
    }
}
