//! `BufferBodyLayer`'s metrics and DEBUG events, in a test binary of their own: `tracing` caches each
//! callsite's interest process-wide, so a test running beside it without a subscriber could hide its events.

mod common;

use brownout_tower::body::BufferBodyLayer;
use brownout_tower::{ChaosHandle, HttpChaosLayer};
use bytes::Bytes;
use common::Logs;
use http::{Request, Response};
use http_body_util::Full;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

fn provider() -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = BoxError> + Clone {
    service_fn(|_: Request<()>| async { Ok::<_, BoxError>(Response::new(Full::new(Bytes::from_static(b"live")))) })
}

fn rule(name: &str, fault: &str) -> ChaosHandle {
    ChaosHandle::for_test(&format!("rules: [{{ name: {name}, sample: {{ mode: exact, rate: 1.0 }}, fault: {fault} }}]"))
        .unwrap()
}

#[test]
fn refusals_are_counted_and_logged_at_debug() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            let chaos = rule("rst", "{ reset: {} }");
            let layer = BufferBodyLayer::new(1024).name("quotes");
            runtime.block_on(async {
                for _ in 0..2 {
                    let service = layer.layer(HttpChaosLayer::new(chaos.clone()).layer(provider()));
                    assert!(service.oneshot(Request::new(())).await.is_err());
                }
                let service = layer.layer(service_fn(|_: Request<()>| async {
                    Ok::<_, BoxError>(Response::new(Full::new(Bytes::from(vec![0u8; 2000]))))
                }));
                assert!(service.oneshot(Request::new(())).await.is_err());
            });
        });
    });
    let mut counted: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) if key.key().name() == "degrade_body_refused_total" => {
                let labels: Vec<String> = key.key().labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
                let labels = labels.join(",");
                labels.starts_with("buffer=quotes").then_some((labels, n))
            }
            _ => None,
        })
        .collect();
    counted.sort();
    assert_eq!(
        counted,
        vec![
            ("buffer=quotes,reason=failed".to_owned(), 2),
            ("buffer=quotes,reason=incomplete".to_owned(), 0),
            ("buffer=quotes,reason=too_large".to_owned(), 1),
        ]
    );
    let text = logs.text();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("buffer=quotes")).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("DEBUG") && lines[0].contains("reason=\"failed\"") && lines[0].contains("injected=\"rst\""),
        "{}",
        lines[0]
    );
    assert!(lines[2].contains("the response body exceeds the buffer limit of 1024 bytes"), "{}", lines[2]);
}
