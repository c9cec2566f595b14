//! Route patterns: the matcher against a plain reference model (property tests), and rules whose route is an
//! axum template load, match as axum would, or are refused at load with the field path.

use brownout_chaos::{ChaosConfig, Controller, Flavour, RequestFacts, RouteGlob};
use proptest::prelude::*;

/// The reference: a pattern and a path as lists of `/`-separated segments, matched by plain recursion.
fn reference(pattern: &[&str], path: &[&str]) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return path.is_empty();
    };
    match *first {
        "**" => (0..=path.len()).any(|k| reference(rest, &path[k..])),
        // `{*name}` (always last): one or more segments, not one empty segment.
        p if p.starts_with("{*") => rest.is_empty() && !path.is_empty() && path != [""],
        p if p.starts_with('{') => !path.is_empty() && !path[0].is_empty() && reference(rest, &path[1..]),
        p => !path.is_empty() && segment(p.as_bytes(), path[0].as_bytes()) && reference(rest, &path[1..]),
    }
}

/// `*` any run, `?` one byte, by recursion.
fn segment(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => segment(&p[1..], s) || (!s.is_empty() && segment(p, &s[1..])),
        (Some(b'?'), Some(_)) => segment(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => segment(&p[1..], &s[1..]),
        _ => false,
    }
}

fn pattern() -> impl Strategy<Value = Vec<&'static str>> {
    let seg = prop::sample::select(vec!["", "a", "b", "ab", "*", "a*", "*b", "?", "**", "{id}", "{x_1}"]);
    let tail = prop::sample::select(vec![None, Some("{*rest}")]);
    (prop::collection::vec(seg, 0..5), tail, any::<bool>()).prop_map(|(mut segs, tail, rooted)| {
        if rooted {
            segs.insert(0, "");
        }
        segs.extend(tail);
        segs
    })
}

fn path() -> impl Strategy<Value = Vec<&'static str>> {
    let seg = prop::sample::select(vec!["", "a", "b", "ab", "ba", "aab", "{id}", "*"]);
    (prop::collection::vec(seg, 0..6), any::<bool>()).prop_map(|(mut segs, rooted)| {
        if rooted {
            segs.insert(0, "");
        }
        segs
    })
}

proptest! {
    // No failure files: tests never write into the source tree.
    #![proptest_config(ProptestConfig { cases: 4096, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_matcher_agrees_with_the_reference(pattern in pattern(), path in path()) {
        let (p, s) = (pattern.join("/"), path.join("/"));
        // `"".split('/')` is one empty segment, as for the matcher.
        let (pattern, path): (Vec<&str>, Vec<&str>) = (p.split('/').collect(), s.split('/').collect());
        let glob = RouteGlob::parse(&p).unwrap();
        prop_assert_eq!(glob.matches(&s), reference(&pattern, &path), "pattern `{}` path `{}`", p, s);
    }

    #[test]
    fn parse_never_panics_and_new_takes_every_string(p in "[/{}*a?_]{0,12}", s in "[/a{}]{0,8}") {
        let _ = RouteGlob::parse(&p);
        let _ = RouteGlob::new(&p).matches(&s);
    }
}

fn rule_with_route(route: &str) -> String {
    format!(
        "rules:\n  - name: r\n    match: {{ route: \"{route}\" }}\n    sample: {{ mode: exact, rate: 1.0 }}\n    \
         fault: {{ error: {{ status: 503 }} }}\n"
    )
}

fn fires(controller: &Controller, path: &str) -> bool {
    let facts = RequestFacts::path_only(path, Flavour::Http);
    controller.decider().decide(&facts).is_some()
}

#[test]
fn a_rule_with_an_axum_template_matches_as_axum_does() {
    let controller = Controller::new();
    controller.load(ChaosConfig::from_yaml_str(&rule_with_route("/api/quotes/{symbol}"), None).unwrap()).unwrap();
    assert!(fires(&controller, "/api/quotes/ACME"));
    assert!(!fires(&controller, "/api/quotes/"));
    assert!(!fires(&controller, "/api/quotes/ACME/history"));
    controller.load(ChaosConfig::from_yaml_str(&rule_with_route("/api/{*rest}"), None).unwrap()).unwrap();
    assert!(fires(&controller, "/api/quotes/ACME/history"));
    assert!(!fires(&controller, "/api/"));
}

#[test]
fn a_malformed_template_is_refused_at_load_with_the_field_path() {
    for (route, why) in [("/a/{", "whole segment"), ("/a/{*rest}/b", "last segment"), ("/a/{}", "name")] {
        let config = ChaosConfig::from_yaml_str(&rule_with_route(route), None).unwrap();
        let e = Controller::new().load(config).unwrap_err();
        assert_eq!(e.field(), "rules[0].match.route", "{route}: {e}");
        assert!(e.reason().contains(why), "{route}: {e}");
    }
}
