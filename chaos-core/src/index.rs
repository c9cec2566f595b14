//! Which rules could match a request, found from its method and path without looking at the rules that
//! cannot: the rules that read the request (targeting, a key, a counting sampler) indexed by method and by the
//! literal prefix of their route.
//!
//! The index is a filter: every rule it yields is still checked in full by its own targeting, so it only has
//! to keep every rule that *could* match (a superset). It keeps rule order, because the first rule that chooses
//! a request is the one that gets it.

use http::Method;

use crate::target::RequestFacts;

/// The standard methods, each a class of its own; then one class for any extension method and one for facts
/// without a method.
const STANDARD: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
    Method::TRACE,
    Method::CONNECT,
];
pub(crate) const EXTENSION: usize = STANDARD.len();
const NO_METHOD: usize = EXTENSION + 1;
pub(crate) const CLASSES: usize = NO_METHOD + 1;

/// Each trie node that carries rules holds them with the rules of every node above it (so a lookup yields one
/// list). That repeats rules; when the repeats would pass this many times the rules of a class, the class keeps
/// one list of all its rules instead (still correct, only linear: it takes many rules without a route beside
/// many routes, or routes nested deep, each with its own rules).
const MAX_REPEAT: usize = 16;

/// A standard method as its constant (for [`RequestFacts::http_path_method`]).
#[inline]
pub(crate) fn standard(method: &Method) -> Option<&'static Method> {
    STANDARD.iter().find(|s| *s == method)
}

/// The class of a method: its place in `STANDARD`, [`EXTENSION`], or `NO_METHOD` for facts without one.
#[inline]
pub(crate) fn class_of(method: Option<&Method>) -> usize {
    match method {
        None => NO_METHOD,
        // A method taken by `standard` (as `RequestFacts::http_path_method` does) is one of `STANDARD`'s
        // constants: found by address, with no comparison of methods.
        Some(m) => STANDARD
            .iter()
            .position(|s| std::ptr::eq(s, m))
            .or_else(|| STANDARD.iter().position(|s| s == m))
            .unwrap_or(EXTENSION),
    }
}

/// What the index needs to know of one rule.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    /// The rule's index in the rule set.
    pub(crate) rule: u32,
    /// The rule's methods; empty for any method.
    pub(crate) methods: &'a [Method],
    /// A prefix of every path the rule's route can match (empty without a route).
    pub(crate) prefix: &'a [u8],
}

/// The literal start of a route pattern: a prefix of every path the pattern matches (see `glob`): the pattern up
/// to its first wildcard or parameter, less a trailing `/` (a final `/**` also matches the path without it).
pub(crate) fn literal_prefix(pattern: &str) -> &[u8] {
    let bytes = pattern.as_bytes();
    let end = bytes.iter().position(|b| matches!(b, b'*' | b'?' | b'{')).unwrap_or(bytes.len());
    let prefix = &bytes[..end];
    prefix.strip_suffix(b"/").unwrap_or(prefix)
}

/// The rules that read the request, one radix trie of route prefixes per method class.
#[derive(Debug, Default)]
pub(crate) struct RuleIndex {
    /// One per class; empty when no rule reads the request.
    tries: Box<[Trie]>,
}

impl RuleIndex {
    pub(crate) fn build(entries: &[Entry<'_>]) -> Self {
        if entries.is_empty() {
            return Self::default();
        }
        let tries = (0..CLASSES)
            .map(|class| {
                let mut items: Vec<(&[u8], u32)> = entries
                    .iter()
                    .filter(|e| {
                        e.methods.is_empty()
                            || (class != NO_METHOD && e.methods.iter().any(|m| class_of(Some(m)) == class))
                    })
                    .map(|e| (e.prefix, e.rule))
                    .collect();
                items.sort_unstable();
                Trie::build(&items)
            })
            .collect();
        Self { tries }
    }

    /// The rules that could match `facts`, in rule order, and what the lookup proved of them.
    #[inline]
    pub(crate) fn candidates<'a>(&'a self, facts: &RequestFacts<'_>) -> Lookup<'a> {
        let class = class_of(facts.method);
        match self.tries.get(class) {
            Some(trie) => {
                let (rules, indexed) = trie.candidates(facts.path.unwrap_or_default().as_bytes());
                // A standard method's trie holds only the rules that take that method (or any); the
                // no-method trie only those that take any. The extension trie holds every extension method's.
                Lookup { rules, proof: Proof { prefix: indexed, method: indexed && class != EXTENSION } }
            }
            None => Lookup { rules: candidates(&[]), proof: Proof::NONE },
        }
    }
}

#[derive(Debug)]
struct Node {
    /// Bytes the path must have here to go on (the root's may be empty, the others' are not).
    label: Box<[u8]>,
    /// Rules whose prefix ends here or above, in rule order; empty when none ends here.
    rules: Box<[u32]>,
    /// Children, by the first byte of their label.
    children: Box<[(u8, u32)]>,
}

/// A radix trie of route prefixes: a path walks down it as long as it starts with the labels, and every rule
/// met on the way could match.
#[derive(Debug, Default)]
struct Trie {
    nodes: Box<[Node]>,
    /// Every rule of the trie, in rule order: what a trie over budget (see [`MAX_REPEAT`]) yields.
    all: Box<[u32]>,
}

#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    /// Rule entries still allowed; 0: over budget, the trie is not indexed.
    budget: usize,
}

impl Trie {
    /// `items`: (prefix, rule), sorted.
    fn build(items: &[(&[u8], u32)]) -> Self {
        let mut all: Vec<u32> = items.iter().map(|&(_, rule)| rule).collect();
        all.sort_unstable();
        if items.is_empty() {
            return Self { all: all.into(), ..Self::default() };
        }
        let mut b = Builder { budget: MAX_REPEAT * items.len(), ..Builder::default() };
        b.node(items, 0, &[]);
        if b.budget == 0 {
            return Self { all: all.into(), ..Self::default() };
        }
        Self { nodes: b.nodes.into(), all: all.into() }
    }

    /// The rules on `path`'s way down, and whether the trie is indexed: then the path starts with each one's
    /// prefix (else every rule of the trie is yielded, proving nothing).
    #[inline]
    fn candidates(&self, path: &[u8]) -> (Candidates<'_>, bool) {
        let Some(mut node) = self.nodes.first() else {
            // Not indexed (see `MAX_REPEAT`), or no rules.
            return (candidates(&self.all), false);
        };
        // The deepest node on the path that carries rules holds them all (its own and those above it).
        let mut found: &[u32] = &[];
        let mut rest = path;
        loop {
            // Labels are short: a byte loop beats a call to `memcmp`.
            let label = &*node.label;
            if rest.len() < label.len() || rest.iter().zip(label).any(|(a, b)| a != b) {
                break;
            }
            rest = &rest[label.len()..];
            if !node.rules.is_empty() {
                found = &node.rules;
            }
            let Some(&next) = rest.first() else {
                break;
            };
            match node.children.iter().find(|&&(b, _)| b == next) {
                Some(&(_, child)) => node = &self.nodes[child as usize],
                None => break,
            }
        }
        (candidates(found), true)
    }
}

impl Builder {
    /// Adds the node for `items` (sorted, all sharing their first `depth` bytes, none shorter) below nodes
    /// whose rules are `above`, and returns its number.
    fn node(&mut self, items: &[(&[u8], u32)], depth: usize, above: &[u32]) -> u32 {
        // The label runs as far as every item goes on with the same byte.
        let mut end = depth;
        while items.iter().all(|(p, _)| p.len() > end && p[end] == items[0].0[end]) {
            end += 1;
        }
        let id = self.nodes.len();
        self.nodes.push(Node { label: items[0].0[depth..end].into(), rules: Box::new([]), children: Box::new([]) });
        // Sorted: the items that end here come first.
        let here = items.iter().take_while(|(p, _)| p.len() == end).count();
        let mut own: Vec<u32> = items[..here].iter().map(|&(_, rule)| rule).collect();
        if !own.is_empty() {
            own.extend_from_slice(above);
            own.sort_unstable();
            own.dedup();
            match self.budget.checked_sub(own.len()) {
                Some(left) if left > 0 => self.budget = left,
                _ => {
                    self.budget = 0;
                    return 0;
                }
            }
        }
        let above = if own.is_empty() { above } else { &own[..] };
        // The others, grouped by their next byte (contiguous, as sorted).
        let mut children = Vec::new();
        let mut rest = &items[here..];
        while let Some(&(p, _)) = rest.first() {
            let n = rest.iter().take_while(|(q, _)| q[end] == p[end]).count();
            children.push((p[end], self.node(&rest[..n], end, above)));
            if self.budget == 0 {
                return 0;
            }
            rest = &rest[n..];
        }
        self.nodes[id].rules = own.into();
        self.nodes[id].children = children.into();
        u32::try_from(id).expect("index fits u32")
    }
}

/// What the index yields for a request.
pub(crate) struct Lookup<'a> {
    /// The rules the request could match, in rule order.
    pub(crate) rules: Candidates<'a>,
    /// What the lookup proved of each of them.
    pub(crate) proof: Proof,
}

/// What the rule index proved of a candidate rule for a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Proof {
    /// The request's path starts with the literal prefix of the rule's route.
    pub(crate) prefix: bool,
    /// The request's method is one the rule takes (or the rule takes any).
    pub(crate) method: bool,
}

impl Proof {
    /// Nothing proved: the rule is checked in full.
    pub(crate) const NONE: Proof = Proof { prefix: false, method: false };
}

/// The rules a request could match, in rule order (their indices in the rule set).
pub(crate) type Candidates<'a> = std::iter::Copied<std::slice::Iter<'a, u32>>;

fn candidates(list: &[u32]) -> Candidates<'_> {
    list.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix("/api/**"), b"/api");
        assert_eq!(literal_prefix("/api/quotes"), b"/api/quotes");
        assert_eq!(literal_prefix("/api/quotes/{symbol}"), b"/api/quotes");
        assert_eq!(literal_prefix("/users/*/orders"), b"/users");
        assert_eq!(literal_prefix("/v?/x"), b"/v");
        assert_eq!(literal_prefix("**"), b"");
        assert_eq!(literal_prefix("/**"), b"");
    }

    fn lookup(entries: &[Entry<'_>], method: Option<&Method>, path: Option<&str>) -> Vec<usize> {
        let index = RuleIndex::build(entries);
        let facts = RequestFacts { path, method, headers: None, flavour: crate::Flavour::Http };
        index.candidates(&facts).rules.map(|r| r as usize).collect()
    }

    #[test]
    fn candidates_by_method_and_prefix_in_rule_order() {
        let (get, post) = ([Method::GET], [Method::POST]);
        let entries = [
            Entry { rule: 0, methods: &get, prefix: b"/api" },
            Entry { rule: 1, methods: &[], prefix: b"" },
            Entry { rule: 2, methods: &post, prefix: b"/api" },
            Entry { rule: 3, methods: &get, prefix: b"/api/quotes" },
            Entry { rule: 4, methods: &get, prefix: b"/apix" },
            Entry { rule: 5, methods: &[], prefix: b"/a" },
        ];
        assert_eq!(lookup(&entries, Some(&Method::GET), Some("/api/quotes")), [0, 1, 3, 5]);
        assert_eq!(lookup(&entries, Some(&Method::POST), Some("/api/quotes")), [1, 2, 5]);
        assert_eq!(lookup(&entries, Some(&Method::GET), Some("/other")), [1]);
        assert_eq!(lookup(&entries, None, None), [1]);
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(lookup(&entries, Some(&purge), Some("/apix")), [1, 5]);
    }

    #[test]
    fn nested_prefixes_yield_every_enclosing_rule_in_order() {
        let prefixes: Vec<String> = (1..=20).map(|n| "/a".repeat(n)).collect();
        let entries: Vec<Entry<'_>> = prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| Entry { rule: (19 - i) as u32, methods: &[], prefix: p.as_bytes() })
            .collect();
        let got = lookup(&entries, Some(&Method::GET), Some(&"/a".repeat(20)));
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        let got = lookup(&entries, Some(&Method::GET), Some("/a/a"));
        assert_eq!(got, [18, 19]);
        // Nested deep enough to pass the budget, a class keeps one list of all its rules.
        let prefixes: Vec<String> = (1..=40).map(|n| "/a".repeat(n)).collect();
        let entries: Vec<Entry<'_>> = prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| Entry { rule: i as u32, methods: &[], prefix: p.as_bytes() })
            .collect();
        assert_eq!(lookup(&entries, Some(&Method::GET), Some("/b")), (0..40).collect::<Vec<_>>());
    }
}
