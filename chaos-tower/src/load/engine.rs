//! The two drivers: the closed loop (a client per task) and the open loop (one scheduler, a task per
//! request), over one shared recorder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower_service::Service;

use super::report::{LoadResult, Recorder};
use super::{LoadError, LoadMode, LoadPlan, Outcome};

/// A send later than its slot by more than one interval plus this counts as missed (a wake-up may be late on a
/// busy machine).
const TIMER_SLACK: Duration = Duration::from_millis(2);

/// Tokio's timer ticks in milliseconds and rounds a deadline up to the next tick. The open loop wakes one tick
/// before each slot, so a send is at most a tick early and not a tick late: a late send would add the
/// generator's own timer lag to every latency measured from the intended time.
const TIMER_TICK: Duration = Duration::from_millis(1);

struct Shared<F, C> {
    make_request: F,
    classify: C,
    recorder: Mutex<Recorder>,
    measure_start: Instant,
    end: Option<Instant>,
    limit: Option<u64>,
    tickets: AtomicU64,
    sequence: AtomicU64,
}

impl<F, C> Shared<F, C> {
    fn record(&self, latency: Duration, outcome: Outcome) {
        let now = Instant::now();
        brownout_foundation::sync::lock(&self.recorder).record(latency, outcome, now);
    }

    /// Whether a request sent at `now` may go (and takes its ticket), and whether it is measured.
    fn admit(&self, now: Instant) -> Option<bool> {
        if now < self.measure_start {
            return Some(false);
        }
        if self.end.is_some_and(|end| now >= end) {
            return None;
        }
        if let Some(limit) = self.limit
            && self.tickets.fetch_add(1, Ordering::Relaxed) >= limit
        {
            return None;
        }
        Some(true)
    }
}

/// Runs `plan` against `svc`: `make_request(i)` builds the i-th request (warm-up included), `classify` judges
/// each answer or error. Every client of a closed loop drives its own clone of `svc`, calling `ready()` before
/// each request; the open loop drives one clone, so backpressure from `poll_ready` delays the sends (and the
/// delay counts in the latency, measured from the intended send time). An error from `poll_ready` is final
/// for that clone: it is counted as an error and a fresh clone takes its place.
///
/// Must be called within a Tokio runtime (it spawns a task per client, or per open-loop request).
pub async fn run<S, Req, F, C>(plan: &LoadPlan, svc: S, make_request: F, classify: C) -> Result<LoadResult, LoadError>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
    F: Fn(u64) -> Req + Send + Sync + 'static,
    C: Fn(Result<&S::Response, &S::Error>) -> Outcome + Send + Sync + 'static,
{
    plan.validate()?;
    let start = Instant::now();
    let too_long = || LoadError::new("the warm-up and the duration must end within a century");
    let measure_start = start.checked_add(plan.warmup).ok_or_else(too_long)?;
    let end = match plan.duration {
        Some(d) => Some(measure_start.checked_add(d).ok_or_else(too_long)?),
        None => None,
    };
    let shared = Arc::new(Shared {
        make_request,
        classify,
        recorder: Mutex::new(Recorder::new()),
        measure_start,
        end,
        limit: plan.requests,
        tickets: AtomicU64::new(0),
        sequence: AtomicU64::new(0),
    });
    let (missed, max_lag) = match plan.mode {
        LoadMode::Closed { clients } => {
            closed(&shared, svc, clients).await;
            (0, Duration::ZERO)
        }
        LoadMode::Open { rate_per_sec, max_in_flight } => {
            open(&shared, svc, start, rate_per_sec, max_in_flight as usize).await
        }
    };
    let recorder = std::mem::replace(&mut *brownout_foundation::sync::lock(&shared.recorder), Recorder::new());
    Ok(recorder.finish(plan, measure_start, missed, max_lag))
}

async fn closed<S, Req, F, C>(shared: &Arc<Shared<F, C>>, svc: S, clients: u32)
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
    F: Fn(u64) -> Req + Send + Sync + 'static,
    C: Fn(Result<&S::Response, &S::Error>) -> Outcome + Send + Sync + 'static,
{
    let mut tasks = Vec::with_capacity(clients as usize);
    for _ in 0..clients {
        let (shared, prototype) = (shared.clone(), svc.clone());
        tasks.push(tokio::spawn(async move {
            let mut svc = prototype.clone();
            loop {
                // A service whose futures are always ready would never yield: spend the task's budget, so the
                // clients take turns on the runtime's threads.
                tokio::task::consume_budget().await;
                let sent = Instant::now();
                let Some(measured) = shared.admit(sent) else { break };
                let request = (shared.make_request)(shared.sequence.fetch_add(1, Ordering::Relaxed));
                let outcome = match tower_ready(&mut svc).await {
                    Ok(()) => {
                        let result = svc.call(request).await;
                        (shared.classify)(result.as_ref())
                    }
                    Err(e) => {
                        svc = prototype.clone();
                        (shared.classify)(Err(&e))
                    }
                };
                if measured {
                    shared.record(sent.elapsed(), outcome);
                }
            }
        }));
    }
    for task in tasks {
        if let Err(e) = task.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

async fn open<S, Req, F, C>(
    shared: &Arc<Shared<F, C>>,
    mut svc: S,
    start: Instant,
    rate: f64,
    max_in_flight: usize,
) -> (u64, Duration)
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
    F: Fn(u64) -> Req + Send + Sync + 'static,
    C: Fn(Result<&S::Response, &S::Error>) -> Outcome + Send + Sync + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate);
    let late = interval + TIMER_SLACK;
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let prototype = svc.clone();
    let (mut missed, mut max_lag) = (0u64, Duration::ZERO);
    for i in 0u64.. {
        // Slots are computed from the start, never from the last send: a stall does not shift the schedule.
        let intended = start + Duration::from_secs_f64(i as f64 / rate);
        let Some(measured) = shared.admit(intended) else { break };
        tokio::time::sleep_until(intended.checked_sub(TIMER_TICK).unwrap_or(intended)).await;
        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let request = (shared.make_request)(i);
        if let Err(e) = tower_ready(&mut svc).await {
            let outcome = (shared.classify)(Err(&e));
            svc = prototype.clone();
            if measured {
                shared.record(intended.elapsed(), outcome);
            }
            continue;
        }
        let now = Instant::now();
        let lag = now.saturating_duration_since(intended);
        if measured {
            max_lag = max_lag.max(lag);
            missed += u64::from(lag > late);
        }
        // Latency counts from the intended time when the send is late (the wait is the service's backlog, not
        // hidden: no coordinated omission), from the send when it is early (at most a tick).
        let from = now.min(intended);
        let future = svc.call(request);
        let shared = shared.clone();
        tokio::spawn(async move {
            let result = future.await;
            let outcome = (shared.classify)(result.as_ref());
            if measured {
                shared.record(from.elapsed(), outcome);
            }
            drop(permit);
        });
    }
    // Every permit back means every request answered.
    let all = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
    drop(permits.acquire_many(all).await.expect("the semaphore is never closed"));
    (missed, max_lag)
}

async fn tower_ready<S: Service<Req>, Req>(svc: &mut S) -> Result<(), S::Error> {
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await
}
