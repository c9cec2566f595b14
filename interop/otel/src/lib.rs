//! A demo router for Brownout's span events (`brownout_tower::trace`): every cold path of the layers, one route
//! each, for the OpenTelemetry tests and the OTLP example; and [`otlp_provider`], the OTLP/HTTP tracer
//! provider the example exports with.
//!
//! | route | what happens | span events |
//! |---|---|---|
//! | `GET /quote` | a rule answers `503`; the fallback serves the cached quote | `chaos.fault`, `degrade.fallback` |
//! | `GET /report` | the shedding flag is on: `503` with `Retry-After` | `degrade.shed` |
//! | `GET /orders` | the downstream fails, the breaker opens; from then on the fallback answers | `degrade.breaker.rejected`, `degrade.fallback` |
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub, rust_2018_idioms)]

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::routing::get;
use brownout_degrade::breaker::SystemClock;
use brownout_degrade::flags::FlagKind;
use brownout_degrade::{BreakerConfig, CircuitBreaker, Flags};
use brownout_tower::{BoxError, ChaosHandle, CircuitBreakerLayer, FallbackLayer, HttpChaosLayer, ShedLayer};
use http::{Request, Response, StatusCode};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tower::{ServiceBuilder, ServiceExt, service_fn};

/// The chaos config of `/quote`: experiment `quote-outage`, rule `quotes-503` answers every call with `503`.
pub const QUOTE_RULES: &str = "\
experiment: quote-outage
rules:
  - name: quotes-503
    match: { route: /quote }
    sample: { mode: random, rate: 1.0 }
    fault:
      error: { status: 503, body: \"quote provider unavailable\" }
";

/// The shedding flag of `/report` (on).
pub const SHED_FLAG: &str = "api.shed_reports";

/// The breaker of `/orders`.
pub const BREAKER: &str = "orders-db";

/// The router and what it was built from.
#[derive(Debug)]
pub struct Demo {
    /// The three routes.
    pub router: Router,
    /// The rules of `/quote` (disarm to pass).
    pub chaos: ChaosHandle,
    /// The flags (`SHED_FLAG` is on).
    pub flags: Flags,
    /// The breaker of `/orders`: opens after its first failed call.
    pub breaker: Arc<CircuitBreaker>,
}

/// The fallback's answer: `200 cached`.
async fn cached(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::from("cached")))
}

/// Builds the demo router.
///
/// # Errors
/// When the embedded rules, flag or breaker config do not load (they do; the error names the field).
pub fn demo() -> Result<Demo, BoxError> {
    let chaos = ChaosHandle::new();
    chaos.load_bytes("quote-outage.yaml", QUOTE_RULES.as_bytes())?;
    let quote = ServiceBuilder::new()
        .layer(FallbackLayer::http(service_fn(cached)).name("quote-cache"))
        .layer(HttpChaosLayer::new(chaos.clone()).same_body())
        .service(service_fn(|_: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::from("42"))) }));

    let flags = Flags::new();
    flags.define(SHED_FLAG, FlagKind::Bool, "true")?;
    let report = get(|| async { "csv" }).layer(ShedLayer::new(flags.bool(SHED_FLAG)?));

    // Opens after one failed call in the window.
    let config = BreakerConfig::default().minimum_calls(1);
    let breaker = Arc::new(CircuitBreaker::new(BREAKER, config, SystemClock)?);
    let failing = service_fn(|_: Request<Body>| async {
        let mut response = Response::new(Body::from("database down"));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        Ok::<_, BoxError>(response)
    });
    let fallback = service_fn(|req| async move { cached(req).await.map_err(BoxError::from) });
    let orders = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|e: BoxError| async move { (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()) }))
        .layer(FallbackLayer::http(fallback).name("orders-cache"))
        .layer(CircuitBreakerLayer::http(breaker.clone()))
        .service(failing);

    let router = Router::new().route_service("/quote", quote).route("/report", report).route_service("/orders", orders);
    Ok(Demo { router, chaos, flags, breaker })
}

/// One `GET` of `path` through `router` (axum's routers never fail).
pub async fn get_status(router: &Router, path: &str) -> StatusCode {
    let req = Request::get(path).body(Body::empty()).expect("a valid path");
    match router.clone().oneshot(req).await {
        Ok(response) => response.status(),
        Err(never) => match never {},
    }
}

/// A tracer provider that batches spans and exports them over OTLP/HTTP protobuf, as `service_name`.
///
/// `endpoint` is the full traces URL (`http://host:4318/v1/traces`); `None` reads the OTLP exporter's
/// variables as the specification says: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, else
/// `OTEL_EXPORTER_OTLP_ENDPOINT` and `/v1/traces`, else `http://localhost:4318/v1/traces`. A failed export is
/// logged by the SDK (`BatchSpanProcessor.ExportError`, through `tracing`) and the spans are dropped; the service
/// goes on. Call [`SdkTracerProvider::shutdown`] before exiting to export the last batch.
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn otlp_provider(service_name: &'static str, endpoint: Option<&str>) -> Result<SdkTracerProvider, BoxError> {
    let mut exporter = SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary);
    if let Some(endpoint) = endpoint {
        exporter = exporter.with_endpoint(endpoint);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter.build()?)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build())
}
