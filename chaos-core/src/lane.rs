//! The fast lane: a rule set whose rules that read the request are a few simple route rules (a literal route
//! or `prefix/**`, standard methods or any, a random sampler) decides them in one short loop over their bytes,
//! without the index's trie walk. The common GameDay set — one rule on a dependency's route and method — takes
//! it.
//!
//! The lane decides as the index does (and as a walk over every rule does): the same rules looked at in the
//! same order, the same draws. `rule::tests` holds it to the linear walk on random rule sets.

use crate::index::{CLASSES, Entry, class_of};
use crate::rng::Stream;
use crate::rule::Rule;
use crate::sampler::Sampler;
use crate::target::{Flavour, RequestFacts};

/// The most rules a lane holds: past a few, the index's trie looks at fewer.
const MAX: usize = 4;

/// A few simple route rules, in rule order.
#[derive(Debug)]
pub(crate) struct Lane {
    rules: Box<[LaneRule]>,
}

#[derive(Debug)]
struct LaneRule {
    /// The rule's index in the set.
    rule: u32,
    /// The bytes a path must equal (`exact`), or start with and then end or go on with `/` (`prefix/**`).
    route: Box<[u8]>,
    /// The route's first eight bytes (fewer, zero-padded, for a shorter route), little-endian, and the mask of
    /// those present: a path of eight bytes or more is compared with them in one go.
    head: u64,
    mask: u64,
    exact: bool,
    /// The method classes the rule takes, a bit each ([`class_of`]); 0 for any method.
    methods: u16,
    /// The sampler's threshold for the request's draw; `None` fires without a draw (rate 1).
    threshold: Option<u64>,
    /// A body fault: only for the HTTP flavour.
    http_only: bool,
}

impl Lane {
    /// The lane for the rules that read the request (the index's `entries`, in rule order), when each is simple
    /// and they are few; `None` otherwise (the index decides).
    pub(crate) fn build(all: &[Rule], entries: &[Entry<'_>]) -> Option<Lane> {
        if entries.is_empty() || entries.len() > MAX {
            return None;
        }
        let mut lane = Vec::with_capacity(entries.len());
        for entry in entries {
            let rule = &all[entry.rule as usize];
            let target = &rule.target;
            if target.any || target.key.is_some() || !target.headers_eq.is_empty() || !target.headers_present.is_empty()
            {
                return None;
            }
            let (route, exact) = target.route.as_ref()?.literal()?;
            let mut methods = 0u16;
            for method in &*target.methods {
                let class = class_of(Some(method));
                if class >= crate::index::EXTENSION {
                    return None;
                }
                methods |= 1 << class;
            }
            let threshold = match rule.sampler {
                // It never fires and takes no draw: as if it were not there.
                Sampler::Never => continue,
                Sampler::Always => None,
                Sampler::Random { threshold } => Some(threshold),
                _ => return None,
            };
            let (head, mask) = head_of(route);
            lane.push(LaneRule {
                rule: entry.rule,
                route: route.into(),
                head,
                mask,
                exact,
                methods,
                threshold,
                http_only: rule.http_only,
            });
        }
        Some(Lane { rules: lane.into() })
    }

    /// The first of the lane's rules before `limit` that chooses the request, or `limit`: the decision
    /// [`RuleSet::scan_general`](crate::rule::RuleSet::scan_general) makes for the same rules.
    #[inline]
    pub(crate) fn scan(&self, limit: usize, facts: &RequestFacts<'_>, stream: &mut Stream) -> usize {
        // Every lane rule has a route: a request without a path matches none.
        let Some(path) = facts.path else {
            return limit;
        };
        let path = path.as_bytes();
        let class = 1u16 << class_of(facts.method);
        for r in &*self.rules {
            let index = r.rule as usize;
            if index >= limit {
                break;
            }
            if r.methods != 0 && r.methods & class == 0 {
                continue;
            }
            let route = &*r.route;
            let holds = if r.exact {
                path.len() == route.len() && starts_with(path, r)
            } else {
                path.len() >= route.len()
                    && starts_with(path, r)
                    && (path.len() == route.len() || path[route.len()] == b'/')
            };
            if !holds || (r.http_only && facts.flavour != Flavour::Http) {
                continue;
            }
            match r.threshold {
                None => return index,
                Some(threshold) if stream.next_adopted() < threshold => return index,
                Some(_) => {}
            }
        }
        limit
    }
}

/// `path` starts with the rule's route (no shorter: the caller has checked it). A path of eight bytes or more
/// is compared with the route's head in one load; the rest, and shorter paths, byte by byte (routes are short:
/// a byte loop beats a call to `memcmp`).
#[inline]
fn starts_with(path: &[u8], r: &LaneRule) -> bool {
    let route = &*r.route;
    match path.first_chunk::<8>() {
        Some(first) => {
            let skip = route.len().min(8);
            u64::from_le_bytes(*first) & r.mask == r.head
                && path[skip..].iter().zip(&route[skip..]).all(|(a, b)| a == b)
        }
        None => path.iter().zip(route).all(|(a, b)| a == b),
    }
}

/// The first eight bytes of `route` (zero-padded) as a little-endian `u64`, and the mask of those present.
fn head_of(route: &[u8]) -> (u64, u64) {
    let mut bytes = [0u8; 8];
    let n = route.len().min(8);
    bytes[..n].copy_from_slice(&route[..n]);
    let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
    (u64::from_le_bytes(bytes), mask)
}

const _: () = assert!(CLASSES <= 16, "a method class is a bit of a u16");
