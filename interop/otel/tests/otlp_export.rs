//! The OTLP/HTTP export end to end: the demo's spans go through `otlp_provider` to a receiver on loopback,
//! which decodes the protobuf request as a collector would; and with nobody listening, the export fails
//! without failing the service.

use std::net::SocketAddr;
use std::sync::mpsc;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use interop_otel::{demo, get_status, otlp_provider};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Registry};

/// A receiver for `POST /v1/traces` on its own thread and runtime (the exporter blocks the caller's thread on
/// shutdown); each body arrives on the channel.
fn receiver() -> (SocketAddr, mpsc::Receiver<Bytes>) {
    let (tx, rx) = mpsc::channel();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    listener.set_nonblocking(true).expect("non-blocking for tokio");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async move {
            let app = Router::new().route(
                "/v1/traces",
                post(move |body: Bytes| async move {
                    let _ = tx.send(body);
                    ([("content-type", "application/x-protobuf")], Bytes::new())
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            axum::serve(listener, app).await.expect("the receiver serves");
        });
    });
    (addr, rx)
}

/// Sends `paths` through the demo router, each in an INFO span, with spans exported to `endpoint`; the
/// statuses the requests got, and what the provider's shutdown (the last export) said.
fn run(endpoint: &str, paths: &[&str]) -> (Vec<u16>, Result<(), String>) {
    let provider = otlp_provider("interop-otel-test", Some(endpoint)).expect("the exporter builds");
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("interop-otel"));
    let subscriber = Registry::default().with(EnvFilter::new("info")).with(otel);
    let statuses = tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let demo = demo().expect("the demo router builds");
        runtime.block_on(async {
            let mut statuses = Vec::new();
            for path in paths {
                let span = tracing::info_span!("request", otel.name = *path);
                statuses.push(get_status(&demo.router, path).instrument(span).await.as_u16());
            }
            statuses
        })
    });
    (statuses, provider.shutdown().map_err(|e| e.to_string()))
}

/// The string value of `attribute` among `attributes`.
fn string(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    })
}

#[test]
fn the_span_events_reach_a_collector_over_otlp_http_protobuf() {
    let (addr, bodies) = receiver();
    let (statuses, shutdown) = run(&format!("http://{addr}/v1/traces"), &["/quote", "/orders", "/orders"]);
    assert_eq!(statuses, [200, 200, 200], "the fallbacks answered");
    shutdown.expect("the export succeeds");
    // Every batch the exporter sent (usually one, at shutdown).
    let requests: Vec<ExportTraceServiceRequest> = bodies
        .try_iter()
        .map(|body| ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request"))
        .collect();
    assert!(!requests.is_empty(), "the receiver got the spans");
    let resource_spans: Vec<_> = requests.iter().flat_map(|r| &r.resource_spans).collect();
    let resource = resource_spans[0].resource.as_ref().expect("a resource");
    assert_eq!(string(&resource.attributes, "service.name").as_deref(), Some("interop-otel-test"));
    let spans: Vec<_> = resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
    let events: Vec<(&str, &str, Vec<_>)> = spans
        .iter()
        .flat_map(|span| span.events.iter().map(move |e| (span.name.as_str(), e)))
        .filter(|(_, e)| e.name.starts_with("chaos.") || e.name.starts_with("degrade."))
        .map(|(span, e)| (span, e.name.as_str(), e.attributes.clone()))
        .collect();
    let fault = events.iter().find(|(_, name, _)| *name == "chaos.fault").expect("the fault's event");
    assert_eq!(fault.0, "/quote");
    assert_eq!(string(&fault.2, "chaos.rule").as_deref(), Some("quotes-503"));
    assert_eq!(string(&fault.2, "chaos.experiment").as_deref(), Some("quote-outage"));
    assert_eq!(string(&fault.2, "http.response.status_code").as_deref(), Some("503"));
    let rejected = events.iter().find(|(_, name, _)| *name == "degrade.breaker.rejected").expect("the refusal");
    assert_eq!(rejected.0, "/orders");
    assert_eq!(string(&rejected.2, "degrade.breaker.state").as_deref(), Some("open"));
    let fallbacks = events.iter().filter(|(_, name, _)| *name == "degrade.fallback").count();
    assert_eq!(fallbacks, 3, "the quote's and both orders'");
}

#[test]
fn without_a_collector_the_export_fails_and_the_requests_do_not() {
    // A port that was free a moment ago: nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a loopback port");
    let (statuses, shutdown) = run(&format!("http://{addr}/v1/traces"), &["/quote", "/report"]);
    // The requests were served as without tracing; the failed export is the SDK's to log (its batch thread's
    // `BatchSpanProcessor.ExportError`), and the shutdown returns instead of panicking or hanging.
    assert_eq!(statuses, [200, 503], "the fallback's answer, then the shed");
    println!("shutdown without a collector: {shutdown:?}");
}
