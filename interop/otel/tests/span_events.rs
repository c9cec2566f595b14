//! Brownout's span events through the OpenTelemetry SDK: requests through the demo router (a fault and its
//! fallback, a shed, a breaker refusal), each in its own span, exported by `tracing-opentelemetry` into the
//! SDK's in-memory exporter at the default INFO level; the exported spans carry the events and their
//! attributes.

use std::collections::BTreeMap;

use brownout_tower::trace::{BREAKER_REJECTED, FALLBACK, FAULT, SHED};
use interop_otel::{BREAKER, SHED_FLAG, demo, get_status};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

/// An exported event: its name and its attributes as strings.
type Event = (String, BTreeMap<String, String>);

/// An in-memory exporter behind `tracing-opentelemetry`, installed for this thread with an INFO filter (a
/// service's default), and its provider (flush it before reading the exporter).
fn collector() -> (InMemorySpanExporter, SdkTracerProvider, DefaultGuard) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("interop-otel"));
    let guard = tracing::subscriber::set_default(Registry::default().with(EnvFilter::new("info")).with(otel));
    (exporter, provider, guard)
}

/// Runs `paths` through the demo router, each `GET` in its own INFO span named after the path, and returns
/// the exported spans by name. The filter is INFO for everything, as a service's default.
async fn exported(paths: &[&str]) -> BTreeMap<String, Vec<Event>> {
    let (exporter, provider, _guard) = collector();

    let demo = demo().expect("the demo router builds");
    for path in paths {
        let span = tracing::info_span!("request", otel.name = *path, otel.kind = "server", url.path = *path);
        get_status(&demo.router, path).instrument(span).await;
    }
    provider.force_flush().expect("the in-memory exporter takes the spans");
    let spans: Vec<SpanData> = exporter.get_finished_spans().expect("the exporter holds the spans");
    let mut by_name = BTreeMap::new();
    for span in spans {
        print!("{}", render(&span));
        assert_eq!(span.span_kind, SpanKind::Server);
        // The events inform; they never make the request an error.
        assert_eq!(span.status, Status::Unset, "{}", span.name);
        let events = span
            .events
            .iter()
            .filter(|e| e.attributes.iter().any(|kv| kv.key.as_str() == "target" && kv.value.as_str() == "brownout"))
            .map(|e| {
                let attributes = e
                    .attributes
                    .iter()
                    .filter(|kv| {
                        !["level", "target"].contains(&kv.key.as_str()) && !kv.key.as_str().starts_with("code.")
                    })
                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect();
                (e.name.to_string(), attributes)
            })
            .collect::<Vec<_>>();
        by_name.entry(span.name.to_string()).or_insert_with(Vec::new).extend(events);
    }
    by_name
}

/// A span as the README shows it: name, kind and status, then each Brownout event and its attributes.
fn render(span: &SpanData) -> String {
    let mut out = format!("span {:?} ({:?}), status {:?}\n", span.name, span.span_kind, span.status);
    for event in span.events.iter().filter(|e| e.name.starts_with("chaos.") || e.name.starts_with("degrade.")) {
        let attributes: Vec<String> = event
            .attributes
            .iter()
            .filter(|kv| kv.key.as_str().contains('.') && !kv.key.as_str().starts_with("code."))
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect();
        out.push_str(&format!("  event {}  {}\n", event.name, attributes.join("  ")));
    }
    out
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn an_injected_fault_and_its_fallback_are_events_of_the_request_span() {
    let spans = exported(&["/quote"]).await;
    let fault = attrs(&[
        ("chaos.rule", "quotes-503"),
        ("chaos.fault.kind", "error"),
        ("chaos.experiment", "quote-outage"),
        ("error.type", "503"),
        ("http.response.status_code", "503"),
    ]);
    let fallback = attrs(&[("degrade.fallback.name", "quote-cache"), ("degrade.fallback.reason", "injected")]);
    assert_eq!(spans["/quote"], vec![(FAULT.to_owned(), fault), (FALLBACK.to_owned(), fallback)]);
}

#[tokio::test]
async fn a_shed_request_carries_the_flag_and_the_share() {
    let spans = exported(&["/report"]).await;
    let shed = attrs(&[
        ("degrade.flag", SHED_FLAG),
        ("degrade.shed.percent", "100"),
        ("url.path", "/report"),
        ("http.response.status_code", "503"),
    ]);
    assert_eq!(spans["/report"], vec![(SHED.to_owned(), shed)]);
}

#[tokio::test]
async fn a_breaker_refusal_names_the_breaker_and_its_state() {
    // The first call fails and opens the breaker (the fallback answers for the 500); the second is refused.
    let spans = exported(&["/orders", "/orders"]).await;
    let first = attrs(&[
        ("degrade.fallback.name", "orders-cache"),
        ("degrade.fallback.reason", "status"),
        ("http.response.status_code", "500"),
    ]);
    let rejected = attrs(&[
        ("degrade.breaker.name", BREAKER),
        ("degrade.breaker.state", "open"),
        ("error.type", "circuit_breaker_open"),
    ]);
    let second = attrs(&[("degrade.fallback.name", "orders-cache"), ("degrade.fallback.reason", "breaker_open")]);
    assert_eq!(
        spans["/orders"],
        vec![(FALLBACK.to_owned(), first), (BREAKER_REJECTED.to_owned(), rejected), (FALLBACK.to_owned(), second)]
    );
}

#[tokio::test]
async fn the_pass_through_path_emits_nothing() {
    // The same routes with every cold path switched off: no event at all.
    let (exporter, provider, _guard) = collector();
    let demo = demo().expect("the demo router builds");
    demo.chaos.disarm();
    demo.flags.set(SHED_FLAG, "false").expect("a bool flag takes false");
    for path in ["/quote", "/report"] {
        let span = tracing::info_span!("request", otel.name = path);
        assert_eq!(get_status(&demo.router, path).instrument(span).await, 200, "{path}");
    }
    provider.force_flush().expect("the in-memory exporter takes the spans");
    let spans = exporter.get_finished_spans().expect("the exporter holds the spans");
    assert_eq!(spans.len(), 2);
    for span in spans {
        assert!(span.events.is_empty(), "{}: {:?}", span.name, span.events);
    }
}

#[tokio::test]
async fn the_generic_flavour_names_the_fault_kind_as_the_error_type() {
    use brownout_tower::{ChaosHandle, ChaosLayer};
    use tower::{Layer, ServiceExt, service_fn};

    let (exporter, provider, _guard) = collector();
    let handle = ChaosHandle::new();
    let rules = "rules:\n  - name: jobs-fail\n    sample: { mode: random, rate: 1.0 }\n    fault:\n      error: { status: 503 }\n";
    handle.load_bytes("jobs.yaml", rules.as_bytes()).expect("the rules load");
    let service = ChaosLayer::new(handle).layer(service_fn(|n: u64| async move { Ok::<_, std::io::Error>(n) }));
    let result = service.oneshot(7).instrument(tracing::info_span!("job")).await;
    assert!(result.is_err(), "the rule fails every call");
    provider.force_flush().expect("the in-memory exporter takes the spans");
    let spans = exporter.get_finished_spans().expect("the exporter holds the spans");
    // The first fault of a rule also logs its CHAOS_EVENT line (target chaos_event) on the span.
    let event = spans[0].events.iter().find(|e| e.name == FAULT).expect("a chaos.fault event");
    let get = |key: &str| event.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
    assert_eq!(get("chaos.rule").as_deref(), Some("jobs-fail"));
    assert_eq!(get("error.type").as_deref(), Some("error"));
    // No experiment in the config, no HTTP status outside HTTP: both left out.
    assert_eq!(get("chaos.experiment"), None);
    assert_eq!(get("http.response.status_code"), None);
}

#[tokio::test]
async fn a_fault_on_a_write_is_an_event_of_the_span_it_runs_in() {
    use brownout_tower::{ChaosHandle, ChaosIo};
    use tokio::io::AsyncWriteExt;

    let (exporter, provider, _guard) = collector();
    let handle = ChaosHandle::new();
    let rules = "experiment: slow-disk\nrules:\n  - name: journal-eio\n    match: { route: io/journal/write }\n    \
                 sample: { mode: random, rate: 1.0 }\n    fault:\n      error: { status: 500 }\n";
    handle.load_bytes("disk.yaml", rules.as_bytes()).expect("the rules load");
    let mut journal = ChaosIo::new(tokio::io::sink(), "journal", &handle);
    let written = journal.write_all(b"order 1\n").instrument(tracing::info_span!("append")).await;
    assert!(written.is_err(), "the rule fails every write");
    provider.force_flush().expect("the in-memory exporter takes the spans");
    let spans = exporter.get_finished_spans().expect("the exporter holds the spans");
    let event = spans[0].events.iter().find(|e| e.name == FAULT).expect("a chaos.fault event");
    let get = |key: &str| event.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
    assert_eq!(get("chaos.rule").as_deref(), Some("journal-eio"));
    assert_eq!(get("chaos.experiment").as_deref(), Some("slow-disk"));
    assert_eq!(get("error.type").as_deref(), Some("error"));
}
