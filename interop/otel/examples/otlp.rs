//! Brownout's span events exported over OTLP (HTTP/protobuf), beside a console log of the same events.
//!
//! Sends one request to each route of the demo router (a fault and its fallback, a shed, a breaker that opens
//! and then refuses), each in a server span, and exports the spans to the collector at
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4318`; traces go to its `/v1/traces`, or to
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given). Without a collector the export fails: the example says so
//! and exits normally.
//!
//! ```text
//! cargo run -p interop-otel --example otlp
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 cargo run -p interop-otel --example otlp
//! ```

use std::io::IsTerminal;

use interop_otel::{demo, get_status, otlp_provider};
use opentelemetry::trace::TracerProvider as _;
use tracing::Instrument;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The endpoint, headers and timeout from the OTEL_EXPORTER_OTLP_* variables.
    let provider = otlp_provider("brownout-demo", None)?;
    // The SDK's own diagnostics (a failed export among them) go to the console, not into the exported spans.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("brownout-demo"))
        .with_filter(filter_fn(|meta| !meta.target().starts_with("opentelemetry")));
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()))
        .with(otel)
        .init();

    let demo = demo()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        for path in ["/quote", "/report", "/orders", "/orders"] {
            let span = tracing::info_span!(
                "request",
                otel.name = format!("GET {path}"),
                otel.kind = "server",
                http.request.method = "GET",
                url.path = path,
                http.response.status_code = tracing::field::Empty,
            );
            let status = get_status(&demo.router, path).instrument(span.clone()).await;
            span.record("http.response.status_code", status.as_u16());
        }
    });
    // Exports what is left; a failed export is reported, not fatal.
    match provider.shutdown() {
        Ok(()) => tracing::info!("tracer provider shut down"),
        Err(e) => tracing::warn!("tracer provider shut down with an error: {e}"),
    }
    Ok(())
}
