//! A URL over real HTTP/1.1, through hyper-util's pooled legacy client, as a Tower service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::{Request, Response, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use super::{LoadError, LoadPlan, LoadResult, classify_http, run};
use crate::BoxError;

/// An HTTP client as a Tower service: sends the request, reads the whole body, and answers with the
/// response and its body bytes. The latency the harness records therefore covers the full transfer.
/// Connections are pooled and kept alive; a request that takes longer than the timeout (default 30 s) is an
/// error. Cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct HttpTarget {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for HttpTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpTarget {
    /// A client with its own connection pool.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(usize::MAX).build(connector);
        Self { client, timeout: Duration::from_secs(30) }
    }

    /// Fails a request that takes longer than `timeout`, body included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Service<Request<Full<Bytes>>> for HttpTarget {
    type Response = Response<Bytes>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let (client, timeout) = (self.client.clone(), self.timeout);
        Box::pin(async move {
            let exchange = async {
                let response = client.request(request).await?;
                let (head, body) = response.into_parts();
                let body = body.collect().await?.to_bytes();
                Ok::<_, BoxError>(Response::from_parts(head, body))
            };
            tokio::time::timeout(timeout, exchange).await.map_err(|_| BoxError::from("request timed out"))?
        })
    }
}

/// Runs `plan` against `url` over HTTP/1.1: `make_request(i, &uri)` builds the i-th request (its URI is
/// usually `uri`). Answers are judged by [`classify_http`](super::classify_http) (`400` and above, `429`
/// included, and transport errors count as errors). The result's `plan.target` is `url`.
pub async fn run_url<F>(plan: &LoadPlan, url: &str, make_request: F) -> Result<LoadResult, LoadError>
where
    F: Fn(u64, &Uri) -> Request<Full<Bytes>> + Send + Sync + 'static,
{
    let uri: Uri = url.parse().map_err(|e| LoadError::new(format!("bad URL `{url}`: {e}")))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(LoadError::new(format!("bad URL `{url}`: expected http://HOST[:PORT]/PATH (plain HTTP only)")));
    }
    let target = uri.clone();
    let mut result = run(plan, HttpTarget::new(), move |i| make_request(i, &target), classify_http).await?;
    result.plan.target = Some(url.to_owned());
    Ok(result)
}
