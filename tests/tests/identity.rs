//! With nothing armed, the layers are the identity: same responses, same errors.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use brownout_chaos::{ChaosConfig, Environment};
use brownout_tower::{BoxError, ChaosHandle};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{Layer, Service, service_fn};

/// Polls a future that must be ready at once (the services here never wait).
fn now<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(f).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the future was expected to be ready"),
    }
}

/// A handle whose rules would fire on every request, but which is disarmed.
fn disarmed(with_rules: bool) -> ChaosHandle {
    let handle = ChaosHandle::for_environment(Environment::Test);
    if with_rules {
        let config = ChaosConfig::from_yaml_str(
            "rules:\n- { name: e, sample: { mode: exact, rate: 1.0 }, fault: { error: { status: 500 } } }\n\
             - { name: l, sample: { mode: exact, rate: 1.0 }, fault: { latency: { fixed: 1h } } }\n\
             - { name: t, sample: { mode: exact, rate: 1.0 }, fault: { truncate: { after_bytes: 0 } } }",
            None,
        )
        .unwrap();
        handle.load(config).unwrap();
        handle.disarm();
    }
    handle
}

proptest! {
    #[test]
    fn generic_layer_is_the_identity_when_disarmed(
        with_rules in any::<bool>(),
        inputs in proptest::collection::vec((any::<u32>(), any::<bool>()), 1..50),
    ) {
        let handle = disarmed(with_rules);
        let inner = service_fn(|(x, fail): (u32, bool)| async move {
            if fail { Err::<u64, BoxError>(format!("real error {x}").into()) } else { Ok(u64::from(x) * 3) }
        });
        let mut bare = inner;
        let mut wrapped = handle.layer().layer(inner);
        for input in inputs {
            prop_assert!(now(std::future::poll_fn(|cx| wrapped.poll_ready(cx))).is_ok());
            let expected = now(bare.call(input)).map_err(|e| e.to_string());
            let got = now(wrapped.call(input)).map_err(|e| e.to_string());
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn http_layer_is_the_identity_when_disarmed(
        with_rules in any::<bool>(),
        status in 100u16..600,
        headers in proptest::collection::vec(("x-[a-z]{1,10}", "[ -~]{0,20}"), 0..5),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        path in "/[a-z/]{0,20}",
    ) {
        let handle = disarmed(with_rules);
        let (headers2, body2) = (headers.clone(), body.clone());
        let inner = service_fn(move |_req: http::Request<()>| {
            let mut response = Response::new(Full::new(Bytes::from(body2.clone())));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for (n, v) in &headers2 {
                response.headers_mut().append(
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v.trim()).unwrap(),
                );
            }
            async move { Ok::<_, Infallible>(response) }
        });
        let mut wrapped = handle.http_layer().layer(inner);
        let req = http::Request::get(path.as_str()).body(()).unwrap();
        let response = now(wrapped.call(req)).unwrap();
        prop_assert_eq!(response.status().as_u16(), status);
        prop_assert_eq!(response.headers().len(), headers.len());
        prop_assert!(response.headers().get("x-chaos-injected").is_none());
        let got = now(response.into_body().collect()).unwrap().to_bytes();
        prop_assert_eq!(got.as_ref(), body.as_slice());
    }
}
