//! A compiled rule set and the per-request decision over it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::HeaderValue;

use crate::clock::Clock;
use crate::config::ChaosConfig;
use crate::fault::{Delay, Fault, FaultKind};
use crate::injection::{ActiveFault, Injection};
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

/// Where [`RuleSet::scan_hot`] stopped.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scanned {
    /// No rule chose the request, and none needs its facts.
    Pass,
    /// This untargeted random rule chose the request.
    Chosen(usize),
    /// This rule, and the ones after it, need the request's facts.
    General(usize),
}

/// The hot loop's view of a rule: a 16-byte entry, so deciding "no" for an untargeted random rule reads one
/// cache line per four rules and nothing else.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hot {
    /// No targeting, random sampling, any flavour: chosen when a draw is below the threshold.
    Random(u64),
    /// Anything else: the rule's own targeting and sampler decide.
    General,
    /// Last, when header faults are on: no rule chose the request, but its headers may ask for faults, so the
    /// scan hands the request to the caller as [`General`](Self::General) does, and chooses nothing.
    Header,
}

impl Hot {
    pub(crate) fn of(rule: &Rule) -> Self {
        match rule.sampler {
            Sampler::Random { threshold } if rule.target.any && !rule.http_only => Hot::Random(threshold),
            _ => Hot::General,
        }
    }
}

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
    /// One compact entry per user rule, then [`Hot::Header`] when header faults are on; read by the hot
    /// loop (see [`Hot`]).
    pub(crate) hot: Box<[Hot]>,
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

    /// Evaluates every user rule once for this request, first the part that reads no request: untargeted
    /// random rules, up to the first rule that needs the request's facts or a counter (then
    /// [`scan_general`](Self::scan_general) goes on from there).
    #[inline]
    pub(crate) fn scan_hot(&self, stream: &mut Stream) -> Scanned {
        // The common case, no rule fires, touches nothing but the compact entries: untargeted random rules
        // are decided inline, without a call; the first other rule hands the rest of the scan to
        // `scan_general`. The first rule that chooses the request goes to `decide_from`. The stream was
        // adopted for this set when the decider picked the set up (`Decider::refresh`).
        for (index, hot) in self.hot.iter().enumerate() {
            match *hot {
                Hot::Random(threshold) => {
                    if stream.next_adopted() < threshold {
                        return Scanned::Chosen(index);
                    }
                }
                Hot::General | Hot::Header => return Scanned::General(index),
            }
        }
        Scanned::Pass
    }

    /// The rest of [`scan_hot`](Self::scan_hot) from the first rule that needs its targeting or a counter.
    #[inline(never)]
    pub(crate) fn scan_general(&self, from: usize, facts: &RequestFacts<'_>, stream: &mut Stream) -> Option<usize> {
        // `hot` and `rules` have one entry per rule, the header pseudo-rule included: walk them side by side.
        let hot = self.hot.get(from..).unwrap_or_default();
        let rules = self.rules.get(from..).unwrap_or_default();
        for (offset, (hot, rule)) in hot.iter().zip(rules).enumerate() {
            let chosen = match *hot {
                Hot::Random(threshold) => stream.next_adopted() < threshold,
                Hot::General => self.sample(rule, facts, stream),
                Hot::Header => false,
            };
            if chosen {
                return Some(from + offset);
            }
        }
        None
    }

    /// Does `rule` apply to this request, and does its sampler choose it? Counts as the rule's one decision.
    #[inline]
    fn sample(&self, rule: &Rule, facts: &RequestFacts<'_>, stream: &mut Stream) -> bool {
        if (rule.http_only && facts.flavour != Flavour::Http) || !rule.target.matches(facts) {
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
