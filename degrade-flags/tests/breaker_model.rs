//! The breaker against a naive reference model, under random sequences of clock steps, acquisitions,
//! outcomes, drops, forced states and resets: the same admissions, states and window counts at every step,
//! and the invariants (probe bound, open never admits, legal edges) checked directly as well.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brownout_degrade::breaker::{
    Backoff, BreakerConfig, CircuitBreaker, ForcedState, ManualClock, Outcome, Permit, SlidingWindow, SlowCalls, State,
    Transition,
};
use proptest::prelude::*;

const MS: u64 = 1_000_000;
const SLOW: Duration = Duration::from_secs(1);
const PROBES: u32 = 2;
const MIN_CALLS: u64 = 3;

fn config(window: SlidingWindow) -> BreakerConfig {
    BreakerConfig::default()
        .failure_rate_threshold(0.5)
        .slow_calls(SlowCalls::new(SLOW, 0.75))
        .minimum_calls(MIN_CALLS as u32)
        .window(window)
        .open_duration(Duration::from_secs(2))
        .backoff(Backoff::new(2.0, Duration::from_secs(5)))
        .half_open_probes(PROBES)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Window,
    Probe,
    Shadow,
    Untracked,
}

/// The naive model: every recorded call kept in a list; the window recomputed from it each time.
#[derive(Debug)]
struct Model {
    window: SlidingWindow,
    state: State,
    forced: ForcedState,
    generation: u64,
    open_until: u64,
    failed_probes: u32,
    probes_admitted: u32,
    probes_succeeded: u32,
    /// (time, failed, slow) of each call recorded in the window since it last restarted.
    calls: Vec<(u64, bool, bool)>,
}

impl Model {
    fn new(window: SlidingWindow) -> Self {
        Model {
            window,
            state: State::Closed,
            forced: ForcedState::None,
            generation: 0,
            open_until: 0,
            failed_probes: 0,
            probes_admitted: 0,
            probes_succeeded: 0,
            calls: Vec::new(),
        }
    }

    fn set(&mut self, state: State, forced: ForcedState) {
        self.state = state;
        self.forced = forced;
        self.generation += 1;
        self.calls.clear();
        self.probes_admitted = 0;
        self.probes_succeeded = 0;
    }

    fn open(&mut self, now: u64) {
        let base = 2_000 * MS;
        let open_for = (base << self.failed_probes.min(20)).min(5_000 * MS);
        self.open_until = now + open_for;
        self.set(State::Open, self.forced);
    }

    /// (calls, failures, slow) in the window at `now`.
    fn totals(&self, now: u64) -> (u64, u64, u64) {
        let in_window: Vec<_> = match self.window {
            SlidingWindow::Count { calls, buckets } => {
                let b = (calls / buckets) as usize;
                let n = self.calls.len();
                let keep = (n / b).min(buckets as usize) * b + n % b;
                self.calls[n - keep..].to_vec()
            }
            SlidingWindow::Time { duration, buckets } => {
                let bucket = duration.as_nanos() as u64 / u64::from(buckets);
                let now_epoch = now / bucket;
                let oldest = (now_epoch + 1).saturating_sub(u64::from(buckets));
                self.calls.iter().copied().filter(|(t, _, _)| t / bucket >= oldest && t / bucket <= now_epoch).collect()
            }
            other => unreachable!("the model does not know the window {other:?}"),
        };
        let calls = in_window.len() as u64;
        let failures = in_window.iter().filter(|c| c.1).count() as u64;
        let slow = in_window.iter().filter(|c| c.2).count() as u64;
        (calls, failures, slow)
    }

    fn acquire(&mut self, now: u64) -> Option<(u64, Kind)> {
        match self.forced {
            ForcedState::Disabled => return Some((self.generation, Kind::Untracked)),
            ForcedState::ForcedOpen => return None,
            ForcedState::ForcedClosed => return Some((self.generation, Kind::Window)),
            ForcedState::None | ForcedState::MetricsOnly => {}
            other => unreachable!("the model does not know the forced state {other:?}"),
        }
        let dry_run = self.forced == ForcedState::MetricsOnly;
        if self.state == State::Closed {
            return Some((self.generation, Kind::Window));
        }
        if self.state == State::Open {
            if now < self.open_until {
                return dry_run.then_some((self.generation, Kind::Shadow));
            }
            self.set(State::HalfOpen, self.forced);
        }
        if self.probes_admitted + self.probes_succeeded < PROBES {
            self.probes_admitted += 1;
            Some((self.generation, Kind::Probe))
        } else {
            dry_run.then_some((self.generation, Kind::Shadow))
        }
    }

    fn record(&mut self, generation: u64, kind: Kind, outcome: Outcome, slow: bool, now: u64) {
        if generation != self.generation {
            return;
        }
        match kind {
            Kind::Shadow | Kind::Untracked => {}
            Kind::Window => {
                if outcome == Outcome::Ignored {
                    return;
                }
                let failed = outcome == Outcome::Failure;
                self.calls.push((now, failed, slow));
                if (failed || slow) && self.forced != ForcedState::ForcedClosed {
                    let (calls, failures, slow_calls) = self.totals(now);
                    if calls >= MIN_CALLS
                        && (failures as f64 / calls as f64 >= 0.5 || slow_calls as f64 / calls as f64 >= 0.75)
                    {
                        self.open(now);
                    }
                }
            }
            Kind::Probe => {
                self.probes_admitted -= 1;
                match outcome {
                    Outcome::Ignored => {}
                    Outcome::Success if !slow => {
                        self.probes_succeeded += 1;
                        if self.probes_succeeded >= PROBES {
                            self.failed_probes = 0;
                            self.set(State::Closed, self.forced);
                        }
                    }
                    _ => {
                        self.failed_probes += 1;
                        self.open(now);
                    }
                }
            }
        }
    }

    fn force(&mut self, forced: ForcedState) {
        if forced != self.forced {
            self.failed_probes = 0;
            self.set(State::Closed, forced);
        }
    }

    fn reset(&mut self) {
        self.failed_probes = 0;
        self.set(State::Closed, self.forced);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Acquire,
    Record(usize, Outcome, bool),
    Drop(usize),
    Force(ForcedState),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        4 => Just(Outcome::Success),
        3 => Just(Outcome::Failure),
        1 => Just(Outcome::Ignored),
    ];
    let forced = prop_oneof![
        3 => Just(ForcedState::None),
        1 => Just(ForcedState::ForcedOpen),
        1 => Just(ForcedState::ForcedClosed),
        1 => Just(ForcedState::Disabled),
        1 => Just(ForcedState::MetricsOnly),
    ];
    prop_oneof![
        4 => (0u64..1_500).prop_map(Op::Advance),
        8 => Just(Op::Acquire),
        8 => (any::<usize>(), outcome, prop::bool::weighted(0.2)).prop_map(|(i, o, s)| Op::Record(i, o, s)),
        1 => any::<usize>().prop_map(Op::Drop),
        1 => forced.prop_map(Op::Force),
        1 => Just(Op::Reset),
    ]
}

fn window() -> impl Strategy<Value = SlidingWindow> {
    prop_oneof![
        Just(SlidingWindow::Count { calls: 6, buckets: 3 }),
        Just(SlidingWindow::Count { calls: 4, buckets: 4 }),
        Just(SlidingWindow::Count { calls: 5, buckets: 1 }),
        Just(SlidingWindow::Time { duration: Duration::from_secs(3), buckets: 3 }),
        Just(SlidingWindow::Time { duration: Duration::from_secs(2), buckets: 4 }),
    ]
}

fn legal(t: &Transition) -> bool {
    use State::*;
    let machine_edge = t.from.forced == t.to.forced
        && matches!(
            (t.from.state, t.to.state),
            (Closed, Open) | (Open, HalfOpen) | (HalfOpen, Closed) | (HalfOpen, Open)
        );
    // force() and reset() restart the machine, closed, from anywhere.
    machine_edge || t.to.state == Closed
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn breaker_matches_the_reference_model(window in window(), ops in prop::collection::vec(op(), 1..80)) {
        let clock = ManualClock::new();
        let transitions: Arc<Mutex<Vec<Transition>>> = Arc::default();
        let seen = Arc::clone(&transitions);
        let breaker = CircuitBreaker::new("model", config(window), clock.clone())
            .unwrap()
            .with_listener(move |t| seen.lock().unwrap().push(*t));
        let mut model = Model::new(window);
        // Each held permit beside the model's (generation, kind).
        let mut permits: Vec<(Permit<'_>, u64, Kind)> = Vec::new();

        for op in ops {
            let now = clock.now();
            match op {
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::Acquire => {
                    let before = breaker.status();
                    let open_until_passed = now >= model.open_until;
                    let real = breaker.try_acquire();
                    let expected = model.acquire(now);
                    prop_assert_eq!(real.is_ok(), expected.is_some(), "admission differs at {:?}", before);
                    if let (Ok(permit), Some((generation, kind))) = (real, expected) {
                        prop_assert_eq!(permit.is_probe(), kind == Kind::Probe);
                        // Open never admits, unless an override says so or it is due to half-open.
                        if before.state == State::Open && before.forced == ForcedState::None {
                            prop_assert!(open_until_passed && permit.is_probe());
                        }
                        permits.push((permit, generation, kind));
                    }
                }
                Op::Record(i, outcome, slow) if !permits.is_empty() => {
                    let (permit, generation, kind) = permits.remove(i % permits.len());
                    let elapsed = if slow { SLOW } else { Duration::from_millis(5) };
                    permit.record(outcome, elapsed);
                    model.record(generation, kind, outcome, slow, now);
                }
                Op::Drop(i) if !permits.is_empty() => {
                    let (permit, generation, kind) = permits.remove(i % permits.len());
                    drop(permit);
                    model.record(generation, kind, Outcome::Ignored, false, now);
                }
                Op::Record(..) | Op::Drop(_) => {}
                Op::Force(forced) => {
                    breaker.force(forced);
                    model.force(forced);
                }
                Op::Reset => {
                    breaker.reset();
                    model.reset();
                }
            }

            let now = clock.now();
            prop_assert_eq!(breaker.state(), model.state);
            prop_assert_eq!(breaker.forced(), model.forced);
            // Probes in flight never exceed the bound.
            let probes = permits.iter().filter(|(p, g, _)| p.is_probe() && *g == model.generation).count();
            prop_assert!(probes as u32 <= PROBES);
            prop_assert_eq!(model.probes_admitted as usize, probes);
            // The window: the same counts and the same rates as the naive model.
            let snapshot = breaker.snapshot();
            let (calls, failures, slow) = model.totals(now);
            prop_assert_eq!((snapshot.calls, snapshot.failures, snapshot.slow_calls), (calls, failures, slow));
            let rate = if calls == 0 { 0.0 } else { failures as f64 / calls as f64 };
            prop_assert_eq!(snapshot.failure_rate, rate);
        }
        for t in transitions.lock().unwrap().iter() {
            prop_assert!(legal(t), "illegal transition {:?}", t);
        }
    }
}

trait Now {
    fn now(&self) -> u64;
}

impl Now for ManualClock {
    fn now(&self) -> u64 {
        self.elapsed().as_nanos() as u64
    }
}
