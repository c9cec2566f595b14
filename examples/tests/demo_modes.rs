//! The demo service's degrade modes, in process (`oneshot` on the router; paused time ages the quotes): each
//! mode changes behaviour when its flag flips at run time, shedding is exact and never touches critical
//! routes, stale quotes are marked and counted, and a streamed report is the cached one, byte for byte,
//! without growing the cache.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use brownout_tower::brownout_chaos::{ChaosConfig, Environment};
use brownout_tower::{ChaosHandle, ShedLayer};
use bytes::Bytes;
use examples::demo::{self, App, Counters, Demo, Options};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn demo_with(chaos: &ChaosHandle, options: Options) -> Demo {
    demo::app_with(chaos, &options, Duration::ZERO)
}

fn small() -> Options {
    Options { report_bytes: 2 * 1024, recommendation_rounds: 16, ..Options::default() }
}

async fn get(app: &App, path: &str) -> (StatusCode, HeaderMap, Bytes) {
    let response = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

fn calls(c: &Counters) -> u64 {
    count(&c.provider_calls)
}

/// Every call to the provider fails with a 503 (so the fallback answers from the cache).
fn provider_down(chaos: &ChaosHandle) {
    let yaml = "rules:\n  - name: provider-down\n    match: { route: /api/quotes/** }\n    sample: { mode: exact, \
                rate: 1.0 }\n    fault: { error: { status: 503 } }\n";
    chaos.load(ChaosConfig::from_yaml_str(yaml, None).unwrap()).unwrap();
    chaos.arm().unwrap();
}

#[tokio::test(start_paused = true)]
async fn quotes_source_switches_at_run_time() {
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let demo = demo_with(&chaos, small());
    let (c, flags) = (&demo.counters, &demo.flags);

    // live: the provider answers, age 0.
    let (status, headers, live) = get(&demo.app, "/quote/ACME").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-quote-age-ms"), Some("0"));
    assert_eq!(header(&headers, "x-served-from"), None);
    assert_eq!(calls(c), 1);

    // cached: served from the cache without calling the provider while no older than the limit (5 s).
    flags.set("quotes.source", "cached").unwrap();
    tokio::time::advance(Duration::from_secs(3)).await;
    let (status, headers, body) = get(&demo.app, "/quote/ACME").await;
    assert_eq!((status, &body), (StatusCode::OK, &live));
    assert_eq!(header(&headers, "x-served-from"), Some("cache"));
    assert_eq!(header(&headers, "x-quote-age-ms"), Some("3000"));
    assert_eq!(header(&headers, "x-degraded"), None, "fresh enough");
    assert_eq!((calls(c), count(&c.quotes_from_cache)), (1, 1), "no provider call");

    // cached, but older than the limit: the provider is called and the cache refreshed.
    tokio::time::advance(Duration::from_secs(3)).await;
    let (_, headers, _) = get(&demo.app, "/quote/ACME").await;
    assert_eq!(header(&headers, "x-quote-age-ms"), Some("0"));
    assert_eq!(header(&headers, "x-served-from"), None);
    assert_eq!(calls(c), 2);
    // cached, a symbol never fetched: the provider.
    let (status, _, _) = get(&demo.app, "/quote/NEW").await;
    assert_eq!((status, calls(c)), (StatusCode::OK, 3));

    // stale_ok, provider down: an aged quote is refreshed through the provider (the call an open breaker
    // needs to probe), whose fallback serves it, accepted (counted, not an error).
    flags.set("quotes.source", "stale_ok").unwrap();
    provider_down(&chaos);
    tokio::time::advance(Duration::from_secs(60)).await;
    let (status, headers, _) = get(&demo.app, "/quote/ACME").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-served-from"), Some("cache"));
    assert_eq!(header(&headers, "x-quote-age-ms"), Some("60000"));
    assert_eq!(header(&headers, "x-degraded"), Some("stale-ok"));
    assert_eq!((count(&c.stale), count(&c.stale_accepted), calls(c)), (1, 1, 4));
    chaos.disarm();

    // live again: the provider, whatever the cache holds.
    flags.set("quotes.source", "live").unwrap();
    let (_, headers, _) = get(&demo.app, "/quote/ACME").await;
    assert_eq!(header(&headers, "x-quote-age-ms"), Some("0"));
    assert_eq!(calls(c), 5);
    assert_eq!(count(&c.requests), 6);
}

#[tokio::test(start_paused = true)]
async fn stale_quotes_are_marked_and_counted() {
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let demo = demo_with(&chaos, small());
    let c = &demo.counters;
    assert_eq!(get(&demo.app, "/quote/ACME").await.0, StatusCode::OK);
    provider_down(&chaos);

    // live, provider down: the fallback's cached quote, fresh enough: not degraded.
    tokio::time::advance(Duration::from_secs(5)).await;
    let (status, headers, _) = get(&demo.app, "/quote/ACME").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-served-from"), Some("cache"));
    assert_eq!(header(&headers, "x-quote-age-ms"), Some("5000"));
    assert_eq!(header(&headers, "x-degraded"), None, "5 s is the limit, not over it");
    assert_eq!((count(&c.fallbacks), count(&c.stale)), (1, 0));

    // Older than the limit: marked stale (a degraded error) and counted.
    tokio::time::advance(Duration::from_millis(1)).await;
    let (status, headers, _) = get(&demo.app, "/quote/ACME").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-quote-age-ms"), Some("5001"));
    assert_eq!(header(&headers, "x-degraded"), Some("stale"));
    assert_eq!((count(&c.fallbacks), count(&c.stale), count(&c.stale_accepted)), (2, 1, 0));

    // cached mode does the same when its quote is too old (it asks the provider, which fails).
    demo.flags.set("quotes.source", "cached").unwrap();
    let (_, headers, _) = get(&demo.app, "/quote/ACME").await;
    assert_eq!(header(&headers, "x-degraded"), Some("stale"));
    assert_eq!((count(&c.fallbacks), count(&c.stale)), (3, 2));

    // Nothing cached and the provider down: a 503, whatever the mode.
    assert_eq!(get(&demo.app, "/quote/NONE").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn report_delivery_switches_and_streaming_is_the_cached_report() {
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let options = Options { report_bytes: 100_000, report_cache_entries: 2, ..small() };
    let demo = demo_with(&chaos, options);
    let c = &demo.counters;

    let (status, headers, cached) = get(&demo.app, "/reports/daily").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-report-delivery"), Some("cached"));
    assert_eq!(header(&headers, "content-type"), Some("text/csv"));
    assert!((100_000..100_100).contains(&cached.len()), "{} bytes", cached.len());
    assert!(cached.starts_with(b"symbol,row,price,volume\ndaily,1,"));
    assert_eq!(get(&demo.app, "/reports/daily").await.2, cached, "a cache hit, the same bytes");
    assert_eq!((count(&c.reports_cached), count(&c.report_cache_hits), count(&c.report_cache_entries)), (2, 1, 1));

    demo.flags.set("reports.delivery", "streaming").unwrap();
    let response = demo.app.clone().oneshot(Request::get("/reports/daily").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(header(response.headers(), "x-report-delivery"), Some("streaming"));
    let mut body = response.into_body();
    let (mut streamed, mut frames) = (Vec::new(), 0);
    while let Some(frame) = body.frame().await {
        streamed.extend_from_slice(frame.unwrap().data_ref().unwrap());
        frames += 1;
    }
    assert_eq!(streamed, cached, "byte for byte");
    assert!(frames >= 6, "sent in chunks, not whole: {frames} frames");
    for name in ["weekly", "monthly", "yearly"] {
        assert_eq!(get(&demo.app, &format!("/reports/{name}")).await.0, StatusCode::OK);
    }
    assert_eq!(count(&c.report_cache_entries), 1, "streaming never grows the cache");
    assert_eq!((count(&c.reports_streamed), count(&c.reports_cached), count(&c.report_requests)), (4, 2, 6));

    // Back to cached: the cache grows with distinct names, up to its bound.
    demo.flags.set("reports.delivery", "cached").unwrap();
    for name in ["weekly", "monthly", "yearly"] {
        let (_, headers, _) = get(&demo.app, &format!("/reports/{name}")).await;
        assert_eq!(header(&headers, "x-report-delivery"), Some("cached"));
    }
    assert_eq!(count(&c.report_cache_entries), 2, "bounded by report_cache_entries");
}

#[tokio::test]
async fn shedding_is_exact_and_spares_critical_routes() {
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let demo = demo_with(&chaos, small());
    let c = &demo.counters;
    let non_critical = ["/reports/r", "/recommendations/u1"];

    let mut shed_total = 0u64;
    for (percent, n) in [(25, 200), (10, 97), (33, 150), (75, 61)] {
        demo.flags.set("api.shed_percent", &percent.to_string()).unwrap();
        let mut shed = 0u32;
        for i in 0..n {
            let (status, headers, _) = get(&demo.app, non_critical[i % 2]).await;
            if status == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(header(&headers, "retry-after"), Some("1"));
                assert_eq!(header(&headers, "x-degrade-shed"), Some("api.shed_percent"));
                shed += 1;
            } else {
                assert_eq!(status, StatusCode::OK);
            }
            if i % 3 == 0 {
                assert_eq!(get(&demo.app, &format!("/quote/S{i}")).await.0, StatusCode::OK, "critical");
            }
        }
        let expected = f64::from(n as u32 * percent) / 100.0;
        assert!((f64::from(shed) - expected).abs() <= 1.0, "{percent}% of {n}: shed {shed}");
        shed_total += u64::from(shed);
    }
    assert_eq!(demo.shed.as_ref().map(ShedLayer::shed_total), Some(shed_total));
    assert_eq!(count(&c.report_requests) + count(&c.recommendation_requests) + shed_total, 200 + 97 + 150 + 61);

    demo.flags.set("api.shed_percent", "100").unwrap();
    assert_eq!(get(&demo.app, "/reports/r").await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&demo.app, "/quote/ACME").await.0, StatusCode::OK, "critical, even at 100%");
    let (status, headers, _) = get(&demo.app, "/orders/42").await;
    assert_eq!(header(&headers, "x-degrade-shed"), None, "/orders/** is critical ({status})");
    demo.flags.set("api.shed_percent", "0").unwrap();
    assert_eq!(get(&demo.app, "/reports/r").await.0, StatusCode::OK);
}

#[tokio::test]
async fn recommendations_are_json_and_the_same_for_the_same_user() {
    let chaos = ChaosHandle::for_environment(Environment::Test);
    let demo = demo_with(&chaos, small());
    let (status, headers, body) = get(&demo.app, "/recommendations/u1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["user"], "u1");
    assert_eq!(value["symbols"].as_array().unwrap().len(), 3);
    assert_eq!(get(&demo.app, "/recommendations/u1").await.2, body);
    assert_eq!(count(&demo.counters.recommendation_requests), 2);
}

#[tokio::test]
async fn the_flags_given_are_the_flags_read() {
    let chaos = ChaosHandle::for_environment(Environment::Test);
    // The shipped flag file (read, never written).
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/feature_flags.yaml");
    let flags = brownout_degrade::Flags::from_file(file).unwrap();
    let demo = demo_with(&chaos, Options { flags: Some(flags.clone()), ..small() });
    flags.set("reports.delivery", "streaming").unwrap();
    let (_, headers, _) = get(&demo.app, "/reports/r").await;
    assert_eq!(header(&headers, "x-report-delivery"), Some("streaming"));

    // A registry without the demo's flags gets them, at their defaults.
    let empty = brownout_degrade::Flags::new();
    let demo = demo_with(&chaos, Options { flags: Some(empty.clone()), ..small() });
    let names: Vec<String> = empty.list().into_iter().map(|f| format!("{}={}", f.name, f.value)).collect();
    assert_eq!(names, ["api.shed_percent=0", "quotes.source=live", "reports.delivery=cached"]);
    assert_eq!(get(&demo.app, "/reports/r").await.0, StatusCode::OK);

    // A flag of another type is not read: the demo keeps the default, and still serves.
    let odd = brownout_degrade::Flags::new();
    odd.define("quotes.source", brownout_degrade::flags::FlagKind::Bool, "true").unwrap();
    let demo = demo_with(&chaos, Options { flags: Some(odd), ..small() });
    let (status, headers, _) = get(&demo.app, "/quote/ACME").await;
    assert_eq!((status, header(&headers, "x-quote-age-ms")), (StatusCode::OK, Some("0")));
}
