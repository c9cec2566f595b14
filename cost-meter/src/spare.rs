//! Spare job states: each thread keeps its finished jobs' shared states ([`JobInner`]), up to [`KEPT`], for its
//! next jobs, so a job per request (`CostLayer`) allocates none. A state is kept only once nothing else refers to
//! it, and without its meter: a kept state holds no meter (nor its sinks) alive.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::Arc;

use crate::job::JobInner;

/// The most spare states a thread keeps (about 12 KiB): as many as an apportioning interval may hold and give
/// back at once when it settles ([`MAX_ENTRIES`](crate::section::MAX_ENTRIES)), so under a steady stream of
/// requests every state comes back.
pub(crate) const KEPT: usize = crate::section::MAX_ENTRIES;

thread_local! {
    static SPARE: RefCell<Vec<Arc<JobInner>>> = const { RefCell::new(Vec::new()) };
}

/// One of this thread's spare states, if it has one.
pub(crate) fn take() -> Option<Arc<JobInner>> {
    SPARE.try_with(|s| s.try_borrow_mut().ok()?.pop()).ok().flatten()
}

/// Keeps `job` for this thread's next jobs when nothing else refers to it, its meter let go; drops it otherwise
/// (also when the thread already keeps [`KEPT`] or is being torn down).
fn keep(mut job: Arc<JobInner>) {
    let Some(inner) = Arc::get_mut(&mut job) else { return };
    inner.release();
    let _ = SPARE.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut()
            && s.len() < KEPT
        {
            s.push(job);
        }
    });
}

/// How many spare states this thread keeps.
#[cfg(test)]
pub(crate) fn kept() -> usize {
    SPARE.with(|s| s.borrow().len())
}

/// A reference to a job's state that offers it to [`keep`] when dropped: held by the job, its futures and the
/// apportioning interval's entries, whichever lets go last.
#[derive(Debug)]
pub(crate) struct JobRef(Option<Arc<JobInner>>);

impl JobRef {
    pub(crate) fn new(job: Arc<JobInner>) -> Self {
        JobRef(Some(job))
    }
}

impl Deref for JobRef {
    type Target = Arc<JobInner>;

    #[inline]
    fn deref(&self) -> &Arc<JobInner> {
        self.0.as_ref().expect("held until dropped")
    }
}

impl Clone for JobRef {
    fn clone(&self) -> Self {
        JobRef(self.0.clone())
    }
}

impl Drop for JobRef {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            keep(job);
        }
    }
}
