//! The fault path shared by both flavours: waits the kill switch can cut short, and the state of a faulted
//! request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use brownout_chaos::{ActiveFault, Controller, Decider, Delay, Outcome};
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use tokio::time::Sleep;

/// A sleep that also ends when the handle is disarmed. Boxed: it exists only on the fault path.
#[derive(Debug)]
pub(crate) struct Wait {
    sleep: Pin<Box<Sleep>>,
    disarmed: Pin<Box<OwnedNotified>>,
}

impl Wait {
    /// Registers for the disarm notification first, so a disarm that races with this call still wakes it.
    pub(crate) fn new(duration: Duration, wake: &Arc<Notify>) -> Self {
        let mut disarmed = Box::pin(wake.clone().notified_owned());
        disarmed.as_mut().enable();
        Self { sleep: Box::pin(tokio::time::sleep(duration)), disarmed }
    }

    /// Ready when the duration has passed or the handle was disarmed.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.disarmed.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        self.sleep.as_mut().poll(cx)
    }
}

/// The state of a request that got a fault: an optional delay, then an optional outcome that replaces the
/// service's answer. Shared by both flavours; boxed by them so the pass-through future stays small.
///
/// The kill switch wins over faults in flight: an outcome that follows a wait (a delay, a CPU burn or a hang)
/// is dropped when the wait ends disarmed, and the request goes to the inner service, which the flavours
/// call up front for such requests (see [`Faulted::needs_inner`]). An outcome with no wait before it is
/// answered at the first poll, as decided.
#[derive(Debug)]
pub(crate) struct Faulted {
    /// A CPU burn to run at the first poll, watching the kill switch.
    burn: Option<ActiveFault<Delay>>,
    delay: Option<(Wait, ActiveFault<Delay>)>,
    hang: Option<Wait>,
    outcome: Option<ActiveFault<Outcome>>,
    /// The outcome follows a wait: re-check the kill switch before answering with it.
    recheck: bool,
    /// The hang was cut short at the caller's deadline ([`Faulted::hang_until`]).
    deadline: bool,
    controller: Controller,
}

impl Faulted {
    /// Builds the state. Armed-ness is re-read after registering for the wake-up, so a disarm that raced with
    /// the decision skips the waits instead of missing its notification.
    pub(crate) fn new(
        delay: Option<ActiveFault<Delay>>,
        outcome: Option<ActiveFault<Outcome>>,
        decider: &Decider,
        wake: &Arc<Notify>,
    ) -> Self {
        let recheck = Self::needs_inner(delay.as_ref(), outcome.as_ref());
        let (mut delay, burn) = match delay.as_ref().map(|d| *d.fault()) {
            Some(Delay::Sleep(d)) => (delay.map(|slot| (Wait::new(d, wake), slot)), None),
            Some(Delay::BurnCpu(_)) => (None, delay),
            None => (None, None),
        };
        let mut hang = match outcome.as_ref().map(ActiveFault::fault) {
            Some(Outcome::Hang { max }) => Some(Wait::new(*max, wake)),
            _ => None,
        };
        if !decider.is_armed() {
            delay = None;
            hang = None;
        }
        Self { burn, delay, hang, outcome, recheck, deadline: false, controller: decider.controller() }
    }

    /// Ends a hang at `deadline` (the caller's, e.g. gRPC's `grpc-timeout`) when that comes before the hang's
    /// `max`; [`deadline_reached`](Self::deadline_reached) then tells the flavour to answer as a deadline.
    pub(crate) fn hang_until(&mut self, deadline: Duration, wake: &Arc<Notify>) {
        if self.hang.is_some()
            && let Some(Outcome::Hang { max }) = self.outcome.as_ref().map(ActiveFault::fault)
            && deadline < *max
        {
            self.hang = Some(Wait::new(deadline, wake));
            self.deadline = true;
        }
    }

    /// Was the hang cut short at the caller's deadline?
    pub(crate) fn deadline_reached(&self) -> bool {
        self.deadline
    }

    /// Must the flavour call the inner service for this request? Without an outcome, always; with one, when a
    /// wait comes first, so that a kill switch during the wait can hand the request to it.
    pub(crate) fn needs_inner(delay: Option<&ActiveFault<Delay>>, outcome: Option<&ActiveFault<Outcome>>) -> bool {
        match outcome.map(ActiveFault::fault) {
            None => true,
            Some(Outcome::Hang { .. }) => true,
            Some(_) => delay.is_some(),
        }
    }

    /// Burns the CPU, waits out the delay and any hang; then yields the outcome to answer with, or `None` to
    /// go on to the inner service. Dropping the state (a cancelled request) gives the fault slots back.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<ActiveFault<Outcome>>> {
        if let Some(slot) = self.burn.take() {
            // On this very thread, as a noisy neighbour would; the kill switch stops it early.
            let controller = &self.controller;
            brownout_chaos::pressure::burn_cpu_while(slot.fault().duration(), || controller.is_armed());
        }
        if let Some((wait, _)) = &mut self.delay {
            if wait.poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.delay = None;
        }
        if let Some(wait) = &mut self.hang {
            if wait.poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.hang = None;
        }
        if self.recheck && !self.controller.is_armed() {
            // Disarmed while the request waited: the kill switch wins, the inner service answers.
            self.outcome = None;
        }
        Poll::Ready(self.outcome.take())
    }
}

/// A boxed fault state whose drop is out of line and marked cold, so the pass-through path's drop glue is a
/// null check (measured with `cargo bench --bench instructions`).
#[derive(Debug)]
pub(crate) struct ColdBox<T>(Option<Pin<Box<T>>>);

impl<T> ColdBox<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(Some(Box::pin(value)))
    }

    pub(crate) fn get_ref(&self) -> &T {
        self.0.as_deref().expect("present until dropped")
    }

    /// The state, pinned: it never moves out of its box.
    pub(crate) fn as_mut(&mut self) -> Pin<&mut T> {
        self.0.as_mut().expect("present until dropped").as_mut()
    }
}

impl<T: Unpin> ColdBox<T> {
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.as_mut().get_mut()
    }
}

impl<T> Drop for ColdBox<T> {
    #[cold]
    #[inline(never)]
    fn drop(&mut self) {
        drop(self.0.take());
    }
}
