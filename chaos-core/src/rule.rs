//! A compiled rule set and the per-request decision over it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::HeaderValue;

use crate::clock::Clock;
use crate::config::ChaosConfig;
use crate::fault::{Delay, Fault, FaultKind};
use crate::index::RuleIndex;
use crate::injection::{ActiveFault, Injection};
use crate::lane::Lane;
use crate::metrics::RuleMetrics;
use crate::rng::{self, Stream};
use crate::sampler::Sampler;
use crate::target::{Flavour, RequestFacts, Target};

/// One compiled rule with its live counters.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) name: Arc<str>,
    /// `x-chaos-injected: <name>`, built once.
    pub(crate) header_value: HeaderValue,
    pub(crate) target: Target,
    pub(crate) sampler: Sampler,
    pub(crate) fault: Fault,
    /// A body fault: applies to the HTTP flavour only.
    pub(crate) http_only: bool,
    pub(crate) start_after: Duration,
    /// Offset from arming at which the rule stops, if it stops before the TTL.
    pub(crate) end_after: Option<Duration>,
    pub(crate) max_injections: u64,
    pub(crate) max_active: u32,
    /// Nanoseconds from the set's `epoch` to the start of this rule's window: the arming, or the reload that
    /// changed the rule. A reload that leaves the rule as it was keeps it, with the counters.
    pub(crate) since: AtomicU64,
    /// Largest fraction of sampled requests the rule may inject (the blast-radius cap, for `first_n`).
    pub(crate) blast_radius: f64,
    /// Sampled requests seen by the counting samplers.
    pub(crate) counter: AtomicU64,
    pub(crate) injected: AtomicU64,
    /// Its first fault since arming was announced (a `CHAOS_EVENT` line).
    pub(crate) announced: std::sync::atomic::AtomicBool,
    pub(crate) overflow: AtomicU64,
    pub(crate) active: AtomicU32,
    pub(crate) metrics: RuleMetrics,
}

impl Rule {
    pub(crate) fn kind(&self) -> FaultKind {
        self.fault.kind()
    }
}

/// The header-fault settings of a rule set.
#[derive(Debug)]
pub(crate) struct HeaderFaults {
    pub(crate) token: Box<[u8]>,
    pub(crate) max_delay: Duration,
    /// Index of the pseudo-rule that accounts for header faults.
    pub(crate) rule: usize,
}

/// One untargeted random rule in the single-draw scan: it is the first such rule to choose the request when
/// the request's draw is below its `threshold` and not below the one before.
///
/// `threshold` is cumulative: 2^64 · (1 − Π (1 − rate) over this rule and the untargeted random rules before
/// it), the chance that at least one of them fires. So one uniform draw decides the first of them to fire with
/// exactly the chance that the rules, drawn one by one and independently, give it: rate · Π (1 − earlier rates).
/// The rules after the first one to choose get fresh, independent draws (`decide_from`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cumulative {
    pub(crate) threshold: u64,
    pub(crate) rule: usize,
}

impl Cumulative {
    /// The cumulative thresholds of the untargeted random rules of `rules`, in order: `(rule, threshold)`.
    pub(crate) fn of(rules: &[Rule]) -> Vec<Cumulative> {
        // q: the chance (in 2^64ths) that none of the rules so far fires, exact to a 2^64th per rule.
        let one = 1u128 << 64;
        let mut q = one;
        rules
            .iter()
            .enumerate()
            .filter_map(|(rule, r)| Some((rule, r.random_untargeted()?)))
            .map(|(rule, t)| {
                q -= (q * u128::from(t)) >> 64;
                Cumulative { threshold: u64::try_from(one - q).unwrap_or(u64::MAX), rule }
            })
            .collect()
    }
}

impl Rule {
    /// The threshold of an untargeted random rule, which the single-draw scan decides without reading the
    /// request; `None` for every other rule (they read the request, a counter or a key).
    pub(crate) fn random_untargeted(&self) -> Option<u64> {
        match self.sampler {
            Sampler::Random { threshold } if self.target.any && !self.http_only => Some(threshold),
            _ => None,
        }
    }
}

/// No rule (in [`Pending`](crate::Pending) and the scans).
pub(crate) const NONE: usize = usize::MAX;

/// Why a chosen fault was not injected.
enum Refusal {
    /// Outside the rule's window: not a fault, not an overflow.
    OutsideWindow,
    /// The rule set's TTL has passed.
    Expired,
    /// A bound said no (`chaos_faults_overflow_total`).
    Overflow,
}

/// A compiled, immutable rule set plus its counters. Reloading swaps in a whole new one.
#[derive(Debug)]
pub(crate) struct RuleSet {
    /// Unique per compiled set; owner tag of the per-thread random streams.
    pub(crate) id: u64,
    pub(crate) config: ChaosConfig,
    pub(crate) seed: u64,
    pub(crate) ttl: Duration,
    /// User rules first, then the header pseudo-rule if any.
    pub(crate) rules: Box<[Rule]>,
    pub(crate) user_rules: usize,
    /// The untargeted random rules, with their cumulative thresholds (see [`Cumulative`]).
    pub(crate) random: Box<[Cumulative]>,
    /// The last cumulative threshold: a request whose draw is not below it is chosen by no untargeted random
    /// rule (0 without such rules: no draw).
    pub(crate) any_random: u64,
    /// Every other user rule, indexed by what the request decides (method, route prefix).
    pub(crate) index: RuleIndex,
    /// The same rules when they are a few simple route rules: decided in one short loop instead.
    pub(crate) lane: Option<Lane>,
    /// Some rule reads the request, or header faults are on: the scan hands the request to the caller.
    pub(crate) reads_request: bool,
    /// Some user rule reads the request's headers (a header condition or a key).
    pub(crate) reads_headers: bool,
    pub(crate) header: Option<HeaderFaults>,
    pub(crate) max_active_total: u32,
    pub(crate) active_total: AtomicU32,
    pub(crate) next_stream: AtomicU64,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) epoch: Instant,
    /// Nanoseconds from `epoch` to the last arming.
    pub(crate) armed_at: AtomicU64,
    pub(crate) expired: AtomicBool,
}

/// What one evaluation found.
pub(crate) enum Verdict {
    None,
    Inject(Injection),
    /// The TTL passed: the controller should disarm.
    Expired,
}

impl RuleSet {
    /// Arms the whole set afresh: the TTL and every rule's window start now.
    pub(crate) fn mark_armed(&self) {
        let now = self.now_nanos();
        self.armed_at.store(now, Ordering::Release);
        for rule in &*self.rules {
            rule.since.store(now, Ordering::Release);
            rule.announced.store(false, Ordering::Relaxed);
        }
        self.expired.store(false, Ordering::Release);
    }

    /// Nanoseconds from `epoch` to now.
    pub(crate) fn now_nanos(&self) -> u64 {
        let now = self.clock.now().saturating_duration_since(self.epoch);
        u64::try_from(now.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes over what a reload must not restart from `old`, the set this one replaces while armed: the TTL's
    /// start, and for every rule whose config is unchanged (same name, same settings, same set-wide blast
    /// radius) its window and counters. A changed or new rule starts its window `now`.
    pub(crate) fn continue_from(&self, old: &RuleSet) {
        let now = self.now_nanos();
        self.armed_at.store(old.armed_at.load(Ordering::Acquire), Ordering::Release);
        self.expired.store(old.expired.load(Ordering::Acquire), Ordering::Release);
        let same_radius = self.config.blast_radius == old.config.blast_radius;
        for (rule, config) in self.rules[..self.user_rules].iter().zip(&self.config.rules) {
            let kept = same_radius
                .then(|| old.config.rules.iter().position(|c| c.name.trim() == config.name.trim()))
                .flatten()
                .filter(|&i| old.config.rules[i] == *config)
                .map(|i| &old.rules[i]);
            match kept {
                Some(before) => {
                    rule.since.store(before.since.load(Ordering::Acquire), Ordering::Release);
                    rule.announced.store(before.announced.load(Ordering::Relaxed), Ordering::Relaxed);
                    for (to, from) in [
                        (&rule.counter, &before.counter),
                        (&rule.injected, &before.injected),
                        (&rule.overflow, &before.overflow),
                    ] {
                        to.store(from.load(Ordering::Acquire), Ordering::Release);
                    }
                }
                None => rule.since.store(now, Ordering::Release),
            }
        }
    }

    /// The names of the rules [`continue_from`](Self::continue_from) would restart: changed or new.
    pub(crate) fn changed_rules(&self, old: &RuleSet) -> Vec<String> {
        let same_radius = self.config.blast_radius == old.config.blast_radius;
        self.config
            .rules
            .iter()
            .filter(|c| !same_radius || !old.config.rules.iter().any(|o| o == *c))
            .map(|c| c.name.trim().to_owned())
            .collect()
    }

    #[inline]
    fn draw(&self, stream: &mut Stream) -> u64 {
        stream.next(self.id, self.seed, &self.next_stream)
    }

    /// The first untargeted random rule to choose a request whose draw is `u` (below [`any_random`]).
    ///
    /// [`any_random`]: Self::any_random
    #[cold]
    pub(crate) fn first_random(&self, u: u64) -> usize {
        let i = self.random.partition_point(|c| c.threshold <= u);
        self.random.get(i).map_or(NONE, |c| c.rule)
    }

    /// The rules that read the request, before rule `limit`, in order until one chooses it: through the lane
    /// when the set has one, else through the index ([`scan_general`](Self::scan_general)).
    #[inline]
    pub(crate) fn scan_request(&self, limit: usize, facts: &RequestFacts<'_>, stream: &mut Stream) -> usize {
        match &self.lane {
            Some(lane) => lane.scan(limit, facts, stream),
            None => self.scan_general(limit, facts, stream),
        }
    }

    /// The rules that read the request, before rule `limit` (the untargeted random rule that chose it, or
    /// [`NONE`]), in order until one chooses it: only those the index says could match are looked at. Each
    /// looked at counts as its one decision.
    #[inline]
    pub(crate) fn scan_general(&self, limit: usize, facts: &RequestFacts<'_>, stream: &mut Stream) -> usize {
        let lookup = self.index.candidates(facts);
        for index in lookup.rules {
            let index = index as usize;
            if index >= limit {
                break;
            }
            let rule = &self.rules[index];
            if rule.target.matches_given(facts, lookup.proof) && self.chooses(rule, facts, stream) {
                return index;
            }
        }
        limit
    }

    /// The decision [`scan_general`](Self::scan_general) and the single draw make together, taken by walking
    /// every user rule in order: the reference the index is tested against. `u` is the request's draw, when
    /// the set has untargeted random rules.
    #[cfg(test)]
    pub(crate) fn scan_linear(&self, u: Option<u64>, facts: &RequestFacts<'_>, stream: &mut Stream) -> usize {
        let mut random = self.random.iter();
        for (index, rule) in self.rules[..self.user_rules].iter().enumerate() {
            let chosen = if rule.random_untargeted().is_some() {
                let c = random.next().expect("one cumulative entry per untargeted random rule");
                u.expect("a draw when there are untargeted random rules") < c.threshold
            } else {
                self.sample(rule, facts, stream)
            };
            if chosen {
                return index;
            }
        }
        NONE
    }

    /// Does `rule` apply to this request, and does its sampler choose it? Counts as the rule's one decision.
    #[inline]
    fn sample(&self, rule: &Rule, facts: &RequestFacts<'_>, stream: &mut Stream) -> bool {
        rule.target.matches(facts) && self.chooses(rule, facts, stream)
    }

    /// The sampler's decision for a rule whose targeting holds. Counts as the rule's one decision.
    #[inline]
    fn chooses(&self, rule: &Rule, facts: &RequestFacts<'_>, stream: &mut Stream) -> bool {
        if rule.http_only && facts.flavour != Flavour::Http {
            return false;
        }
        let key: &[u8] = if rule.sampler.needs_key() {
            match rule.target.key(facts) {
                Some(key) => key,
                None => return false,
            }
        } else {
            &[]
        };
        // The decider adopted the stream for this set when it picked the set up.
        rule.sampler.fires(&rule.counter, key, || stream.next_adopted())
    }

    /// Rule `first` chose this request: admit it, then give each later rule its one decision for the slots
    /// still free.
    pub(crate) fn decide_from(
        self: &Arc<Self>,
        first: usize,
        facts: &RequestFacts<'_>,
        stream: &mut Stream,
    ) -> Verdict {
        let mut injection = Injection::default();
        let mut expired = false;
        for (index, rule) in self.rules[..self.user_rules].iter().enumerate().skip(first) {
            let taken = match &rule.fault {
                Fault::Delay(_) | Fault::Burn(_) => injection.delay.is_some(),
                Fault::Outcome(_) => injection.outcome.is_some(),
                Fault::Body(_) => injection.body.is_some(),
                Fault::Header => true,
            };
            if taken || (index != first && !self.sample(rule, facts, stream)) {
                continue;
            }
            match self.admit(rule) {
                Ok(()) => self.fill(&mut injection, index, stream),
                Err(Refusal::OutsideWindow) => {}
                Err(Refusal::Expired) => expired = true,
                Err(Refusal::Overflow) => {
                    rule.overflow.fetch_add(1, Ordering::Relaxed);
                    rule.metrics.overflow.increment(1);
                }
            }
        }
        if injection.is_empty() {
            if expired { Verdict::Expired } else { Verdict::None }
        } else {
            Verdict::Inject(injection)
        }
    }

    fn fill(self: &Arc<Self>, injection: &mut Injection, index: usize, stream: &mut Stream) {
        let rule = &self.rules[index];
        match &rule.fault {
            Fault::Delay(latency) => {
                let duration = latency.sample(rng::unit_f64(self.draw(stream)), rng::unit_f64(self.draw(stream)));
                injection.delay = Some(ActiveFault::new(self.clone(), index, Delay::Sleep(duration)));
            }
            Fault::Burn(cpu) => injection.delay = Some(ActiveFault::new(self.clone(), index, Delay::BurnCpu(*cpu))),
            Fault::Outcome(outcome) => {
                injection.outcome = Some(ActiveFault::new(self.clone(), index, outcome.clone()));
            }
            Fault::Body(body) => injection.body = Some(ActiveFault::new(self.clone(), index, *body)),
            Fault::Header => return,
        }
        tracing::debug!(rule = %rule.name, kind = rule.kind().as_str(), "chaos fault injected");
    }

    /// Checks the window and takes the bounded resources for one fault of `rule`: the TTL, the rule's
    /// window, its active slot, the global active slot, its injection budget and its blast radius, in that
    /// order. Everything taken is given back if a later check fails.
    fn admit(&self, rule: &Rule) -> Result<(), Refusal> {
        if self.expired.load(Ordering::Relaxed) {
            return Err(Refusal::Expired);
        }
        let now = self.now_nanos();
        let elapsed = Duration::from_nanos(now.saturating_sub(self.armed_at.load(Ordering::Acquire)));
        if elapsed >= self.ttl {
            self.expired.store(true, Ordering::Relaxed);
            return Err(Refusal::Expired);
        }
        let elapsed = Duration::from_nanos(now.saturating_sub(rule.since.load(Ordering::Acquire)));
        if elapsed < rule.start_after || rule.end_after.is_some_and(|end| elapsed >= end) {
            return Err(Refusal::OutsideWindow);
        }
        if !try_take(&rule.active, rule.max_active) {
            return Err(Refusal::Overflow);
        }
        if !try_take(&self.active_total, self.max_active_total) {
            rule.active.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Overflow);
        }
        let budget = if rule.blast_radius < 1.0 && matches!(rule.sampler, Sampler::FirstN { .. }) {
            let seen = rule.counter.load(Ordering::Relaxed);
            ((seen as f64) * rule.blast_radius).ceil() as u64
        } else {
            u64::MAX
        };
        if !try_take64(&rule.injected, rule.max_injections.min(budget)) {
            rule.active.fetch_sub(1, Ordering::AcqRel);
            self.active_total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Overflow);
        }
        rule.metrics.injected.increment(1);
        rule.metrics.active.increment(1.0);
        // The rule's first fault since arming: one CHAOS_EVENT line (a load and a branch after that).
        if !rule.announced.load(Ordering::Relaxed) && !rule.announced.swap(true, Ordering::Relaxed) {
            let experiment = self.config.experiment.as_deref().unwrap_or_default();
            let kind = rule.kind().as_str();
            crate::event::emit(
                "chaos_failure_injected",
                &rule.name,
                experiment,
                &format!("first {kind} fault injected by rule {}", rule.name),
                serde_json::json!({ "kind": kind, "rule": &*rule.name }),
            );
        }
        Ok(())
    }

    /// Takes the header pseudo-rule's slots for a caller-requested fault.
    pub(crate) fn admit_header(&self) -> Option<usize> {
        let index = self.header.as_ref()?.rule;
        let rule = &self.rules[index];
        match self.admit(rule) {
            Ok(()) => Some(index),
            Err(Refusal::Overflow) => {
                rule.overflow.fetch_add(1, Ordering::Relaxed);
                rule.metrics.overflow.increment(1);
                None
            }
            Err(_) => None,
        }
    }

    /// Gives back the slots of one finished fault.
    pub(crate) fn release(&self, index: usize) {
        let rule = &self.rules[index];
        rule.active.fetch_sub(1, Ordering::AcqRel);
        self.active_total.fetch_sub(1, Ordering::AcqRel);
        rule.metrics.active.decrement(1.0);
    }
}

/// Increments `slot` if it is below `max`; exact under concurrency.
#[inline]
fn try_take(slot: &AtomicU32, max: u32) -> bool {
    slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
}

#[inline]
fn try_take64(slot: &AtomicU64, max: u64) -> bool {
    slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).is_ok()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::{HeaderMap, HeaderValue, Method};
    use proptest::prelude::*;

    use super::*;
    use crate::clock::SystemClock;
    use crate::compile::compile;
    use crate::environment::Environment;

    fn set(yaml: &str) -> RuleSet {
        let config = ChaosConfig::from_yaml_str(yaml, None).expect("generated config parses");
        compile(config, Environment::Test, Arc::new(SystemClock), None).expect("generated config compiles")
    }

    fn route() -> impl Strategy<Value = Option<String>> {
        let seg = prop::sample::select(vec!["api", "a", "ab", "quotes", "", "*", "a*", "?b", "**", "{id}"]);
        let tail = prop::sample::select(vec![None, Some("{*rest}"), Some("**")]);
        let pattern = (prop::collection::vec(seg, 0..4), tail, any::<bool>()).prop_map(|(segs, tail, rooted)| {
            let mut p = if rooted { String::from("/") } else { String::new() };
            p.push_str(&segs.join("/"));
            if let Some(t) = tail {
                p.push_str(if p.is_empty() || p.ends_with('/') { "" } else { "/" });
                p.push_str(t);
            }
            p
        });
        prop::option::weighted(0.7, pattern.prop_filter("a route is not empty", |p| !p.is_empty()))
    }

    fn rule() -> impl Strategy<Value = String> {
        let methods = prop::sample::subsequence(vec!["GET", "POST", "PUT", "PURGE"], 0..=2);
        let sample = prop::sample::select(vec![
            "{ mode: random, rate: 0.3 }",
            "{ mode: random, rate: 0.05 }",
            "{ mode: random, rate: 0.9 }",
            "{ mode: random, rate: 1.0 }",
            "{ mode: random, rate: 0.0 }",
            "{ mode: exact, rate: 0.5 }",
            "{ mode: every_nth, nth: 3 }",
            "{ mode: first_n, count: 2 }",
            "{ mode: hash, rate: 0.5 }",
        ]);
        let fault = prop::sample::select(vec![
            "{ error: { status: 503 } }",
            "{ latency: { fixed: 1ms } }",
            "{ truncate: { after_bytes: 1 } }",
        ]);
        (route(), methods, any::<bool>(), sample, fault)
            .prop_map(|(route, methods, header, sample, fault)| rule_yaml(route, &methods, header, sample, fault))
    }

    /// A rule's YAML body: its targeting (a key when the sampler hashes), sampler and fault.
    fn rule_yaml(route: Option<String>, methods: &[&str], header: bool, sample: &str, fault: &str) -> String {
        let mut target = Vec::new();
        if let Some(r) = route {
            target.push(format!("route: '{r}'"));
        }
        if !methods.is_empty() {
            target.push(format!("method: [{}]", methods.join(", ")));
        }
        if header {
            target.push("headers: { x-a: '1' }".to_owned());
        }
        if sample.contains("hash") {
            target.push("key: { header: x-k }".to_owned());
        }
        format!("match: {{ {} }}, sample: {sample}, fault: {fault}", target.join(", "))
    }

    /// (method, path, x-a, x-k); `None` for the method: a request without HTTP facts.
    fn request() -> impl Strategy<Value = (Option<&'static str>, String, bool, bool)> {
        let method = prop::sample::select(vec![
            Some("GET"),
            Some("POST"),
            Some("PUT"),
            Some("PURGE"),
            Some("LINK"),
            Some("DELETE"),
            None,
        ]);
        let seg = prop::sample::select(vec!["api", "a", "ab", "quotes", "", "b", "x"]);
        let path = (prop::collection::vec(seg, 0..5), any::<bool>())
            .prop_map(|(segs, rooted)| format!("{}{}", if rooted { "/" } else { "" }, segs.join("/")));
        (method, path, any::<bool>(), any::<bool>())
    }

    proptest! {
        // No failure files: tests never write into the source tree.
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// The indexed scan (one draw for the untargeted random rules, then only the rules the index — or the
        /// lane, for a few simple route rules — says could match) makes the decision a walk over every rule makes,
        /// request after request: the same first rule, the same counters, the same random stream.
        #[test]
        fn the_index_decides_as_the_linear_scan(
            rules in prop::collection::vec(rule(), 0..12),
            requests in prop::collection::vec((request(), any::<bool>()), 1..40),
            seed in any::<u64>(),
        ) {
            decides_as_the_linear_scan(&rules, &requests, seed)?;
        }

        /// The same for sets of a few simple route rules (literal or `prefix/**` routes, random samplers), which
        /// the lane decides, and a few more, which it leaves to the index.
        #[test]
        fn the_lane_decides_as_the_linear_scan(
            rules in prop::collection::vec(lane_rule(), 0..7),
            requests in prop::collection::vec((request(), any::<bool>()), 1..40),
            seed in any::<u64>(),
        ) {
            decides_as_the_linear_scan(&rules, &requests, seed)?;
        }
    }

    type Request = ((Option<&'static str>, String, bool, bool), bool);

    /// Decides `requests` with the set of `rules` (YAML bodies) through `scan_request` and through the walk
    /// over every rule, and compares.
    fn decides_as_the_linear_scan(rules: &[String], requests: &[Request], seed: u64) -> Result<(), TestCaseError> {
        let mut yaml = format!("seed: {seed}\nrules:\n");
        for (i, r) in rules.iter().enumerate() {
            yaml.push_str(&format!("  - {{ name: r{i}, {r} }}\n"));
        }
        if rules.is_empty() {
            yaml.push_str("  []\n");
        }
        let (indexed, linear) = (set(&yaml), set(&yaml));
        let (mut s1, mut s2) = (Stream::default(), Stream::default());
        s1.adopt(indexed.id, indexed.seed, &indexed.next_stream);
        s2.adopt(linear.id, linear.seed, &linear.next_stream);
        for ((method, path, a, k), canonical) in requests {
            let owned = method.map(|m| Method::from_bytes(m.as_bytes()).unwrap());
            // As `RequestFacts::http_path_method` passes it (a standard method as its constant), or not.
            let method: Option<&Method> = owned.as_ref().map(|m| match crate::index::standard(m) {
                Some(constant) if *canonical => constant,
                _ => m,
            });
            let mut headers = HeaderMap::new();
            if *a {
                headers.insert("x-a", HeaderValue::from_static("1"));
            }
            if *k {
                headers.insert("x-k", HeaderValue::from_str(path).unwrap_or(HeaderValue::from_static("k")));
            }
            let facts = match method {
                Some(m) => {
                    RequestFacts { path: Some(path), method: Some(m), headers: Some(&headers), flavour: Flavour::Http }
                }
                // Without a method: a generic request with a path (as `ChaosIo` gives) or without one.
                None if *a => RequestFacts::path_only(path, Flavour::Generic),
                None => RequestFacts::NONE,
            };
            let got = {
                let u = (indexed.any_random != 0).then(|| s1.next_adopted());
                let limit = u.filter(|&u| u < indexed.any_random).map_or(NONE, |u| indexed.first_random(u));
                indexed.scan_request(limit, &facts, &mut s1)
            };
            let want = {
                let u = (linear.any_random != 0).then(|| s2.next_adopted());
                linear.scan_linear(u, &facts, &mut s2)
            };
            prop_assert_eq!(got, want, "{:?} {} for\n{}", method, path, yaml);
            // The same draws taken: the streams stay in step (their owners differ: two sets).
            prop_assert_eq!({ s1 }.next_adopted(), { s2 }.next_adopted());
            for (x, y) in indexed.rules.iter().zip(&*linear.rules) {
                prop_assert_eq!(x.counter.load(Ordering::Relaxed), y.counter.load(Ordering::Relaxed));
            }
        }
        Ok(())
    }

    /// A simple route rule (what the lane takes), now and then one it does not (an extension method, a header,
    /// a counting sampler), untargeted random rules between them.
    fn lane_rule() -> impl Strategy<Value = String> {
        let seg = prop::sample::select(vec!["api", "a", "ab", "quotes", "b"]);
        let route = (prop::collection::vec(seg, 1..3), any::<bool>())
            .prop_map(|(segs, prefix)| format!("/{}{}", segs.join("/"), if prefix { "/**" } else { "" }));
        let methods = prop::sample::subsequence(vec!["GET", "POST", "DELETE", "PURGE"], 0..=2);
        let sample = prop::sample::select(vec![
            "{ mode: random, rate: 0.3 }",
            "{ mode: random, rate: 0.9 }",
            "{ mode: random, rate: 1.0 }",
            "{ mode: random, rate: 0.0 }",
            "{ mode: exact, rate: 0.5 }",
        ]);
        let fault = prop::sample::select(vec!["{ error: { status: 503 } }", "{ truncate: { after_bytes: 1 } }"]);
        (prop::option::weighted(0.9, route), methods, prop::bool::weighted(0.05), sample, fault)
            .prop_map(|(route, methods, header, sample, fault)| rule_yaml(route, &methods, header, sample, fault))
    }

    /// The lane takes the common GameDay set and leaves to the index what it cannot decide.
    #[test]
    fn the_lane_takes_a_few_simple_route_rules() {
        let rule = |i: usize, route: &str, extra: &str| {
            format!(
                "  - {{ name: r{i}, match: {{ route: '{route}', method: GET{extra} }}, sample: {{ mode: random, rate: 0.001 }}, fault: {{ error: {{ status: 503 }} }} }}\n"
            )
        };
        let yaml = |rules: &[String]| format!("seed: 1\nrules:\n{}", rules.concat());
        assert!(set(&yaml(&[rule(0, "/api/**", "")])).lane.is_some());
        assert!(set(&yaml(&[rule(0, "/api/quotes", ""), rule(1, "/b/**", "")])).lane.is_some());
        assert!(set(&yaml(&[rule(0, "/api/*/x", "")])).lane.is_none(), "a general pattern");
        assert!(set(&yaml(&[rule(0, "/api/**", ", headers: { x-a: '1' }")])).lane.is_none(), "a header");
        assert!(
            set(&yaml(&[rule(0, "/api/**", ", method: [GET, PURGE]").replace("method: GET, ", "")])).lane.is_none(),
            "an extension method"
        );
        let five: Vec<String> = (0..5).map(|i| rule(i, &format!("/r{i}/**"), "")).collect();
        assert!(set(&yaml(&five)).lane.is_none(), "more than a few: the index");
    }

    /// One draw against cumulative thresholds picks the first untargeted random rule to fire with the chance
    /// independent draws give it, rate · Π (1 − earlier rates), and none with Π (1 − rates).
    #[test]
    fn the_single_draw_gives_each_rule_its_own_rate() {
        let rates = [0.3, 0.05, 0.5, 0.2];
        let mut yaml = String::from("seed: 7\nrules:\n");
        for (i, r) in rates.iter().enumerate() {
            yaml.push_str(&format!(
                "  - {{ name: r{i}, sample: {{ mode: random, rate: {r} }}, fault: {{ error: {{ status: 503 }} }} }}\n"
            ));
        }
        let set = set(&yaml);
        let mut stream = Stream::default();
        stream.adopt(set.id, set.seed, &set.next_stream);
        let n = 200_000;
        let mut counts = [0usize; 5];
        for _ in 0..n {
            let u = stream.next_adopted();
            let first = if u < set.any_random { set.first_random(u) } else { NONE };
            counts[if first == NONE { rates.len() } else { first }] += 1;
        }
        let mut none = 1.0;
        let mut expected = Vec::new();
        for r in rates {
            expected.push(none * r);
            none *= 1.0 - r;
        }
        expected.push(none);
        // Each cell within 5 standard deviations of its binomial mean (a fixed seed: the same draws every run).
        for (got, p) in counts.iter().zip(&expected) {
            let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
            assert!((*got as f64 - mean).abs() <= 5.0 * sd, "{counts:?} against {expected:?}");
        }
        // And the thresholds themselves are exact: the first is the rule's own threshold, the last 1 − Π (1 − r).
        assert_eq!(set.random[0].threshold, crate::rng::threshold(rates[0]));
        let last = set.any_random as f64 / 18_446_744_073_709_551_616.0;
        assert!((last - (1.0 - none)).abs() < 1e-12, "{last} vs {}", 1.0 - none);
    }
}
