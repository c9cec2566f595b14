//! Property tests of the samplers' promises (DESIGN.md, "faults are honest").

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use brownout_chaos::{ChaosConfig, Controller, Environment, RequestFacts};
use http::Request;
use proptest::prelude::*;

fn controller(yaml: &str) -> Controller {
    let controller = Controller::builder().environment(Environment::Test).build();
    controller.load(ChaosConfig::from_yaml_str(yaml, None).unwrap()).unwrap();
    controller
}

fn rule(mode: &str, rate: f64, seed: u64) -> String {
    format!("seed: {seed}\nrules: [{{ name: r, sample: {{ mode: {mode}, rate: {rate} }}, fault: {{ reset: {{}} }} }}]")
}

/// Number of proptest cases in the random-mode test; the z below covers all of them together.
const RANDOM_CASES: u32 = 64;
/// Two-sided z for 99.9% over the whole family of cases (Bonferroni: 0.001 / 64 per case).
const Z: f64 = 4.37;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(RANDOM_CASES))]

    /// Random mode: the count injected lies in the 99.9% binomial interval around N·rate.
    #[test]
    fn random_mode_rate_is_binomial(rate in 0.01f64..0.99, seed in any::<u64>(), n in 2_000usize..6_000) {
        let controller = controller(&rule("random", rate, seed));
        let mut decider = controller.decider();
        let injected = (0..n).filter(|_| decider.decide(&RequestFacts::NONE).is_some()).count() as f64;
        let mean = n as f64 * rate;
        let sd = (n as f64 * rate * (1.0 - rate)).sqrt();
        prop_assert!((injected - mean).abs() <= Z * sd + 1.0, "injected {} of {} at rate {}", injected, n, rate);
    }
}

proptest! {
    /// Exact mode: every prefix, and every window, of N matching requests gets N·rate ± 1 injections.
    #[test]
    fn exact_mode_is_within_one_for_every_prefix_and_window(
        rate in 0.0f64..=1.0,
        n in 1usize..3_000,
        windows in proptest::collection::vec((0usize..3_000, 0usize..3_000), 1..20),
    ) {
        let controller = controller(&rule("exact", rate, 1));
        let mut decider = controller.decider();
        let fired: Vec<bool> = (0..n).map(|_| decider.decide(&RequestFacts::NONE).is_some()).collect();
        let mut count = 0usize;
        for (i, f) in fired.iter().enumerate() {
            count += usize::from(*f);
            let expected = (i + 1) as f64 * rate;
            prop_assert!((count as f64 - expected).abs() <= 1.0, "prefix {}: {} vs {}", i + 1, count, expected);
        }
        for (a, b) in windows {
            let (a, b) = (a.min(b).min(n), a.max(b).min(n));
            let got = fired[a..b].iter().filter(|f| **f).count() as f64;
            let expected = (b - a) as f64 * rate;
            prop_assert!((got - expected).abs() <= 1.0, "window {}..{}: {} vs {}", a, b, got, expected);
        }
    }

    /// Hash mode: the decision is a function of (seed, rule, key): the same whatever the order or thread.
    #[test]
    fn hash_mode_is_order_and_thread_independent(
        rate in 0.0f64..=1.0,
        seed in any::<u64>(),
        keys in proptest::collection::hash_set("[a-z0-9-]{1,24}", 1..300),
        shuffle_seed in any::<u64>(),
    ) {
        let yaml = format!(
            "seed: {seed}\nrules: [{{ name: h, match: {{ key: {{ header: x-tenant }} }}, \
             sample: {{ mode: hash, rate: {rate} }}, fault: {{ reset: {{}} }} }}]"
        );
        let keys: Vec<String> = keys.into_iter().collect();
        let decide_all = |order: &[String]| -> HashMap<String, bool> {
            let controller = controller(&yaml);
            let mut decider = controller.decider();
            order.iter().map(|k| {
                let req = Request::get("/").header("x-tenant", k.as_str()).body(()).unwrap();
                (k.clone(), decider.decide(&RequestFacts::http(&req)).is_some())
            }).collect()
        };
        let first = decide_all(&keys);

        // Shuffled order, fresh controller with the same seed.
        let mut shuffled = keys.clone();
        let mut state = shuffle_seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(&first, &decide_all(&shuffled));

        // Two threads sharing one controller, each deciding for interleaved halves (twice).
        let controller = Arc::new(controller(&yaml));
        let results: Vec<HashMap<String, bool>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2).map(|t| {
                let controller = controller.clone();
                let keys = &keys;
                s.spawn(move || {
                    let mut decider = controller.decider();
                    keys.iter().skip(t).step_by(2).chain(keys.iter()).map(|k| {
                        let req = Request::get("/").header("x-tenant", k.as_str()).body(()).unwrap();
                        (k.clone(), decider.decide(&RequestFacts::http(&req)).is_some())
                    }).collect::<Vec<_>>().into_iter().collect()
                })
            }).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for map in results {
            for (k, v) in map {
                prop_assert_eq!(first[&k], v, "key {}", k);
            }
        }
    }

    /// Requests without the key are not eligible in hash mode.
    #[test]
    fn hash_mode_skips_requests_without_a_key(seed in any::<u64>()) {
        let yaml = format!(
            "seed: {seed}\nrules: [{{ name: h, match: {{ key: {{ header: x-tenant }} }}, \
             sample: {{ mode: hash, rate: 1.0 }}, fault: {{ reset: {{}} }} }}]"
        );
        let controller = controller(&yaml);
        let mut decider = controller.decider();
        let req = Request::get("/").body(()).unwrap();
        prop_assert!(decider.decide(&RequestFacts::http(&req)).is_none());
    }

    /// every_nth fires exactly on multiples of n; first_n exactly on the first n.
    #[test]
    fn counting_samplers_are_exact(n in 1u64..50, total in 1usize..500) {
        let every = controller(&format!(
            "rules: [{{ name: e, sample: {{ mode: every_nth, nth: {n} }}, fault: {{ reset: {{}} }} }}]"
        ));
        let mut d = every.decider();
        for i in 1..=total {
            prop_assert_eq!(d.decide(&RequestFacts::NONE).is_some(), (i as u64).is_multiple_of(n));
        }
        let first = controller(&format!(
            "rules: [{{ name: f, sample: {{ mode: first_n, count: {n} }}, fault: {{ reset: {{}} }} }}]"
        ));
        let mut d = first.decider();
        for i in 1..=total {
            prop_assert_eq!(d.decide(&RequestFacts::NONE).is_some(), i as u64 <= n);
        }
    }

    /// max_active (per rule) and max_active_faults (overall) are never exceeded, even with two threads
    /// taking and releasing faults as fast as they can.
    #[test]
    fn max_active_is_never_exceeded(per_rule in 1u32..6, overall in 1u32..8, rounds in 100usize..2_000) {
        let yaml = format!(
            "max_active_faults: {overall}\nrules:\n\
             - {{ name: a, max_active: {per_rule}, sample: {{ mode: exact, rate: 1.0 }}, fault: {{ latency: {{ fixed: 1ms }} }} }}\n\
             - {{ name: b, sample: {{ mode: exact, rate: 1.0 }}, fault: {{ reset: {{}} }} }}"
        );
        let controller = controller(&yaml);
        let held_a = AtomicUsize::new(0);
        let held_all = AtomicUsize::new(0);
        let violations = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..2 {
                let (controller, held_a, held_all, violations) = (&controller, &held_a, &held_all, &violations);
                s.spawn(move || {
                    let mut decider = controller.decider();
                    let mut kept = Vec::new();
                    for i in 0..rounds {
                        if let Some(injection) = decider.decide(&RequestFacts::NONE) {
                            let a = usize::from(injection.delay().is_some());
                            let all = a + usize::from(injection.outcome().is_some());
                            if held_a.fetch_add(a, Ordering::SeqCst) + a > per_rule as usize
                                || held_all.fetch_add(all, Ordering::SeqCst) + all > overall as usize
                            {
                                violations.fetch_add(1, Ordering::SeqCst);
                            }
                            kept.push((injection, a, all));
                        }
                        if (i + t) % 3 == 0 {
                            while let Some((injection, a, all)) = kept.pop() {
                                held_a.fetch_sub(a, Ordering::SeqCst);
                                held_all.fetch_sub(all, Ordering::SeqCst);
                                drop(injection);
                            }
                        }
                    }
                    for (injection, a, all) in kept {
                        held_a.fetch_sub(a, Ordering::SeqCst);
                        held_all.fetch_sub(all, Ordering::SeqCst);
                        drop(injection);
                    }
                });
            }
        });
        prop_assert_eq!(violations.load(Ordering::SeqCst), 0);
        let snapshot = controller.snapshot();
        prop_assert_eq!(snapshot.active_faults, 0, "every slot given back");
        prop_assert!(snapshot.rules.iter().all(|r| r.active == 0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// A service cloned per request (a boxed service, a handler's `clone().oneshot(..)`) decides each request
    /// with a fresh clone of its decider: every clone draws from a stream of its own, so the rate holds and
    /// two clones do not repeat each other's draws.
    #[test]
    fn a_decider_cloned_per_request_keeps_the_rate(rate in 0.05f64..0.95, seed in any::<u64>()) {
        let controller = controller(&rule("random", rate, seed));
        let mut source = controller.decider();
        source.decide(&RequestFacts::NONE);
        let n = 4_000usize;
        let injected = (0..n).filter(|_| source.clone().decide(&RequestFacts::NONE).is_some()).count() as f64;
        let (mean, sd) = (n as f64 * rate, (n as f64 * rate * (1.0 - rate)).sqrt());
        prop_assert!((injected - mean).abs() <= 4.0 * sd + 1.0, "injected {} of {} at rate {}", injected, n, rate);
        let (mut a, mut b) = (source.clone(), source.clone());
        let draws = |d: &mut brownout_chaos::Decider| (0..64).map(|_| d.decide(&RequestFacts::NONE).is_some()).collect::<Vec<_>>();
        prop_assert_ne!(draws(&mut a), draws(&mut b));
    }

    /// A run on one thread with the same seed, services cloned per request in the same order, replays the same
    /// decisions: the clones' stream numbers come from the thread's block of its rule set's numbers, from 0.
    #[test]
    fn the_same_seed_replays_the_same_decisions_on_one_thread(rate in 0.05f64..0.95, seed in any::<u64>()) {
        let run = || {
            let controller = controller(&rule("random", rate, seed));
            let source = controller.decider();
            (0..300).map(|_| source.clone().decide(&RequestFacts::NONE).is_some()).collect::<Vec<_>>()
        };
        prop_assert_eq!(run(), run());
    }
}
