//! A URL over real HTTP/1.1 as a Tower service: each clone keeps a connection of its own (as wrk and oha give
//! each client one), and requests that find it busy go through hyper-util's pooled client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::http::{Request, Response, Uri};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Mutex;
use tower_service::Service;

use super::{LoadError, LoadPlan, LoadResult, classify_http, run};
use crate::BoxError;

/// An HTTP client as a Tower service: sends the request, reads the whole body, and answers with the
/// response and its body bytes. The latency the harness records therefore covers the full transfer.
/// A request that takes longer than the timeout (default 30 s) is an error.
///
/// Each clone owns one keep-alive connection, opened by its first request to the request's host (so the
/// closed loop's clients, one clone each, each drive a connection, as wrk and oha do, with no pool between
/// them); a request sent while that connection is busy (the open loop's overlapping requests) or to another
/// host goes through a shared pool of kept-alive connections instead. A connection that fails is dropped and
/// the clone's next request opens a new one.
#[derive(Debug)]
pub struct HttpTarget {
    client: Client<HttpConnector, Full<Bytes>>,
    own: Arc<Mutex<Option<Own>>>,
    timeout: Duration,
}

/// A clone's own connection and where it leads.
#[derive(Debug)]
struct Own {
    authority: ::http::uri::Authority,
    sender: SendRequest<Full<Bytes>>,
}

/// A clone shares the pool and opens a connection of its own.
impl Clone for HttpTarget {
    fn clone(&self) -> Self {
        Self { client: self.client.clone(), own: Arc::default(), timeout: self.timeout }
    }
}

impl Default for HttpTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpTarget {
    /// A client with `TCP_NODELAY` and a 30 s timeout per request.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(usize::MAX).build(connector);
        Self { client, own: Arc::default(), timeout: Duration::from_secs(30) }
    }

    /// Fail a request after `timeout` (connect, send and whole body).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Sends `request` over `slot`'s connection, opening it first when there is none (or it leads elsewhere);
/// a connection that fails is dropped.
async fn send_own(
    slot: &mut Option<Own>,
    request: Request<Full<Bytes>>,
) -> Result<Response<hyper::body::Incoming>, BoxError> {
    let authority = request.uri().authority().cloned().ok_or("the request's URI has no host")?;
    if slot.as_ref().is_none_or(|own| own.authority != authority || own.sender.is_closed()) {
        *slot = None;
        let port = authority.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((authority.host(), port)).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Its end (the peer closed it, or the clone was dropped) is seen by the sender: nothing to report.
            let _ = connection.await;
        });
        *slot = Some(Own { authority, sender });
    }
    let own = slot.as_mut().expect("opened above");
    std::future::poll_fn(|cx| own.sender.poll_ready(cx)).await?;
    let result = own.sender.send_request(request).await;
    if result.is_err() {
        *slot = None;
    }
    Ok(result?)
}

impl Service<Request<Full<Bytes>>> for HttpTarget {
    type Response = Response<Bytes>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Bytes>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        // The clone's own connection when it is free; the pool when a request of this clone is in flight.
        let own = self.own.clone().try_lock_owned().ok();
        let (client, timeout) = (own.is_none().then(|| self.client.clone()), self.timeout);
        Box::pin(async move {
            let exchange = async {
                let response = match (own, client) {
                    (Some(mut own), _) => send_own(&mut own, request).await?,
                    (None, Some(client)) => client.request(request).await?,
                    (None, None) => unreachable!("the pool is taken when the connection is busy"),
                };
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
